package models

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/jwe"
)

// The rules for a client live here, once. Every entry point (the CLI, the admin API, a future registration
// endpoint) calls the store, and the store's CreateClient, RegisterClient and UpdateClient run Validate, so no
// client breaking them can be stored. Each problem names the field as the client's JSON does (see Client).

// FieldError is one problem with one field of a client, named as in the client's JSON ("redirect_uris").
type FieldError struct {
	Field   string
	Problem string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Problem }

// ValidationError is every problem found with a client, in field order. It is ErrInvalid (errors.Is holds);
// errors.As gives the fields, so an entry point can name them its own way (the CLI as flags).
type ValidationError []FieldError

func (e ValidationError) Error() string {
	parts := make([]string, len(e))
	for i, f := range e {
		parts[i] = f.Error()
	}
	return ErrInvalid.Error() + ": " + strings.Join(parts, "; ")
}

func (e ValidationError) Unwrap() error { return ErrInvalid }

// problems collects FieldErrors.
type problems ValidationError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return ValidationError(p)
}

// Grant types, response types and access token formats a client may register.
var (
	clientGrantTypes    = []string{"authorization_code", "refresh_token", "client_credentials", "password", GrantTypeImplicit, GrantTypeTokenExchange, GrantTypeDeviceCode}
	clientResponseTypes = []string{"code", ResponseTypeIDToken}
	clientAuthMethods   = []string{AuthMethodClientSecretBasic, AuthMethodClientSecretPost, AuthMethodPrivateKeyJWT, AuthMethodClientSecretJWT, AuthMethodNone}
)

// Access token formats a client may ask for; "" is the server's default.
const (
	AccessTokenFormatOpaque = "opaque"
	AccessTokenFormatJWT    = "jwt"
)

// A client's refresh policy (Client.RefreshTokenRotation, Client.RefreshTokenReuseInterval).
const (
	RefreshTokenRotationOn  = "on"
	RefreshTokenRotationOff = "off"
	// MaxRefreshTokenReuseInterval bounds the reuse interval: it is for requests racing each other (two tabs, a
	// retry), not a second lifetime for a spent token.
	MaxRefreshTokenReuseInterval = 5 * time.Minute
)

// refreshTokenRotationOrDefault is how a rotation setting is stored: "" is on.
func refreshTokenRotationOrDefault(v string) string {
	if v == "" {
		return RefreshTokenRotationOn
	}
	return v
}

// MaxClientIDLength bounds a client id.
const MaxClientIDLength = 255

// Validate checks the rules every stored client obeys, and reports every problem at once as a ValidationError
// (ErrInvalid), each naming its field. CreateClient, RegisterClient and UpdateClient run it. It needs no
// database: that a pool exists is checked when the client is written.
func (c *Client) Validate() error {
	if c == nil {
		return ValidationError{{Field: "id", Problem: "is empty"}}
	}
	var p problems
	c.validate(&p)
	return p.err()
}

// ValidateRegistration is Validate plus what a new registration must also have: a name (users see it on the
// consent page) and, for the authorization_code grant, a redirect URI. RegisterClient runs it.
func (c *Client) ValidateRegistration() error {
	if c == nil {
		return c.Validate()
	}
	var p problems
	if strings.TrimSpace(c.Name) == "" {
		p.add("name", "is required")
	}
	c.validate(&p)
	if slices.Contains(c.GrantTypes, "authorization_code") && len(c.RedirectURIs) == 0 {
		p.add("redirect_uris", "at least one is required for the authorization_code grant")
	}
	if slices.Contains(c.GrantTypes, GrantTypeImplicit) && len(c.RedirectURIs) == 0 {
		p.add("redirect_uris", "at least one is required for the implicit grant")
	}
	return p.err()
}

