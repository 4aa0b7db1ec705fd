// Package jwe is the one home of the rules for what Latchkey encrypts to (OpenID Connect Core §10.2, RFC 7516):
// the key management and content encryption algorithms it supports, the default enc, and what a registered
// public key must be for an alg. The store checks a client's registration with it (models.Client.Validate) and
// the provider checks again, with the same rule, before it encrypts (provider.EncryptCompact). It imports
// nothing of ours.
package jwe

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Algs are the JWE key management algorithms Latchkey encrypts with, preferred first. RSA1_5 is left out on
// purpose (RFC 8725 §3.2); RSA-OAEP (SHA-1) stays for clients that have nothing better, as the SHA-1 collision
// attacks do not apply to OAEP. Do not modify.
var Algs = []string{
	string(jose.RSA_OAEP_256),
	string(jose.ECDH_ES),
	string(jose.ECDH_ES_A256KW),
	string(jose.ECDH_ES_A192KW),
	string(jose.ECDH_ES_A128KW),
	string(jose.RSA_OAEP),
}

// Encs are the JWE content encryption algorithms Latchkey encrypts with, preferred first. Do not modify.
var Encs = []string{
	string(jose.A256GCM),
	string(jose.A192GCM),
	string(jose.A128GCM),
	string(jose.A256CBC_HS512),
	string(jose.A192CBC_HS384),
	string(jose.A128CBC_HS256),
}

// DefaultEnc is the enc used when a client registers an alg without an enc. OpenID Connect Registration's
// default is A128CBC-HS256; ours is A256GCM.
const DefaultEnc = string(jose.A256GCM)

// MinRSABits is the smallest RSA key Latchkey encrypts to.
const MinRSABits = 2048

// MaxJWKBytes bounds the JSON text of a registered JWK.
const MaxJWKBytes = 16 << 10

// SupportsAlg reports whether alg is one of Algs.
func SupportsAlg(alg string) bool { return slices.Contains(Algs, alg) }

// SupportsEnc reports whether enc is one of Encs.
func SupportsEnc(enc string) bool { return slices.Contains(Encs, enc) }

// privateMembers are the JWK members that carry private or symmetric key material (RFC 7518 §6).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// ParsePublicJWK parses the JSON text of a public JWK. Private and symmetric keys are refused before go-jose
// sees them (its UnmarshalJSON is not meant for untrusted private keys). The error says what is wrong.
func ParsePublicJWK(src string) (*jose.JSONWebKey, error) {
	if len(src) > MaxJWKBytes {
		return nil, fmt.Errorf("JWK is longer than %d bytes", MaxJWKBytes)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(src), &members); err != nil || members == nil {
		return nil, errors.New("JWK is not a JSON object")
	}
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			return nil, fmt.Errorf("JWK has the private or symmetric key member %q; register the public key only", m)
		}
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON([]byte(src)); err != nil {
		return nil, fmt.Errorf("JWK does not parse: %w", err)
	}
	if !k.Valid() || !k.IsPublic() {
		return nil, errors.New("JWK is not a valid public key")
	}
	return &k, nil
}

// CheckKey checks that Latchkey can encrypt to key with alg and enc: both are supported, and key is a public key
// of the kind alg needs (RSA of at least MinRSABits for RSA-OAEP*; EC P-256, P-384 or P-521 for ECDH-ES*), not
// registered for another use or alg. A private or symmetric key is refused: a client registers only the public
// half. The error says what is wrong.
func CheckKey(key *jose.JSONWebKey, alg, enc string) error {
	if !SupportsAlg(alg) {
		return fmt.Errorf("unsupported encryption alg %q (supported: %s)", alg, strings.Join(Algs, ", "))
	}
	if !SupportsEnc(enc) {
		return fmt.Errorf("unsupported encryption enc %q (supported: %s)", enc, strings.Join(Encs, ", "))
	}
	if key == nil || key.Key == nil {
		return errors.New("no encryption key")
	}
	switch key.Key.(type) {
	case []byte:
		return errors.New("symmetric encryption keys are not supported; register a public RSA or EC key")
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		return errors.New("the encryption key is a private key; register only its public key")
	}
	if !key.IsPublic() || !key.Valid() {
		return errors.New("the encryption key is not a valid public key")
	}
	if key.Use != "" && key.Use != "enc" {
		return fmt.Errorf("the encryption key has use %q, want \"enc\"", key.Use)
	}
	if key.Algorithm != "" && key.Algorithm != alg {
		return fmt.Errorf("the encryption key is for alg %q, not %q", key.Algorithm, alg)
	}
	switch jose.KeyAlgorithm(alg) {
	case jose.RSA_OAEP_256, jose.RSA_OAEP:
		k, ok := key.Key.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("alg %s needs an RSA key, got %s", alg, keyKind(key.Key))
		}
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("the RSA encryption key has %d bits, want at least %d", k.N.BitLen(), MinRSABits)
		}
	case jose.ECDH_ES, jose.ECDH_ES_A128KW, jose.ECDH_ES_A192KW, jose.ECDH_ES_A256KW:
		k, ok := key.Key.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("alg %s needs an EC key, got %s", alg, keyKind(key.Key))
		}
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("alg %s needs an EC key on P-256, P-384 or P-521, got curve %s", alg, k.Curve.Params().Name)
		}
	}
	return nil
}

func keyKind(k any) string {
	switch k.(type) {
	case *rsa.PublicKey:
		return "an RSA key"
	case *ecdsa.PublicKey:
		return "an EC key"
	default:
		return fmt.Sprintf("a %T", k)
	}
}
