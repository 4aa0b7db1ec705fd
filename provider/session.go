package provider

import (
	"maps"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// Session is what Latchkey stores with every grant: who the token is about and the claims it carries.
// It is serialised as JSON into the token rows, so field names are part of the storage format.
type Session struct {
	Subject   string                         `json:"sub,omitempty"`
	Username  string                         `json:"username,omitempty"`
	ClientID  string                         `json:"client_id,omitempty"`
	Roles     []string                       `json:"roles,omitempty"`
	Extras    map[string]any                 `json:"extras,omitempty"`
	Pool      string                         `json:"pool,omitempty"`
	SID       string                         `json:"sid,omitempty"`
	AuthTime  time.Time                      `json:"auth_time,omitzero"`
	ExpiresAt map[fosite.TokenType]time.Time `json:"expires_at,omitempty"`

	// GrantExtras are custom claims of this grant alone (minted by an admin client, mint.go): merged over the
	// user's extras in every token the grant issues, refreshes included, and never stored on the user.
	GrantExtras map[string]any `json:"grant_extras,omitempty"`
	// AccessTokenLifespan, when set, is the access-token lifetime of this grant (mint.go), at most the server's.
	AccessTokenLifespan time.Duration `json:"access_token_lifespan,omitempty"`

	// ClientAuthenticated: the client authenticated (a secret or an assertion) when this grant was issued or last
	// refreshed, so a refresh must authenticate it again (client_proof.go).
	ClientAuthenticated bool `json:"client_authenticated,omitempty"`
	// DPoPJKT is the thumbprint of the key the grant's tokens are bound to (RFC 9449), "" for bearer tokens: set
	// at every issuance from the request's proof (dpop.go).
	DPoPJKT string `json:"dpop_jkt,omitempty"`

	// Act is the actor chain of a token issued by token exchange (RFC 8693 §4.1): who acts for the subject, with
	// prior actors nested under "act". Carried in JWT access tokens and introspection.
	Act map[string]any `json:"act,omitempty"`

	// IDClaims and IDHeaders are what fosite's OpenID Connect handlers fill and sign into the ID token.
	IDClaims  *jwt.IDTokenClaims `json:"id_token_claims,omitempty"`
	IDHeaders *jwt.Headers       `json:"id_token_headers,omitempty"`

	// current is the user as re-read for this token request (fresh.go); tokens generated in it are built from
	// it. Never stored: fosite decodes the stored grant into the session again while it issues, and this stays.
	current *Identity
	// refreshScopes is the grant's scope when a refresh narrowed it: the new refresh token keeps it (fresh.go).
	refreshScopes []string
}

var (
	_ fosite.Session            = (*Session)(nil)
	_ fosite.ExtraClaimsSession = (*Session)(nil)
	_ openid.Session            = (*Session)(nil)
)

// IDTokenClaims returns the ID token claims, always the same pointer (fosite modifies them in place).
func (s *Session) IDTokenClaims() *jwt.IDTokenClaims {
	if s.IDClaims == nil {
		s.IDClaims = &jwt.IDTokenClaims{}
	}
	return s.IDClaims
}

// IDTokenHeaders returns the ID token headers, always the same pointer.
func (s *Session) IDTokenHeaders() *jwt.Headers {
	if s.IDHeaders == nil {
		s.IDHeaders = &jwt.Headers{}
	}
	return s.IDHeaders
}

// GetSID is the browser session the grant was made in; storage indexes it so ending that session revokes the grant.
func (s *Session) GetSID() string {
	if s == nil {
		return ""
	}
	return s.SID
}

// NewSession returns an empty session for fosite to fill while it parses a request.
func NewSession() *Session { return &Session{} }

func (s *Session) SetExpiresAt(key fosite.TokenType, exp time.Time) {
	if s.ExpiresAt == nil {
		s.ExpiresAt = make(map[fosite.TokenType]time.Time)
	}
	s.ExpiresAt[key] = exp
}

func (s *Session) GetExpiresAt(key fosite.TokenType) time.Time {
	if s == nil || s.ExpiresAt == nil {
		return time.Time{}
	}
	return s.ExpiresAt[key]
}

func (s *Session) GetUsername() string {
	if s == nil {
		return ""
	}
	return s.Username
}

func (s *Session) SetSubject(subject string) { s.Subject = subject }

func (s *Session) GetSubject() string {
	if s == nil {
		return ""
	}
	return s.Subject
}

// Clone returns a deep copy; fosite clones sessions before it lets a handler mutate one.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	c.refreshScopes = slices.Clone(s.refreshScopes)
	c.Roles = slices.Clone(s.Roles)
	c.Extras = cloneJSONMap(s.Extras)
	c.GrantExtras = cloneJSONMap(s.GrantExtras)
	c.Act = cloneJSONMap(s.Act)
	c.ExpiresAt = maps.Clone(s.ExpiresAt)
	if s.IDClaims != nil {
		ic := *s.IDClaims
		ic.Audience = slices.Clone(s.IDClaims.Audience)
		ic.AuthenticationMethodsReferences = slices.Clone(s.IDClaims.AuthenticationMethodsReferences)
		ic.Extra = cloneJSONMap(s.IDClaims.Extra)
		c.IDClaims = &ic
	}
	if s.IDHeaders != nil {
		c.IDHeaders = &jwt.Headers{Extra: cloneJSONMap(s.IDHeaders.Extra)}
	}
	return &c
}

// GetExtraClaims is what introspection adds to its response beyond the registered fields.
func (s *Session) GetExtraClaims() map[string]any {
	if s == nil {
		return nil
	}
	out := map[string]any{}
	if len(s.Roles) > 0 {
		out["roles"] = slices.Clone(s.Roles)
	}
	if s.Pool != "" {
		out["pool"] = s.Pool
	}
	if len(s.Extras) > 0 {
		out[ExtrasClaim] = cloneJSONMap(s.Extras)
	}
	if len(s.Act) > 0 {
		out["act"] = cloneJSONMap(s.Act)
	}
	return out
}

// ExtrasClaim is the claim under which a user's custom claims travel in tokens and introspection,
// so they can never collide with a registered claim.
const ExtrasClaim = "extras"

func cloneJSONMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneJSONValue(v)
	}
	return out
}

func cloneJSONValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return cloneJSONMap(t)
	case []any:
		c := make([]any, len(t))
		for i, e := range t {
			c[i] = cloneJSONValue(e)
		}
		return c
	default:
		return v
	}
}
