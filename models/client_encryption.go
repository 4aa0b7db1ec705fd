package models

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// Encryption of what Latchkey sends a client (OpenID Connect Core §10.2): ID tokens and userinfo responses
// encrypted to the client's own key, access tokens to the resource server's key.

// defaultContentEncryption is the enc used when a client sets an alg without an enc. OpenID Connect's
// registration default is A128CBC-HS256; ours is A256GCM.
const defaultContentEncryption = "A256GCM"

// minRSAEncryptionBits is the smallest RSA key accepted for key encryption.
const minRSAEncryptionBits = 2048

// maxJWKBytes bounds a stored JWK's JSON text.
const maxJWKBytes = 16 << 10

// Key management algorithms accepted for a public key, and the key type each needs.
var encryptionAlgs = map[string]func(key any) bool{
	string(jose.RSA_OAEP):       isRSAPublic,
	string(jose.RSA_OAEP_256):   isRSAPublic,
	string(jose.ECDH_ES):        isECPublic,
	string(jose.ECDH_ES_A128KW): isECPublic,
	string(jose.ECDH_ES_A192KW): isECPublic,
	string(jose.ECDH_ES_A256KW): isECPublic,
}

// Content encryption algorithms accepted for enc.
var contentEncryptions = map[string]bool{
	string(jose.A128CBC_HS256): true, string(jose.A192CBC_HS384): true, string(jose.A256CBC_HS512): true,
	string(jose.A128GCM): true, string(jose.A192GCM): true, string(jose.A256GCM): true,
}

func isRSAPublic(key any) bool { _, ok := key.(*rsa.PublicKey); return ok }
func isECPublic(key any) bool  { _, ok := key.(*ecdsa.PublicKey); return ok }

