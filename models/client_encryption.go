package models

import (
	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/jwe"
)

// Encryption of what Latchkey sends a client (OpenID Connect Core §10.2): ID tokens and userinfo responses
// encrypted to the client's own key, access tokens to the resource server's key.

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
	key, _ := jwe.ParsePublicJWK(src) // a stored key was validated when written; if not, key stays nil
	return &parsedJWK{src: src, key: key}
}

func (p *parsedJWK) get(src string) *jose.JSONWebKey {
	if p != nil && p.src == src {
		return p.key
	}
	if src == "" {
		return nil
	}
	key, _ := jwe.ParsePublicJWK(src) // a Client built by hand: parsed on every call, not cached
	return key
}

// cacheKeys parses the client's JWKs into its unexported cache.
func (c *Client) cacheKeys() {
	c.encJWK = newParsedJWK(c.EncryptionJWK)
	c.atJWK = newParsedJWK(c.AccessTokenEncryptionJWK)
	c.jwks = newParsedJWKS(c.JWKS)
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
		enc = jwe.DefaultEnc
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
