package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// softKey is a software WebAuthn authenticator for tests: one ES256 credential, attestation "none", real CBOR
// and real signatures, so the server verifies it exactly as it would a security key's.
type softKey struct {
	key        *ecdsa.PrivateKey
	credID     []byte
	userHandle []byte
	count      uint32
	// flags of its assertions; 0: user present and verified, as a passkey unlocked by a PIN or biometric
	flags byte
}

var b64u = base64.RawURLEncoding

func newSoftKey(t *testing.T) *softKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return &softKey{key: k, credID: id}
}

// publicKey of the options a begin answered ({"options": {"publicKey": ...}}).
func publicKeyOptions(t *testing.T, begun map[string]any) map[string]any {
	t.Helper()
	o, ok := begun["options"].(map[string]any)
	if !ok {
		t.Fatalf("no options in %v", begun)
	}
	pk, ok := o["publicKey"].(map[string]any)
	if !ok {
		t.Fatalf("no publicKey in %v", o)
	}
	return pk
}

func clientData(t *testing.T, typ, challenge, origin string) []byte {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// authData is the authenticator data for rpID with flags and the counter, then attested credential data if any.
func authData(rpID string, flags byte, count uint32, attested []byte) []byte {
	h := sha256.Sum256([]byte(rpID))
	out := append([]byte{}, h[:]...)
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, count)
	return append(out, attested...)
}

const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

// create answers registration options as navigator.credentials.create would from origin.
func (k *softKey) create(t *testing.T, begun map[string]any, origin string) map[string]any {
	t.Helper()
	pk := publicKeyOptions(t, begun)
	rp := pk["rp"].(map[string]any)["id"].(string)
	uh, err := b64u.DecodeString(pk["user"].(map[string]any)["id"].(string))
	if err != nil {
		t.Fatalf("user id: %v", err)
	}
	k.userHandle = uh
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: k.key.X.FillBytes(make([]byte, 32)), -3: k.key.Y.FillBytes(make([]byte, 32))})
	if err != nil {
		t.Fatal(err)
	}
	attested := make([]byte, 16) // AAGUID: none
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(k.credID)))
	attested = append(attested, k.credID...)
	attested = append(attested, cose...)
	ao, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData(rp, flagUP|flagUV|flagAT, k.count, attested)})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"id": b64u.EncodeToString(k.credID), "rawId": b64u.EncodeToString(k.credID), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64u.EncodeToString(clientData(t, "webauthn.create", pk["challenge"].(string), origin)),
			"attestationObject": b64u.EncodeToString(ao), "transports": []string{"internal"}}}
}

// assert answers assertion options as navigator.credentials.get would from origin, counting one more use.
func (k *softKey) assert(t *testing.T, begun map[string]any, origin string) map[string]any {
	t.Helper()
	k.count++
	return k.assertCount(t, begun, origin, k.count)
}

// assertCount is assert with the counter given (a clone's, say).
func (k *softKey) assertCount(t *testing.T, begun map[string]any, origin string, count uint32) map[string]any {
	t.Helper()
	pk := publicKeyOptions(t, begun)
	u, _ := url.Parse(origin)
	rp, _ := pk["rpId"].(string)
	if rp == "" {
		rp = u.Hostname()
	}
	flags := k.flags
	if flags == 0 {
		flags = flagUP | flagUV
	}
	ad := authData(rp, flags, count, nil)
	cd := clientData(t, "webauthn.get", pk["challenge"].(string), origin)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"id": b64u.EncodeToString(k.credID), "rawId": b64u.EncodeToString(k.credID), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64u.EncodeToString(cd), "authenticatorData": b64u.EncodeToString(ad),
			"signature": b64u.EncodeToString(sig), "userHandle": b64u.EncodeToString(k.userHandle)}}
}
