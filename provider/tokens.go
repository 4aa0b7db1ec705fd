package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/hmac"

	"github.com/latchkey/latchkey/faults"
)

// Access token formats a client (or the server default) can choose.
const (
	FormatOpaque = "opaque"
	FormatJWT    = "jwt"
)

// Token prefixes make Latchkey's tokens recognisable to secret scanners and to people reading logs.
const (
	prefixAccessToken   = "lk_at_"
	prefixRefreshToken  = "lk_rt_"
	prefixAuthorizeCode = "lk_ac_"
)

// jwtAccessTokenType is the RFC 9068 media type for JWT access tokens.
const jwtAccessTokenType = "at+jwt"

// SigningKeys is what the provider needs from the key manager: the active private key per algorithm, and every
// published public key by kid, so tokens signed before a rotation still verify.
type SigningKeys interface {
	SigningKey(alg string) (*jose.JSONWebKey, error)
	// LookupPublicKey answers (nil, nil) for a kid that is not ours and an error when it could not check.
	LookupPublicKey(kid string) (*jose.JSONWebKey, error)
}

// accessTokenFormatter is implemented by clients that choose their own access token format.
type accessTokenFormatter interface {
	GetAccessTokenFormat() string
}

// tokenStrategy issues opaque HMAC tokens (fosite's) with Latchkey prefixes, or RFC 9068 JWT access tokens
// when the client or the server default asks for them, nested in a JWE for the resource server when the client
// registered access token encryption. It tells them apart by shape: a JWE has five dot-separated parts, a JWT
// three, an HMAC token two.
type tokenStrategy struct {
	hmac          *oauth2.HMACSHAStrategyUnPrefixed
	keys          SigningKeys
	issuer        string
	defaultFormat string
	signingAlg    string
	now           func() time.Time
	signer        atomic.Pointer[cachedSigner]
}

type cachedSigner struct {
	kid    string
	signer jose.Signer
}

var _ oauth2.CoreStrategy = (*tokenStrategy)(nil)

func newTokenStrategy(cfg *fosite.Config, keys SigningKeys, issuer, defaultFormat, alg string, now func() time.Time) *tokenStrategy {
	return &tokenStrategy{
		hmac:          oauth2.NewHMACSHAStrategyUnPrefixed(&hmac.HMACStrategy{Config: cfg}, cfg),
		keys:          keys,
		issuer:        issuer,
		defaultFormat: defaultFormat,
		signingAlg:    alg,
		now:           now,
	}
}

func isJWT(token string) bool { return strings.Count(token, ".") == 2 }

func (s *tokenStrategy) formatFor(r fosite.Requester) string {
	if c, ok := r.GetClient().(accessTokenFormatter); ok {
		if f := c.GetAccessTokenFormat(); f != "" {
			return f
		}
	}
	return s.defaultFormat
}

func (s *tokenStrategy) AccessTokenSignature(ctx context.Context, token string) string {
	if isJWT(token) {
		return token[strings.LastIndexByte(token, '.')+1:]
	}
	if isJWE(token) {
		return jweSignature(token)
	}
	return s.hmac.AccessTokenSignature(ctx, strings.TrimPrefix(token, prefixAccessToken))
}

func (s *tokenStrategy) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	withCurrentUser(r)
	capAccessTokenExpiry(r, s.now())
	if s.formatFor(r) == FormatJWT {
		return s.generateJWT(r)
	}
	token, sig, err := s.hmac.GenerateAccessToken(ctx, r)
	if err != nil {
		return "", "", err
	}
	return prefixAccessToken + token, sig, nil
}

func (s *tokenStrategy) ValidateAccessToken(ctx context.Context, r fosite.Requester, token string) error {
	if isJWT(token) {
		return s.validateJWT(ctx, r, token)
	}
	if isJWE(token) {
		return s.validateJWE(r, token)
	}
	rest, ok := strings.CutPrefix(token, prefixAccessToken)
	if !ok {
		return fosite.ErrInvalidTokenFormat.WithHint("Not a Latchkey access token.")
	}
	return s.hmac.ValidateAccessToken(ctx, r, rest)
}

func (s *tokenStrategy) RefreshTokenSignature(ctx context.Context, token string) string {
	return s.hmac.RefreshTokenSignature(ctx, strings.TrimPrefix(token, prefixRefreshToken))
}

func (s *tokenStrategy) GenerateRefreshToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	token, sig, err := s.hmac.GenerateRefreshToken(ctx, r)
	if err != nil {
		return "", "", err
	}
	return prefixRefreshToken + token, sig, nil
}

func (s *tokenStrategy) ValidateRefreshToken(ctx context.Context, r fosite.Requester, token string) error {
	rest, ok := strings.CutPrefix(token, prefixRefreshToken)
	if !ok {
		return fosite.ErrInvalidTokenFormat.WithHint("Not a Latchkey refresh token.")
	}
	return s.hmac.ValidateRefreshToken(ctx, r, rest)
}

func (s *tokenStrategy) AuthorizeCodeSignature(ctx context.Context, token string) string {
	return s.hmac.AuthorizeCodeSignature(ctx, strings.TrimPrefix(token, prefixAuthorizeCode))
}

