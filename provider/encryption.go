package provider

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/jwe"
)

// Encrypted tokens and responses (OpenID Connect Core §10.2, RFC 7516). A client that registered an encryption
// key gets its ID tokens and userinfo responses as compact JWEs, and its JWT access tokens nested in a JWE for the
// resource server, so claims stay hidden from the browser. We only ever encrypt to public keys the client
// registered; we never decrypt.

// encryptionClient is implemented by clients (models.Client) that registered encryption keys. Each method says
// whom to encrypt for: the recipient's public key (its KeyID becomes the JWE kid header), the key management
// algorithm and the content encryption. ok is false when that output is not encrypted.
type encryptionClient interface {
	IDTokenEncryption() (key *jose.JSONWebKey, alg, enc string, ok bool)
	UserinfoEncryption() (key *jose.JSONWebKey, alg, enc string, ok bool)
	// AccessTokenEncryption names the resource server's key: JWT access tokens are for it, not the client.
	AccessTokenEncryption() (key *jose.JSONWebKey, alg, enc string, ok bool)
}

// SupportedEncryptionAlgs and SupportedEncryptionEncs are what discovery advertises: the algorithms of the
// jwe package, which owns the rule for what Latchkey encrypts to. Do not modify.
var (
	SupportedEncryptionAlgs = jwe.Algs
	SupportedEncryptionEncs = jwe.Encs
)

// jwtContentType is the JWE cty of a nested JWT (RFC 7519 §5.2).
const jwtContentType = "JWT"

// EncryptCompact encrypts plaintext to key and returns the compact JWE. cty is "JWT" when plaintext is a signed
// JWT (a nested token), "" otherwise. The registration is checked again here, by the rule the store checked it
// with (jwe.CheckKey), so a bad key fails loudly instead of producing something the recipient cannot read.
func EncryptCompact(plaintext []byte, key *jose.JSONWebKey, alg, enc, cty string) (string, error) {
	if err := jwe.CheckKey(key, alg, enc); err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	opts := &jose.EncrypterOptions{}
	if cty != "" {
		opts = opts.WithContentType(jose.ContentType(cty))
	}
	// A *JSONWebKey recipient puts its KeyID in the JWE kid header.
	e, err := jose.NewEncrypter(jose.ContentEncryption(enc), jose.Recipient{Algorithm: jose.KeyAlgorithm(alg), Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("encrypt: build %s/%s encrypter: %w", alg, enc, err)
	}
	obj, err := e.Encrypt(plaintext)
	if err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("encrypt: serialise: %w", err)
	}
	return out, nil
}

// isJWE tells a compact JWE (five parts) from a JWS (three) and an opaque token (two).
func isJWE(token string) bool { return strings.Count(token, ".") == 4 }

// jweSignature is the storage key of an encrypted access token: a hash of the whole token, not just its
// authentication tag. We cannot decrypt the token to check it, so the lookup must bind every byte we issued: a
// token with any part changed then finds no row and introspects as inactive.
func jweSignature(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// validateJWE checks an encrypted access token. It is encrypted for the resource server, so we cannot open it;
// the storage lookup by jweSignature that precedes this call is authoritative (it matched the exact token and
// checked revocation), and what is left is the shape and the grant's expiry.
func (s *tokenStrategy) validateJWE(r fosite.Requester, token string) error {
	algs := make([]jose.KeyAlgorithm, len(SupportedEncryptionAlgs))
	for i, a := range SupportedEncryptionAlgs {
		algs[i] = jose.KeyAlgorithm(a)
	}
	encs := make([]jose.ContentEncryption, len(SupportedEncryptionEncs))
	for i, e := range SupportedEncryptionEncs {
		encs[i] = jose.ContentEncryption(e)
	}
	obj, err := jose.ParseEncryptedCompact(token, algs, encs)
	if err != nil {
		return fosite.ErrInvalidTokenFormat.WithHint("Malformed encrypted access token.")
	}
	if cty, _ := obj.Header.ExtraHeaders[jose.HeaderContentType].(string); cty != jwtContentType {
		return fosite.ErrInvalidTokenFormat.WithHint("Not an encrypted JWT access token.")
	}
	return s.checkExpiry(r)
}

// encryptAccessToken nests a signed JWT access token in a JWE for the resource server, when the client asks.
func encryptAccessToken(r fosite.Requester, jwt string) (token string, encrypted bool, err error) {
	c, ok := r.GetClient().(encryptionClient)
	if !ok {
		return jwt, false, nil
	}
	key, alg, enc, ok := c.AccessTokenEncryption()
	if !ok {
		return jwt, false, nil
	}
	token, err = EncryptCompact([]byte(jwt), key, alg, enc, jwtContentType)
	if err != nil {
		return "", false, fmt.Errorf("access token for client %s: %w", r.GetClient().GetID(), err)
	}
	return token, true, nil
}

// encryptingIDTokenStrategy wraps fosite's ID token strategy: a client that registered ID token encryption gets
// the signed ID token nested in a JWE (OpenID Connect Core §10.2). Every fosite flow that issues an ID token
// (authorization code, refresh) goes through GenerateIDToken; fosite's other uses of the signer (id_token_hint)
// are untouched.
type encryptingIDTokenStrategy struct {
	inner openid.OpenIDConnectTokenStrategy
}

var _ openid.OpenIDConnectTokenStrategy = encryptingIDTokenStrategy{}

func (s encryptingIDTokenStrategy) GenerateIDToken(ctx context.Context, lifespan time.Duration, r fosite.Requester) (string, error) {
	withCurrentUser(r)
	token, err := s.inner.GenerateIDToken(ctx, lifespan, r)
	if err != nil {
		return "", err
	}
	c, ok := r.GetClient().(encryptionClient)
	if !ok {
		return token, nil
	}
	key, alg, enc, ok := c.IDTokenEncryption()
	if !ok {
		return token, nil
	}
	encrypted, err := EncryptCompact([]byte(token), key, alg, enc, jwtContentType)
	if err != nil {
		// Never fall back to a plain ID token: the client asked for its claims to be hidden.
		return "", fosite.ErrServerError.WithWrap(err).WithDebugf("ID token for client %s: %s", r.GetClient().GetID(), err)
	}
	return encrypted, nil
}
