package jwe

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// recipient is a key pair a client registers for encryption: the public half is what Latchkey encrypts to.
type recipient struct {
	priv *jose.JSONWebKey
	pub  *jose.JSONWebKey
}

// recipients generates each kind of key once per test that asks for it.
type recipients map[string]recipient

func (rs recipients) get(t testing.TB, kind string) recipient {
	t.Helper()
	if r, ok := rs[kind]; ok {
		return r
	}
	var priv any
	var err error
	switch kind {
	case "RSA-2048":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "RSA-1024":
		priv, err = rsa.GenerateKey(rand.Reader, 1024)
	case "P-256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P-384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "P-521":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	default:
		t.Fatalf("unknown key kind %s", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	jwk := &jose.JSONWebKey{Key: priv, KeyID: "enc-" + kind, Use: "enc"}
	pub := jwk.Public()
	rs[kind] = recipient{priv: jwk, pub: &pub}
	return rs[kind]
}

func TestCheckKey(t *testing.T) {
	keys := recipients{}
	rsaKey := keys.get(t, "RSA-2048")
	ecKey := keys.get(t, "P-256")
	with := func(k *jose.JSONWebKey, change func(*jose.JSONWebKey)) *jose.JSONWebKey {
		c := *k
		change(&c)
		return &c
	}
	for _, tc := range []struct {
		name     string
		key      *jose.JSONWebKey
		alg, enc string
		wantErr  string // "" for valid
	}{
		{"RSA public key with RSA-OAEP-256", rsaKey.pub, "RSA-OAEP-256", "A256GCM", ""},
		{"EC P-256 public key with ECDH-ES", ecKey.pub, "ECDH-ES", "A256GCM", ""},
		{"EC P-384 public key with ECDH-ES+A256KW", keys.get(t, "P-384").pub, "ECDH-ES+A256KW", "A128GCM", ""},
		{"EC P-521 public key with ECDH-ES", keys.get(t, "P-521").pub, "ECDH-ES", "A128CBC-HS256", ""},
		{"key whose alg matches", with(rsaKey.pub, func(k *jose.JSONWebKey) { k.Algorithm = "RSA-OAEP-256" }), "RSA-OAEP-256", "A256GCM", ""},
		{"key without use", with(ecKey.pub, func(k *jose.JSONWebKey) { k.Use = "" }), "ECDH-ES", "A256GCM", ""},

		{"RSA private key", rsaKey.priv, "RSA-OAEP-256", "A256GCM", "private key"},
		{"EC private key", ecKey.priv, "ECDH-ES", "A256GCM", "private key"},
		{"symmetric key", &jose.JSONWebKey{Key: make([]byte, 32)}, "ECDH-ES", "A256GCM", "symmetric"},
		{"RSA key with ECDH-ES", rsaKey.pub, "ECDH-ES", "A256GCM", "needs an EC key"},
		{"EC key with RSA-OAEP-256", ecKey.pub, "RSA-OAEP-256", "A256GCM", "needs an RSA key"},
		{"RSA key under 2048 bits", keys.get(t, "RSA-1024").pub, "RSA-OAEP-256", "A256GCM", "at least 2048"},
		{"unknown alg", rsaKey.pub, "RSA1_5", "A256GCM", "unsupported encryption alg"},
		{"RSA key with SHA-1 RSA-OAEP", rsaKey.pub, "RSA-OAEP", "A128CBC-HS256", ""},
		{"EC key with ECDH-ES+A128KW", ecKey.pub, "ECDH-ES+A128KW", "A192GCM", ""},
		{"RSA key with ECDH-ES+A128KW", rsaKey.pub, "ECDH-ES+A128KW", "A256GCM", "needs an EC key"},
		{"direct symmetric encryption", rsaKey.pub, "dir", "A256GCM", "unsupported encryption alg"},
		{"password-based encryption", rsaKey.pub, "PBES2-HS256+A128KW", "A256GCM", "unsupported encryption alg"},
		{"empty alg", rsaKey.pub, "", "A256GCM", "unsupported encryption alg"},
		{"unknown enc", rsaKey.pub, "RSA-OAEP-256", "A512GCM", "unsupported encryption enc"},
		{"empty enc", rsaKey.pub, "RSA-OAEP-256", "", "unsupported encryption enc"},
		{"no key", nil, "RSA-OAEP-256", "A256GCM", "no encryption key"},
		{"empty key", &jose.JSONWebKey{}, "RSA-OAEP-256", "A256GCM", "no encryption key"},
		{"signing key", with(rsaKey.pub, func(k *jose.JSONWebKey) { k.Use = "sig" }), "RSA-OAEP-256", "A256GCM", `use "sig"`},
		{"key registered for another alg", with(ecKey.pub, func(k *jose.JSONWebKey) { k.Algorithm = "ECDH-ES+A256KW" }), "ECDH-ES", "A256GCM", "is for alg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckKey(tc.key, tc.alg, tc.enc)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error = %v, want valid", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("valid, want an error mentioning %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error = %q, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestParsePublicJWK(t *testing.T) {
	keys := recipients{}
	rsaKey := keys.get(t, "RSA-2048")
	marshal := func(k *jose.JSONWebKey) string {
		b, err := k.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, src, wantErr string // wantErr "" for a key that parses
	}{
		{"RSA public key", marshal(rsaKey.pub), ""},
		{"EC public key", marshal(keys.get(t, "P-384").pub), ""},
		{"RSA private key, refused before parsing", marshal(rsaKey.priv), `private or symmetric key member "d"`},
		{"symmetric key", `{"kty":"oct","k":"c2VjcmV0"}`, `member "k"`},
		{"not JSON", "-----BEGIN PUBLIC KEY-----", "not a JSON object"},
		{"a JSON array", "[]", "not a JSON object"},
		{"JSON null", "null", "not a JSON object"},
		{"unknown key type", `{"kty":"XYZ"}`, "does not parse"},
		{"over the size limit", `{"kty":"RSA","x":"` + strings.Repeat("a", MaxJWKBytes) + `"}`, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParsePublicJWK(tc.src)
			switch {
			case tc.wantErr == "" && (err != nil || k == nil || !k.IsPublic()):
				t.Errorf("ParsePublicJWK = %v, %v; want a public key", k, err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("parsed %v, want an error mentioning %q", k, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error = %q, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}
