package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/ory/fosite/token/jwt"
)

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0).
const (
	// BackchannelLogoutEvent is the event a logout token carries (§2.4).
	BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"
	// LogoutTokenType is the logout token's typ header (§2.4, recommended explicit typing).
	LogoutTokenType = "logout+jwt"
	// LogoutTokenLifespan is how long a logout token is valid after it is signed, which is when it is sent: a
	// retried delivery gets a fresh one.
	LogoutTokenLifespan = 2 * time.Minute
)

// LogoutToken signs, with the key ID tokens are signed with, a logout token telling the client clientID that the
// session sid of subject ended (§2.4): iss, aud, iat, exp, jti, events, sub and sid; never a nonce.
func (p *Provider) LogoutToken(ctx context.Context, clientID, subject, sid string, now time.Time) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("logout token: %w", err)
	}
	claims := jwt.MapClaims{
		"iss":    p.Issuer,
		"aud":    clientID,
		"iat":    now.Unix(),
		"exp":    now.Add(LogoutTokenLifespan).Unix(),
		"jti":    base64.RawURLEncoding.EncodeToString(b[:]),
		"events": map[string]any{BackchannelLogoutEvent: map[string]any{}},
	}
	if subject != "" {
		claims["sub"] = subject
	}
	if sid != "" {
		claims["sid"] = sid
	}
	tok, _, err := p.idSigner.Generate(ctx, claims, &jwt.Headers{Extra: map[string]any{"typ": LogoutTokenType}})
	if err != nil {
		return "", fmt.Errorf("logout token: %w", err)
	}
	return tok, nil
}
