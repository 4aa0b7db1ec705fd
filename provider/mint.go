package provider

import (
	"context"
	"maps"
	"time"

	"github.com/ory/fosite"
)

// Minted grants: a backend (an admin client) has the token API issue tokens for one of its users without their
// password, Xano's createAuthenticationToken. They go through SignIn like a password sign-in, with two things of
// their own carried in the session and so kept by every refresh of the grant:
//   - GrantExtras: custom claims merged over the user's extras (the grant's win on a clash), never stored on
//     the user;
//   - AccessTokenLifespan: a shorter access-token lifetime than the server's, for this grant's access tokens.

// MintedSessionFor builds the session of a minted grant for the user id, tied to the session sid, at now. The
// user did not authenticate, so the ID token names no authentication method.
func MintedSessionFor(id Identity, granted []string, sid string, now time.Time, extras map[string]any, accessTokenLifespan time.Duration) *Session {
	s := SessionFor(id, granted, sid, now, now)
	s.IDTokenClaims().AuthenticationMethodsReferences = nil
	s.GrantExtras = cloneJSONMap(extras)
	s.AccessTokenLifespan = accessTokenLifespan
	s.applyIdentity(id, granted)
	return s
}

// CheckAccessTokenLifespan is the one rule for a grant's own access-token lifetime: more than zero and at most
// the server's access-token lifetime. The sign-in grant applies it too; callers check early with it so a request
// that cannot succeed starts nothing.
func (p *Provider) CheckAccessTokenLifespan(ctx context.Context, d time.Duration) error {
	return checkGrantLifespan(d, p.Config.GetAccessTokenLifespan(ctx))
}

func checkGrantLifespan(d, max time.Duration) error {
	if d <= 0 || d > max {
		return fosite.ErrInvalidRequest.WithHintf("expires_in must be between 1 and %d seconds.", int64(max/time.Second))
	}
	return nil
}

// grantExtras is the user's extras with the grant's merged over them.
func (s *Session) grantExtras(user map[string]any) map[string]any {
	if len(s.GrantExtras) == 0 {
		return user
	}
	out := cloneJSONMap(user)
	if out == nil {
		out = map[string]any{}
	}
	maps.Copy(out, cloneJSONMap(s.GrantExtras))
	return out
}

// capAccessTokenExpiry shortens the access-token expiry set for this request to the grant's own lifetime, from
// now. Token generation calls it, so a refresh of a minted grant (fosite's handler sets the server's lifetime)
// keeps the grant's, and fosite's answer (expires_in, from the session) agrees with the stored token.
func capAccessTokenExpiry(r fosite.Requester, now time.Time) {
	s, ok := r.GetSession().(*Session)
	if !ok || s.AccessTokenLifespan <= 0 {
		return
	}
	limit := now.UTC().Add(s.AccessTokenLifespan).Round(time.Second)
	// Only a real overrun: the sign-in grant already set exactly its lifetime, which rounding must not move.
	if exp := s.GetExpiresAt(fosite.AccessToken); exp.IsZero() || exp.Sub(limit) >= time.Second {
		s.SetExpiresAt(fosite.AccessToken, limit)
	}
}

// grantLifespan is the access-token lifetime of the grant in r: its own when it has one, else def. An own
// lifetime beyond def is refused (checkGrantLifespan).
func grantLifespan(r fosite.Requester, def time.Duration) (time.Duration, error) {
	s, ok := r.GetSession().(*Session)
	if !ok || s.AccessTokenLifespan == 0 {
		return def, nil
	}
	if err := checkGrantLifespan(s.AccessTokenLifespan, def); err != nil {
		return 0, err
	}
	return s.AccessTokenLifespan, nil
}
