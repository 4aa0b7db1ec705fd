package provider

import (
	"maps"
	"slices"
	"time"

	"github.com/ory/fosite/token/jwt"
)

// Identity is what the provider needs to know about a signed-in user to build tokens and userinfo.
type Identity struct {
	UserID        string
	Email         string
	EmailVerified bool
	Name          string
	Roles         []string
	Extras        map[string]any
	Pool          string
	UpdatedAt     time.Time
}

// UserClaims returns the claims the granted scopes release about the user: what userinfo answers and what the
// ID token carries. sub always; profile: name, updated_at and extras; email: email, email_verified; roles: roles.
func UserClaims(id Identity, granted []string) map[string]any {
	claims := map[string]any{"sub": id.UserID}
	if slices.Contains(granted, ScopeProfile) {
		claims["name"] = id.Name
		if !id.UpdatedAt.IsZero() {
			claims["updated_at"] = id.UpdatedAt.Unix()
		}
		if len(id.Extras) > 0 {
			claims[ExtrasClaim] = maps.Clone(id.Extras)
		}
	}
	if slices.Contains(granted, ScopeEmail) {
		claims["email"] = id.Email
		claims["email_verified"] = id.EmailVerified
	}
	if slices.Contains(granted, ScopeRoles) {
		roles := id.Roles
		if roles == nil {
			roles = []string{}
		}
		claims["roles"] = slices.Clone(roles)
	}
	if id.Pool != "" {
		claims["pool"] = id.Pool
	}
	return claims
}

// SessionFor builds the session of a grant made by a signed-in user: what the access token, refresh token and ID
// token will say. sid ties the grant to the browser session so ending that session revokes it. requestedAt is
// when the authorization request arrived; authTime when the user last authenticated.
func SessionFor(id Identity, granted []string, sid string, authTime, requestedAt time.Time) *Session {
	authTime = authTime.UTC().Truncate(time.Second)
	requestedAt = requestedAt.UTC().Truncate(time.Second)
	s := &Session{
		Subject:  id.UserID,
		SID:      sid,
		AuthTime: authTime,
		IDClaims: &jwt.IDTokenClaims{
			Subject:                         id.UserID,
			AuthTime:                        authTime,
			RequestedAt:                     requestedAt,
			AuthenticationMethodsReferences: []string{"pwd"},
		},
	}
	s.applyIdentity(id, granted)
	return s
}

// applyIdentity sets everything the session says about the user, for the granted scopes: the one rule for a new
// grant (SessionFor) and for tokens issued again from a stored one (fresh.go). What says how and when the user
// authenticated (subject, sid, auth_time, amr, nonce) is left alone.
func (s *Session) applyIdentity(id Identity, granted []string) {
	s.Username = id.Email
	s.Pool = id.Pool
	s.Roles = nil
	if slices.Contains(granted, ScopeRoles) {
		s.Roles = slices.Clone(id.Roles)
	}
	id.Extras = s.grantExtras(id.Extras)
	s.Extras = nil
	if len(id.Extras) > 0 {
		s.Extras = cloneJSONMap(id.Extras)
	}
	extra := UserClaims(id, granted)
	delete(extra, "sub")
	extra["sid"] = s.SID
	s.IDTokenClaims().Extra = extra
}