func (c *Client) validate(p *problems) {
	switch {
	case c.ID == "":
		p.add("id", "is empty")
	case len(c.ID) > MaxClientIDLength || strings.ContainsAny(c.ID, " \t\r\n:"):
		p.add("id", "must be at most %d characters, without spaces or colons", MaxClientIDLength)
	}
	for _, u := range c.RedirectURIs {
		if !absoluteURIWithoutFragment(u) {
			p.add("redirect_uris", "%q must be an absolute URI without a fragment", u)
		}
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(clientGrantTypes, g) {
			p.add("grant_types", "unknown grant type %q (known: %s)", g, strings.Join(clientGrantTypes, ", "))
		}
	}
	for _, r := range c.ResponseTypes {
		if !slices.Contains(clientResponseTypes, r) {
			p.add("response_types", "unsupported response type %q (supported: %s)", r, strings.Join(clientResponseTypes, ", "))
		}
	}
	for _, s := range c.Scopes {
		if !validScopeToken(s) {
			p.add("scopes", "%q is not a valid scope token", s)
		}
	}
	c.validateImplicit(p)
	if c.Public && slices.Contains(c.GrantTypes, "client_credentials") {
		p.add("public", "public clients cannot use client_credentials (they have no secret)")
	}
	// RFC 9700 §2.4: the password grant must not be used. A first-party app of the operator's own, in a tool
	// that offers nothing better, may; an app of someone else's must never collect the users' passwords.
	if slices.Contains(c.GrantTypes, "password") && !c.FirstParty {
		p.add("grant_types", "grant type %q is only for first-party apps (first_party)", "password")
	}
	switch {
	case c.TokenEndpointAuthMethod == "":
	case !slices.Contains(clientAuthMethods, c.TokenEndpointAuthMethod):
		p.add("token_endpoint_auth_method", "unsupported method %q (supported: %s)", c.TokenEndpointAuthMethod, strings.Join(clientAuthMethods, ", "))
	case c.Public != (c.TokenEndpointAuthMethod == AuthMethodNone):
		p.add("token_endpoint_auth_method", "none goes with a public client, and only with it")
	}
	switch c.AccessTokenFormat {
	case "", AccessTokenFormatOpaque, AccessTokenFormatJWT:
	default:
		p.add("access_token_format", "unsupported format %q (want %s or %s)", c.AccessTokenFormat, AccessTokenFormatOpaque, AccessTokenFormatJWT)
	}
	for _, u := range c.PostLogoutRedirectURIs {
		if !absoluteURIWithoutFragment(u) {
			p.add("post_logout_redirect_uris", "%q must be an absolute URI without a fragment", u)
		}
	}
	for _, o := range c.AllowedOrigins {
		if _, ok := parseOrigin(o); !ok {
			p.add("allowed_origins", "%q is not an http(s) origin scheme://host[:port] without a path", o)
		}
	}
	if c.Pool != "" && validatePoolName(c.Pool) != nil {
		p.add("pool", "%q is not a pool name (1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit)", c.Pool)
	}
	c.validateAdmin(p)
	c.validateEncryption(p)
	c.validateRefreshPolicy(p)
	c.validateJWKS(p)
	c.validateSecretJWT(p)
	c.validateRequestObjects(p)
	c.validateTokenExchange(p)
	c.validateLogout(p)
	c.validateMagicLink(p)
}

// validateRefreshPolicy: rotation is on or off; the reuse interval is whole milliseconds from 0 to
// MaxRefreshTokenReuseInterval, and only means something while rotation is on (without rotation nothing is spent).
func (c *Client) validateRefreshPolicy(p *problems) {
	switch c.RefreshTokenRotation {
	case "", RefreshTokenRotationOn, RefreshTokenRotationOff:
	default:
		p.add("refresh_token_rotation", "%q is not on or off", c.RefreshTokenRotation)
	}
	switch d := c.RefreshTokenReuseInterval; {
	case d < 0 || d > MaxRefreshTokenReuseInterval:
		p.add("refresh_token_reuse_interval", "%s is outside 0 to %s", d, MaxRefreshTokenReuseInterval)
	case d%time.Millisecond != 0:
		p.add("refresh_token_reuse_interval", "%s is not a whole number of milliseconds", d)
	case d > 0 && c.RefreshTokenRotation == RefreshTokenRotationOff:
		p.add("refresh_token_reuse_interval", "is for rotated refresh tokens; with rotation off it must be 0")
	}
}

// The implicit flow as a client registers it: the ID token alone (provider.CheckFrontChannel).
const (
	GrantTypeImplicit = "implicit"
	// GrantTypeDeviceCode is RFC 8628's device authorization grant: no redirect URI, public clients allowed.
	GrantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	ResponseTypeIDToken = "id_token"
)

// validateImplicit: the id_token response type and the implicit grant go together, and the ID token goes only to
// an https redirect URI, or http on a loopback host (OpenID Connect Core §3.2.2.1).
func (c *Client) validateImplicit(p *problems) {
	grant, response := slices.Contains(c.GrantTypes, GrantTypeImplicit), slices.Contains(c.ResponseTypes, ResponseTypeIDToken)
	switch {
	case grant && !response:
		p.add("response_types", "the %s grant needs the %s response type", GrantTypeImplicit, ResponseTypeIDToken)
	case response && !grant:
		p.add("grant_types", "the %s response type needs the %s grant", ResponseTypeIDToken, GrantTypeImplicit)
	}
	if !grant && !response {
		return
	}
	for _, raw := range c.RedirectURIs {
		u, err := url.Parse(raw)
		if err != nil || !absoluteURIWithoutFragment(raw) {
			continue // reported above
		}
		host := u.Hostname()
		loopback := host == "localhost" || host == "127.0.0.1" || host == "::1"
		if u.Scheme != "https" && !(u.Scheme == "http" && loopback) {
			p.add("redirect_uris", "%q: an ID token is sent only to https, or http on localhost", raw)
		}
	}
}

