package provider

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	josev3 "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/faults"
)

// This is the one file that adapts our go-jose v4 keys to fosite, which speaks go-jose v3. A v3 JSONWebKey
// carries the kid into the JWT header; a raw key would not.

// toV3 converts a v4 private or public key to the v3 type fosite's signer expects.
func toV3(key any, kid, alg, use string) *josev3.JSONWebKey {
	return &josev3.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: use}
}

// idTokenSigner implements fosite's jwt.Signer: it signs with the active key and verifies with whichever
// published key the token names, so ID tokens (and id_token_hint values) from before a rotation still verify.
type idTokenSigner struct {
	keys SigningKeys
	alg  string
	sign *jwt.DefaultSigner
}

var _ jwt.Signer = (*idTokenSigner)(nil)

func newIDTokenSigner(keys SigningKeys, alg string) *idTokenSigner {
	s := &idTokenSigner{keys: keys, alg: alg}
	s.sign = &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) {
		k, err := keys.SigningKey(alg)
		if err != nil {
			return nil, fmt.Errorf("load signing key: %w", err)
		}
		return toV3(k.Key, k.KeyID, k.Algorithm, "sig"), nil
	}}
	return s
}

func (s *idTokenSigner) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	return s.sign.Generate(ctx, claims, header)
}

// keyFor looks the verification key up by the token's kid. A key that could not be looked up is noted as a
// fault of the request, so the endpoint answers 503 rather than "invalid token".
func (s *idTokenSigner) keyFor(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := s.keys.LookupPublicKey(kid)
		if err != nil {
			faults.Note(ctx, err)
			return nil, err
		}
		if k == nil {
			return nil, errors.New("unknown signing key")
		}
		return k.Key, nil
	}
}

func (s *idTokenSigner) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return jwt.Parse(token, s.keyFor(ctx))
}

func (s *idTokenSigner) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

func (s *idTokenSigner) GetSignature(_ context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("header, body and signature must all be set")
	}
	return parts[2], nil
}

func (s *idTokenSigner) Hash(_ context.Context, in []byte) ([]byte, error) {
	sum := sha256.Sum256(in)
	return sum[:], nil
}

func (s *idTokenSigner) GetSigningMethodLength(context.Context) int { return sha256.Size }

// IDTokenHint is what logout learns from an id_token_hint.
type IDTokenHint struct {
	Subject  string
	SID      string
	Audience []string
}

// DecodeIDTokenHint verifies that token is an ID token we issued (expired ones are fine, per OIDC RP-Initiated
// Logout §2) and returns who it was about.
func (p *Provider) DecodeIDTokenHint(ctx context.Context, token string) (IDTokenHint, error) {
	t, err := p.idSigner.Decode(ctx, token)
	var ve *jwt.ValidationError
	if err != nil && !(errors.As(err, &ve) && ve.Errors == jwt.ValidationErrorExpired && t != nil && t.Claims != nil) {
		return IDTokenHint{}, fmt.Errorf("decode id_token_hint: %w", err)
	}
	if iss, _ := t.Claims["iss"].(string); iss != p.Issuer {
		return IDTokenHint{}, errors.New("id_token_hint was not issued by this server")
	}
	h := IDTokenHint{}
	h.Subject, _ = t.Claims["sub"].(string)
	h.SID, _ = t.Claims["sid"].(string)
	switch aud := t.Claims["aud"].(type) {
	case string:
		h.Audience = []string{aud}
	case []any:
		for _, a := range aud {
			if s, ok := a.(string); ok {
				h.Audience = append(h.Audience, s)
			}
		}
	}
	if h.Subject == "" || len(h.Audience) == 0 {
		return IDTokenHint{}, errors.New("id_token_hint lacks sub or aud")
	}
	return h, nil
}