// privateJWKMembers are the JWK members that carry private or symmetric key material (RFC 7518 §6).
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// parsePublicJWK parses the JSON text of a public JWK. Private and symmetric keys are refused before
// go-jose sees them (its UnmarshalJSON is not meant for untrusted private keys).
func parsePublicJWK(src string) (*jose.JSONWebKey, error) {
	if len(src) > maxJWKBytes {
		return nil, fmt.Errorf("JWK is longer than %d bytes", maxJWKBytes)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(src), &members); err != nil || members == nil {
		return nil, errors.New("JWK is not a JSON object")
	}
	for _, m := range privateJWKMembers {
		if _, ok := members[m]; ok {
			return nil, fmt.Errorf("JWK has the private or symmetric key member %q; store the public key only", m)
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

// parsedJWK is a JWK parsed when its client was loaded or stored. src is the text it was parsed from, so a
// later change to the exported field is noticed rather than answered from a stale cache.
type parsedJWK struct {
	src string
	key *jose.JSONWebKey // nil: src does not parse
}

// newParsedJWK parses src once; nil for an empty src.
func newParsedJWK(src string) *parsedJWK {
	if src == "" {
		return nil
	}
	key, _ := parsePublicJWK(src) // a stored key was validated when written; if not, key stays nil
	return &parsedJWK{src: src, key: key}
}

func (p *parsedJWK) get(src string) *jose.JSONWebKey {
	if p != nil && p.src == src {
		return p.key
	}
	if src == "" {
		return nil
	}
	key, _ := parsePublicJWK(src) // a Client built by hand: parsed on every call, not cached
	return key
}

// cacheKeys parses the client's JWKs into its unexported cache.
func (c *Client) cacheKeys() {
	c.encJWK = newParsedJWK(c.EncryptionJWK)
	c.atJWK = newParsedJWK(c.AccessTokenEncryptionJWK)
}

func encryptionSetting(cache *parsedJWK, src, alg, enc string) (*jose.JSONWebKey, string, string, bool) {
	if alg == "" {
		return nil, "", "", false
	}
	key := cache.get(src)
	if key == nil {
		return nil, "", "", false
	}
	if enc == "" {
		enc = defaultContentEncryption
	}
	return key, alg, enc, true
}

// IDTokenEncryption returns how to encrypt this client's ID tokens: its EncryptionJWK and the key
// management (alg) and content encryption (enc, default A256GCM) algorithms. ok is false when the client
// wants them unencrypted. The key is shared: do not modify it.
func (c *Client) IDTokenEncryption() (key *jose.JSONWebKey, alg, enc string, ok bool) {
	return encryptionSetting(c.encJWK, c.EncryptionJWK, c.IDTokenEncryptedResponseAlg, c.IDTokenEncryptedResponseEnc)
}

// UserinfoEncryption is IDTokenEncryption for userinfo responses.
func (c *Client) UserinfoEncryption() (key *jose.JSONWebKey, alg, enc string, ok bool) {
	return encryptionSetting(c.encJWK, c.EncryptionJWK, c.UserinfoEncryptedResponseAlg, c.UserinfoEncryptedResponseEnc)
}

// AccessTokenEncryption returns how to encrypt JWT access tokens issued to this client: to the resource
// server's AccessTokenEncryptionJWK. ok is false when they are not encrypted. The key is shared: do not
// modify it.
func (c *Client) AccessTokenEncryption() (key *jose.JSONWebKey, alg, enc string, ok bool) {
	return encryptionSetting(c.atJWK, c.AccessTokenEncryptionJWK, c.AccessTokenEncryptionAlg, c.AccessTokenEncryptionEnc)
}

// validateClientEncryption checks a client's encryption settings: each JWK, if set, is a valid public key,
// and each alg, if set, has a key of the right type and a supported enc. An enc without an alg is refused.
func validateClientEncryption(c *Client) error {
	parsed := map[string]*jose.JSONWebKey{}
	for _, f := range []struct{ field, src string }{
		{"encryption_jwk", c.EncryptionJWK},
		{"access_token_encryption_jwk", c.AccessTokenEncryptionJWK},
	} {
		if f.src == "" {
			continue
		}
		k, err := parsePublicJWK(f.src)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, f.field, err)
		}
		parsed[f.field] = k
	}
	for _, st := range []struct{ what, alg, enc, keyField string }{
		{"id_token_encrypted_response", c.IDTokenEncryptedResponseAlg, c.IDTokenEncryptedResponseEnc, "encryption_jwk"},
		{"userinfo_encrypted_response", c.UserinfoEncryptedResponseAlg, c.UserinfoEncryptedResponseEnc, "encryption_jwk"},
		{"access_token_encryption", c.AccessTokenEncryptionAlg, c.AccessTokenEncryptionEnc, "access_token_encryption_jwk"},
	} {
		if st.alg == "" {
			if st.enc != "" {
				return fmt.Errorf("%w: %s_enc is set without %s_alg", ErrInvalid, st.what, st.what)
			}
			continue
		}
		keyFits, ok := encryptionAlgs[st.alg]
		if !ok {
			return fmt.Errorf("%w: %s_alg %q is not supported (want RSA-OAEP, RSA-OAEP-256, ECDH-ES or ECDH-ES+A128KW/A192KW/A256KW)",
				ErrInvalid, st.what, st.alg)
		}
		if st.enc != "" && !contentEncryptions[st.enc] {
			return fmt.Errorf("%w: %s_enc %q is not supported", ErrInvalid, st.what, st.enc)
		}
		k := parsed[st.keyField]
		if k == nil {
			return fmt.Errorf("%w: %s_alg is set but %s is empty", ErrInvalid, st.what, st.keyField)
		}
		if !keyFits(k.Key) {
			return fmt.Errorf("%w: %s is a %T, which %s_alg %s cannot encrypt to", ErrInvalid, st.keyField, k.Key, st.what, st.alg)
		}
		if rk, ok := k.Key.(*rsa.PublicKey); ok && rk.N.BitLen() < minRSAEncryptionBits {
			return fmt.Errorf("%w: %s is a %d-bit RSA key; at least %d bits are required",
				ErrInvalid, st.keyField, rk.N.BitLen(), minRSAEncryptionBits)
		}
		if k.Use != "" && k.Use != "enc" {
			return fmt.Errorf("%w: %s has use %q, not enc", ErrInvalid, st.keyField, k.Use)
		}
		if k.Algorithm != "" && k.Algorithm != st.alg {
			return fmt.Errorf("%w: %s is for alg %q, not %s_alg %q", ErrInvalid, st.keyField, k.Algorithm, st.what, st.alg)
		}
	}
	return nil
}