// absoluteURIWithoutFragment: a scheme, a host for http(s), no fragment (RFC 6749 §3.1.2).
func absoluteURIWithoutFragment(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme != "" && u.Fragment == "" && !((u.Scheme == "http" || u.Scheme == "https") && u.Host == "")
}

// validScopeToken follows RFC 6749 §3.3: printable ASCII except space, double quote and backslash.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

// validateAdmin: admin power belongs to a backend acting for itself. An admin client is confidential, not a
// first-party app (those sign users in) and uses only client_credentials; AdminScope belongs to admin clients.
func (c *Client) validateAdmin(p *problems) {
	hasScope := slices.Contains(c.Scopes, AdminScope)
	if !c.Admin {
		if hasScope {
			p.add("scopes", "the %s scope is only for admin clients", AdminScope)
		}
		if len(c.AdminPools) > 0 {
			p.add("admin_pools", "admin pools are only for admin clients")
		}
		return
	}
	if c.Public {
		p.add("public", "an admin client cannot be public")
	}
	if c.FirstParty {
		p.add("first_party", "an admin client cannot be a first-party app (those sign users in)")
	}
	if len(c.GrantTypes) != 1 || c.GrantTypes[0] != "client_credentials" {
		p.add("grant_types", "an admin client uses only the client_credentials grant")
	}
	if !hasScope {
		p.add("scopes", "an admin client holds the %s scope", AdminScope)
	}
	for i, pool := range c.AdminPools {
		if validatePoolName(pool) != nil {
			p.add("admin_pools", "%q is not a pool name (1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit)", pool)
		} else if slices.Contains(c.AdminPools[:i], pool) {
			p.add("admin_pools", "admin pool %q is listed twice", pool)
		}
	}
}

// validateEncryption checks the encryption settings by jwe's rule, the one the provider applies before it
// encrypts: each JWK, if set, is a valid public key; each alg, if set, is supported and has a key it can encrypt
// to, and a supported enc (default jwe.DefaultEnc). An enc without an alg is refused, and so is access token
// encryption for a client whose access tokens are not JWTs (an opaque token cannot be encrypted).
func (c *Client) validateEncryption(p *problems) {
	type key struct {
		k   *jose.JSONWebKey
		bad bool // set but unusable (already reported)
	}
	keys := map[string]key{}
	for _, f := range []struct{ field, src string }{
		{"encryption_jwk", c.EncryptionJWK},
		{"access_token_encryption_jwk", c.AccessTokenEncryptionJWK},
	} {
		if f.src == "" {
			continue
		}
		k, err := jwe.ParsePublicJWK(f.src)
		if err != nil {
			p.add(f.field, "%v", err)
		}
		keys[f.field] = key{k: k, bad: err != nil}
	}
	for _, st := range []struct{ prefix, alg, enc, keyField string }{
		{"id_token_encrypted_response", c.IDTokenEncryptedResponseAlg, c.IDTokenEncryptedResponseEnc, "encryption_jwk"},
		{"userinfo_encrypted_response", c.UserinfoEncryptedResponseAlg, c.UserinfoEncryptedResponseEnc, "encryption_jwk"},
		{"access_token_encryption", c.AccessTokenEncryptionAlg, c.AccessTokenEncryptionEnc, "access_token_encryption_jwk"},
	} {
		algField, encField := st.prefix+"_alg", st.prefix+"_enc"
		if st.alg == "" {
			if st.enc != "" {
				p.add(encField, "is set without %s", algField)
			}
			continue
		}
		enc := st.enc
		if enc == "" {
			enc = jwe.DefaultEnc
		}
		k := keys[st.keyField]
		switch {
		case !jwe.SupportsAlg(st.alg):
			p.add(algField, "%q is not supported (supported: %s)", st.alg, strings.Join(jwe.Algs, ", "))
		case !jwe.SupportsEnc(enc):
			p.add(encField, "%q is not supported (supported: %s)", enc, strings.Join(jwe.Encs, ", "))
		case k.bad:
			p.add(algField, "needs a usable %s", st.keyField)
		case k.k == nil:
			p.add(algField, "is set but %s is empty", st.keyField)
		default:
			if err := jwe.CheckKey(k.k, st.alg, enc); err != nil {
				p.add(algField, "%s: %v", st.keyField, err)
			}
		}
	}
	if c.AccessTokenEncryptionAlg != "" && c.AccessTokenFormat != AccessTokenFormatJWT {
		p.add("access_token_encryption_alg", "needs access_token_format %s: only JWT access tokens are encrypted", AccessTokenFormatJWT)
	}
}