func (s *tokenStrategy) GenerateAuthorizeCode(ctx context.Context, r fosite.Requester) (string, string, error) {
	token, sig, err := s.hmac.GenerateAuthorizeCode(ctx, r)
	if err != nil {
		return "", "", err
	}
	return prefixAuthorizeCode + token, sig, nil
}

func (s *tokenStrategy) ValidateAuthorizeCode(ctx context.Context, r fosite.Requester, token string) error {
	rest, ok := strings.CutPrefix(token, prefixAuthorizeCode)
	if !ok {
		return fosite.ErrInvalidTokenFormat.WithHint("Not a Latchkey authorization code.")
	}
	return s.hmac.ValidateAuthorizeCode(ctx, r, rest)
}

// jwtSigner returns a signer for the active key, rebuilt only when rotation changed the key.
func (s *tokenStrategy) jwtSigner() (jose.Signer, error) {
	key, err := s.keys.SigningKey(s.signingAlg)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	if c := s.signer.Load(); c != nil && c.kid == key.KeyID {
		return c.signer, nil
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key},
		(&jose.SignerOptions{}).WithType(jwtAccessTokenType),
	)
	if err != nil {
		return nil, fmt.Errorf("build signer: %w", err)
	}
	s.signer.Store(&cachedSigner{kid: key.KeyID, signer: signer})
	return signer, nil
}

// AccessTokenClaims builds the RFC 9068 claim set for a requester. Registered claims are written last so custom
// claims can never override them.
func (s *tokenStrategy) accessTokenClaims(r fosite.Requester, now time.Time) map[string]any {
	sess, _ := r.GetSession().(*Session)
	claims := map[string]any{}
	if sess != nil {
		if len(sess.Extras) > 0 {
			claims[ExtrasClaim] = sess.Extras
		}
		if len(sess.Roles) > 0 {
			claims["roles"] = sess.Roles
		}
		if sess.Pool != "" {
			claims["pool"] = sess.Pool
		}
		if sess.SID != "" {
			claims["sid"] = sess.SID
		}
		if !sess.AuthTime.IsZero() {
			claims["auth_time"] = sess.AuthTime.Unix()
		}
		if len(sess.Act) > 0 {
			claims["act"] = sess.Act
		}
	}
	if jkt := sess.DPoPKey(); jkt != "" {
		claims["cnf"] = map[string]any{"jkt": jkt} // RFC 9449 §6.1
	}
	var aud any = s.issuer
	if ga := r.GetGrantedAudience(); len(ga) == 1 {
		aud = ga[0]
	} else if len(ga) > 1 {
		aud = []string(ga)
	}
	exp := r.GetSession().GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() {
		exp = now.Add(time.Hour)
	}
	claims["iss"] = s.issuer
	claims["sub"] = r.GetSession().GetSubject()
	claims["aud"] = aud
	claims["exp"] = exp.Unix()
	claims["iat"] = now.Unix()
	claims["jti"] = randomID()
	claims["client_id"] = r.GetClient().GetID()
	if scopes := r.GetGrantedScopes(); len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	return claims
}

func (s *tokenStrategy) generateJWT(r fosite.Requester) (string, string, error) {
	signer, err := s.jwtSigner()
	if err != nil {
		return "", "", err
	}
	payload, err := json.Marshal(s.accessTokenClaims(r, s.now()))
	if err != nil {
		return "", "", fmt.Errorf("encode access token claims: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", "", fmt.Errorf("sign access token: %w", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", "", fmt.Errorf("serialise access token: %w", err)
	}
	jwe, encrypted, err := encryptAccessToken(r, token)
	if err != nil {
		return "", "", err
	}
	if encrypted {
		return jwe, jweSignature(jwe), nil
	}
	return token, token[strings.LastIndexByte(token, '.')+1:], nil
}

var jwtAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// validateJWT checks that token is a JWT access token we signed (with any published key) and that the stored
// grant behind it has not expired. Revocation is checked by the storage lookup that precedes this call.
func (s *tokenStrategy) validateJWT(ctx context.Context, r fosite.Requester, token string) error {
	jws, err := jose.ParseSignedCompact(token, jwtAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return fosite.ErrInvalidTokenFormat.WithHint("Malformed JWT access token.")
	}
	hdr := jws.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != jwtAccessTokenType {
		return fosite.ErrInvalidTokenFormat.WithHint("Not a JWT access token.")
	}
	key, err := s.keys.LookupPublicKey(hdr.KeyID)
	if err != nil {
		// Not "invalid": the token may be ours, signed by a key this node could not load yet.
		faults.Note(ctx, err)
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	if key == nil {
		return fosite.ErrTokenSignatureMismatch.WithHint("Unknown signing key.")
	}
	if _, err := jws.Verify(key); err != nil {
		return fosite.ErrTokenSignatureMismatch.WithHint("Invalid JWT access token signature.")
	}
	return s.checkExpiry(r)
}

// checkExpiry refuses a token whose stored grant has expired.
func (s *tokenStrategy) checkExpiry(r fosite.Requester) error {
	if exp := r.GetSession().GetExpiresAt(fosite.AccessToken); !exp.IsZero() && exp.Before(s.now()) {
		return fosite.ErrTokenExpired.WithHint("Access token expired.")
	}
	return nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
