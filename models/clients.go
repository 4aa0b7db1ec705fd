package models

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

// Token endpoint authentication methods a client may use.
const (
	AuthMethodClientSecretBasic = "client_secret_basic"
	AuthMethodClientSecretPost  = "client_secret_post"
	AuthMethodNone              = "none"
	// AuthMethodPrivateKeyJWT: the client signs an assertion with a key of its JWKS (RFC 7523 §2.2).
	AuthMethodPrivateKeyJWT = "private_key_jwt"
	// AuthMethodClientSecretJWT: the client MACs an assertion with its secret (RFC 7523 §2.2, OIDC Core §9).
	AuthMethodClientSecretJWT = "client_secret_jwt"
)

// Client is a registered OAuth 2.0 client. *Client implements fosite.Client, fosite.OpenIDConnectClient and
// fosite.ResponseModeClient.
type Client struct {
	ID                      string   `json:"id"`
	Name                    string   `json:"name"`
	SecretHash              string   `json:"-"` // computed by the caller's hasher; "" for public clients
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scopes                  []string `json:"scopes"`
	Audience                []string `json:"audience"`
	Public                  bool     `json:"public"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"` // "" → none if Public, else client_secret_basic
	AccessTokenFormat       string   `json:"access_token_format"`        // "" (server default) | "opaque" | "jwt"
	// FirstParty clients are our own applications: the user is not asked for consent.
	FirstParty             bool     `json:"first_party"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	// AllowedOrigins are extra CORS origins (scheme://host[:port]) beyond those of the redirect URIs;
	// stored normalised (see Origin).
	AllowedOrigins []string `json:"allowed_origins"`
	// Pool is the user pool whose users sign in through this client ("" → DefaultPool when stored).
	Pool string `json:"pool"`
	// AllowSignup lets users sign themselves up through this client, if the pool also has SignupEnabled.
	AllowSignup bool `json:"allow_signup"`
	// Admin clients, and only they, hold AdminScope and may use the admin API: backends an operator marked so,
	// confidential and limited to client_credentials (see validateAdmin).
	Admin bool `json:"admin"`
	// AdminPools limits an admin client to the users of these pools; empty means every pool.
	AdminPools []string `json:"admin_pools"`

	// RefreshTokenRotation is RefreshTokenRotationOn ("" when not set, stored as on) or RefreshTokenRotationOff:
	// whether a refresh spends the presented refresh token and answers a new one (see RotatesRefreshTokens).
	RefreshTokenRotation string `json:"refresh_token_rotation"`
	// RefreshTokenReuseInterval is how long, with rotation on, a just-rotated refresh token may be presented again
	// (two tabs refreshing at once) and still be honoured, without revoking its grant; 0 (the default) means never.
	// Whole milliseconds, at most MaxRefreshTokenReuseInterval.
	RefreshTokenReuseInterval time.Duration `json:"refresh_token_reuse_interval"`

	// Encryption (OpenID Connect Core §10.2). JWKs are the JSON text of a public JWK; see IDTokenEncryption,
	// UserinfoEncryption and AccessTokenEncryption. An enc left empty means A256GCM.

	// EncryptionJWK is the client's own key, for ID token and userinfo encryption.
	EncryptionJWK                string `json:"encryption_jwk,omitempty"`
	IDTokenEncryptedResponseAlg  string `json:"id_token_encrypted_response_alg,omitempty"`
	IDTokenEncryptedResponseEnc  string `json:"id_token_encrypted_response_enc,omitempty"`
	UserinfoEncryptedResponseAlg string `json:"userinfo_encrypted_response_alg,omitempty"`
	UserinfoEncryptedResponseEnc string `json:"userinfo_encrypted_response_enc,omitempty"`
	// AccessTokenEncryptionJWK is the resource server's key, for JWT access token encryption.
	AccessTokenEncryptionJWK string `json:"access_token_encryption_jwk,omitempty"`
	AccessTokenEncryptionAlg string `json:"access_token_encryption_alg,omitempty"`
	AccessTokenEncryptionEnc string `json:"access_token_encryption_enc,omitempty"`

	// JWKS is the JSON text of the client's public JWK Set, for private_key_jwt (see validateJWKS).
	JWKS string `json:"jwks,omitempty"`
	// TokenEndpointAuthSigningAlg is the one algorithm the client's assertions are signed with; "" means the one
	// its keys imply (see GetTokenEndpointAuthSigningAlgorithm).
	TokenEndpointAuthSigningAlg string `json:"token_endpoint_auth_signing_alg,omitempty"`

	// SealedSecret is, for a client_secret_jwt client and no other, its secret itself, sealed by the provider
	// (provider.ClientSecretSealer: AES-256-GCM under a key derived from the system secret, bound to the client
	// id), to verify the HMAC of its assertions; SecretHash holds the same secret's hash. Never shown.
	SealedSecret string `json:"-"`
	// Signed request objects (RFC 9101, JAR; see client_request_objects.go), verified with the keys above.
	// RequireSignedRequestObject: every authorization request of the client comes as a request object, by value
	// or pushed with PAR; a plain one is refused.
	RequireSignedRequestObject bool `json:"require_signed_request_object,omitempty"`
	// RequestObjectSigningAlg is the one algorithm its request objects are signed with; "" means any of
	// RequestObjectSigningAlgs its keys fit. Never none.
	RequestObjectSigningAlg string `json:"request_object_signing_alg,omitempty"`
	// Keys by reference. JWKSURI is the https URL of the client's public JWK Set, which the server fetches and
	// caches (package jwksfetch): an alternative to JWKS, never both (see validateJWKS).
	JWKSURI string `json:"jwks_uri,omitempty"`
	// DPoPBoundAccessTokens: every token request of the client must carry a DPoP proof (RFC 9449 §5.2), so its
	// access tokens are all bound to a key it holds (client_dpop.go).
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`

	// Token exchange (RFC 8693; see client_token_exchange.go). TokenExchangeAudiences are the audiences (or RFC
	// 8707 resources) the client may ask an exchanged token for; non-empty exactly when it registers
	// GrantTypeTokenExchange. TokenExchangeDelegationOnly refuses an exchange without an actor token.
	TokenExchangeAudiences      []string `json:"token_exchange_audiences,omitempty"`
	TokenExchangeDelegationOnly bool     `json:"token_exchange_delegation_only,omitempty"`

	// Logout reaches the client (OpenID Connect Back-Channel and Front-Channel Logout 1.0; see
	// client_logout.go). BackchannelLogoutURI receives a signed logout token, server to server, when a session
	// the client took part in ends; FrontchannelLogoutURI is loaded in a hidden iframe of the signed-out page.
	// Each *SessionRequired asks for the session id (sid, and iss on the front channel) to be sent along.
	BackchannelLogoutURI              string `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired  bool   `json:"backchannel_logout_session_required,omitempty"`
	FrontchannelLogoutURI             string `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired bool   `json:"frontchannel_logout_session_required,omitempty"`

	// MagicLinkURL is the client's own page that a passwordless sign-in mail links to, with ?token=...; the page
	// sends the token to POST /api/v1/auth/otp/verify. "": the mail carries the code only.
	MagicLinkURL string `json:"magic_link_url,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// The JWKs parsed once, when the client was loaded or stored (see parsedJWK).
	encJWK, atJWK *parsedJWK
	// The JWKS parsed once, likewise (see parsedJWKS).
	jwks *parsedJWKS
}

var (
	_ fosite.Client              = (*Client)(nil)
	_ fosite.OpenIDConnectClient = (*Client)(nil)
	_ fosite.ResponseModeClient  = (*Client)(nil)
)

func (c *Client) GetID() string                   { return c.ID }
func (c *Client) GetHashedSecret() []byte         { return []byte(c.SecretHash) }
func (c *Client) GetRedirectURIs() []string       { return clone(c.RedirectURIs) }
func (c *Client) GetGrantTypes() fosite.Arguments { return fosite.Arguments(clone(c.GrantTypes)) }
func (c *Client) GetResponseTypes() fosite.Arguments {
	return fosite.Arguments(clone(c.ResponseTypes))
}
func (c *Client) GetScopes() fosite.Arguments   { return fosite.Arguments(clone(c.Scopes)) }
func (c *Client) IsPublic() bool                { return c.Public }
func (c *Client) GetAudience() fosite.Arguments { return fosite.Arguments(clone(c.Audience)) }

func (c *Client) GetRequestURIs() []string                 { return nil }
func (c *Client) GetJSONWebKeysURI() string                { return c.JWKSURI }
func (c *Client) GetRequestObjectSigningAlgorithm() string { return c.RequestObjectSigningAlg }

// GetTokenEndpointAuthMethod is TokenEndpointAuthMethod, defaulting to none for public clients and
// client_secret_basic for confidential ones.
func (c *Client) GetTokenEndpointAuthMethod() string {
	switch {
	case c.TokenEndpointAuthMethod != "":
		return c.TokenEndpointAuthMethod
	case c.Public:
		return AuthMethodNone
	default:
		return AuthMethodClientSecretBasic
	}
}

// GetResponseModes allows query and form_post, and fragment for a client registered for the ID token alone
// (the implicit flow's default; provider.CheckFrontChannel keeps an ID token out of the query).
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	if slices.Contains(c.ResponseTypes, ResponseTypeIDToken) {
		return []fosite.ResponseModeType{fosite.ResponseModeQuery, fosite.ResponseModeFragment, fosite.ResponseModeFormPost}
	}
	return []fosite.ResponseModeType{fosite.ResponseModeQuery, fosite.ResponseModeFormPost}
}

// AdminScope is the scope of the admin API. Only admin clients may hold it, and they only use client_credentials,
// so no grant made for a user can carry it.
const AdminScope = "latchkey.admin"

// AdministersPool reports whether c may manage the users of pool through the admin API.
func (c *Client) AdministersPool(pool string) bool {
	return c.Admin && (len(c.AdminPools) == 0 || slices.Contains(c.AdminPools, poolOrDefault(pool)))
}

// RotatesRefreshTokens reports whether a refresh spends the presented refresh token and answers a new one (the
// default). A client that does not rotate keeps presenting the refresh token it got at sign-in, which keeps
// working until its absolute expiry or until its grant is revoked.
func (c *Client) RotatesRefreshTokens() bool {
	return c.RefreshTokenRotation != RefreshTokenRotationOff
}

// RefreshReuseWindow is how long a spent refresh token of this client may be presented again: its reuse
// interval with rotation on, else 0.
func (c *Client) RefreshReuseWindow() time.Duration {
	if !c.RotatesRefreshTokens() {
		return 0
	}
	return c.RefreshTokenReuseInterval
}

func clone(v []string) []string {
	if v == nil {
		return nil
	}
	return append([]string{}, v...)
}

// clientRow is the clients table.
type clientRow struct {
	ID                      string    `gorm:"column:id;primaryKey"`
	Name                    string    `gorm:"column:name"`
	SecretHash              string    `gorm:"column:secret_hash"`
	RedirectURIs            string    `gorm:"column:redirect_uris"`
	GrantTypes              string    `gorm:"column:grant_types"`
	ResponseTypes           string    `gorm:"column:response_types"`
	Scopes                  string    `gorm:"column:scopes"`
	Audience                string    `gorm:"column:audience"`
	IsPublic                bool      `gorm:"column:is_public"`
	TokenEndpointAuthMethod string    `gorm:"column:token_endpoint_auth_method"`
	AccessTokenFormat       string    `gorm:"column:access_token_format"`
	FirstParty              bool      `gorm:"column:first_party"`
	PostLogoutRedirectURIs  string    `gorm:"column:post_logout_redirect_uris"`
	AllowedOrigins          string    `gorm:"column:allowed_origins"`
	Pool                    string    `gorm:"column:pool"`
	AllowSignup             bool      `gorm:"column:allow_signup"`
	Admin                   bool      `gorm:"column:admin"`
	AdminPools              string    `gorm:"column:admin_pools"`
	RefreshTokenRotation    string    `gorm:"column:refresh_token_rotation"`
	RefreshTokenReuseMS     int64     `gorm:"column:refresh_token_reuse_interval_ms"`
	EncryptionJWK           string    `gorm:"column:encryption_jwk"`
	IDTokenEncAlg           string    `gorm:"column:id_token_encrypted_response_alg"`
	IDTokenEncEnc           string    `gorm:"column:id_token_encrypted_response_enc"`
	UserinfoEncAlg          string    `gorm:"column:userinfo_encrypted_response_alg"`
	UserinfoEncEnc          string    `gorm:"column:userinfo_encrypted_response_enc"`
	AccessTokenEncJWK       string    `gorm:"column:access_token_encryption_jwk"`
	AccessTokenEncAlg       string    `gorm:"column:access_token_encryption_alg"`
	AccessTokenEncEnc       string    `gorm:"column:access_token_encryption_enc"`
	JWKS                    string    `gorm:"column:jwks"`
	TokenEndpointAuthAlg    string    `gorm:"column:token_endpoint_auth_signing_alg"`
	SealedSecret            string    `gorm:"column:client_secret_sealed"`
	RequireSignedRequestObj bool      `gorm:"column:require_signed_request_object"`
	RequestObjectSigningAlg string    `gorm:"column:request_object_signing_alg"`
	JWKSURI                 string    `gorm:"column:jwks_uri"`
	TokenExchangeAudiences  string    `gorm:"column:token_exchange_audiences"`
	TokenExchangeDelegation bool      `gorm:"column:token_exchange_delegation_only"`
	DPoPBoundAccessTokens   bool      `gorm:"column:dpop_bound_access_tokens"`
	BackchannelLogoutURI    string    `gorm:"column:backchannel_logout_uri"`
	BackchannelLogoutSID    bool      `gorm:"column:backchannel_logout_session_required"`
	FrontchannelLogoutURI   string    `gorm:"column:frontchannel_logout_uri"`
	FrontchannelLogoutSID   bool      `gorm:"column:frontchannel_logout_session_required"`
	MagicLinkURL            string    `gorm:"column:magic_link_url"`
	CreatedAt               time.Time `gorm:"column:created_at"`
	UpdatedAt               time.Time `gorm:"column:updated_at"`
}

func (clientRow) TableName() string { return "clients" }

func (r *clientRow) client() (*Client, error) {
	c := &Client{
		ID:                      r.ID,
		Name:                    r.Name,
		SecretHash:              r.SecretHash,
		Public:                  r.IsPublic,
		TokenEndpointAuthMethod: r.TokenEndpointAuthMethod,
		AccessTokenFormat:       r.AccessTokenFormat,
		FirstParty:              r.FirstParty,
		Pool:                    r.Pool,
		AllowSignup:             r.AllowSignup,
		Admin:                   r.Admin,

		RefreshTokenRotation:      r.RefreshTokenRotation,
		RefreshTokenReuseInterval: time.Duration(r.RefreshTokenReuseMS) * time.Millisecond,

		EncryptionJWK:                r.EncryptionJWK,
		IDTokenEncryptedResponseAlg:  r.IDTokenEncAlg,
		IDTokenEncryptedResponseEnc:  r.IDTokenEncEnc,
		UserinfoEncryptedResponseAlg: r.UserinfoEncAlg,
		UserinfoEncryptedResponseEnc: r.UserinfoEncEnc,
		AccessTokenEncryptionJWK:     r.AccessTokenEncJWK,
		AccessTokenEncryptionAlg:     r.AccessTokenEncAlg,
		AccessTokenEncryptionEnc:     r.AccessTokenEncEnc,

		JWKS:                        r.JWKS,
		TokenEndpointAuthSigningAlg: r.TokenEndpointAuthAlg,
		SealedSecret:                r.SealedSecret,

		RequireSignedRequestObject: r.RequireSignedRequestObj,
		RequestObjectSigningAlg:    r.RequestObjectSigningAlg,
		JWKSURI:                    r.JWKSURI,
		DPoPBoundAccessTokens:      r.DPoPBoundAccessTokens,

		TokenExchangeDelegationOnly: r.TokenExchangeDelegation,

		BackchannelLogoutURI:              r.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired:  r.BackchannelLogoutSID,
		FrontchannelLogoutURI:             r.FrontchannelLogoutURI,
		FrontchannelLogoutSessionRequired: r.FrontchannelLogoutSID,
		MagicLinkURL:                      r.MagicLinkURL,

		CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(),
	}
	c.cacheKeys()
	for _, f := range []struct {
		dst *[]string
		src string
	}{
		{&c.RedirectURIs, r.RedirectURIs}, {&c.GrantTypes, r.GrantTypes}, {&c.ResponseTypes, r.ResponseTypes},
		{&c.Scopes, r.Scopes}, {&c.Audience, r.Audience},
		{&c.PostLogoutRedirectURIs, r.PostLogoutRedirectURIs}, {&c.AllowedOrigins, r.AllowedOrigins},
		{&c.AdminPools, r.AdminPools}, {&c.TokenExchangeAudiences, r.TokenExchangeAudiences},
	} {
		v, err := decodeList(f.src)
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", r.ID, err)
		}
		*f.dst = v
	}
	return c, nil
}

// clientColumns are the mutable columns of c (all but id, secret_hash and the timestamps), with its
// already normalised allowed origins and pool.
func clientColumns(c *Client, allowedOrigins []string, pool string) map[string]any {
	return map[string]any{
		"name":                                 c.Name,
		"redirect_uris":                        encodeList(c.RedirectURIs),
		"grant_types":                          encodeList(c.GrantTypes),
		"response_types":                       encodeList(c.ResponseTypes),
		"scopes":                               encodeList(c.Scopes),
		"audience":                             encodeList(c.Audience),
		"is_public":                            c.Public,
		"token_endpoint_auth_method":           c.TokenEndpointAuthMethod,
		"access_token_format":                  c.AccessTokenFormat,
		"first_party":                          c.FirstParty,
		"post_logout_redirect_uris":            encodeList(c.PostLogoutRedirectURIs),
		"allowed_origins":                      encodeList(allowedOrigins),
		"pool":                                 pool,
		"allow_signup":                         c.AllowSignup,
		"admin":                                c.Admin,
		"admin_pools":                          encodeList(c.AdminPools),
		"refresh_token_rotation":               refreshTokenRotationOrDefault(c.RefreshTokenRotation),
		"refresh_token_reuse_interval_ms":      c.RefreshTokenReuseInterval.Milliseconds(),
		"encryption_jwk":                       c.EncryptionJWK,
		"id_token_encrypted_response_alg":      c.IDTokenEncryptedResponseAlg,
		"id_token_encrypted_response_enc":      c.IDTokenEncryptedResponseEnc,
		"userinfo_encrypted_response_alg":      c.UserinfoEncryptedResponseAlg,
		"userinfo_encrypted_response_enc":      c.UserinfoEncryptedResponseEnc,
		"access_token_encryption_jwk":          c.AccessTokenEncryptionJWK,
		"access_token_encryption_alg":          c.AccessTokenEncryptionAlg,
		"access_token_encryption_enc":          c.AccessTokenEncryptionEnc,
		"jwks":                                 c.JWKS,
		"token_endpoint_auth_signing_alg":      c.TokenEndpointAuthSigningAlg,
		"require_signed_request_object":        c.RequireSignedRequestObject,
		"request_object_signing_alg":           c.RequestObjectSigningAlg,
		"jwks_uri":                             c.JWKSURI,
		"token_exchange_audiences":             encodeList(c.TokenExchangeAudiences),
		"token_exchange_delegation_only":       c.TokenExchangeDelegationOnly,
		"dpop_bound_access_tokens":             c.DPoPBoundAccessTokens,
		"backchannel_logout_uri":               c.BackchannelLogoutURI,
		"backchannel_logout_session_required":  c.BackchannelLogoutSessionRequired,
		"frontchannel_logout_uri":              c.FrontchannelLogoutURI,
		"frontchannel_logout_session_required": c.FrontchannelLogoutSessionRequired,
		"magic_link_url":                       c.MagicLinkURL,
	}
}

// requirePools checks, in tx, the client's pool and the pools it administers.
func requirePools(tx *gorm.DB, pool string, adminPools []string) error {
	for _, p := range append([]string{pool}, adminPools...) {
		if err := requirePool(tx, p); err != nil {
			return err
		}
	}
	return nil
}

// RegisterClient stores a new registration: CreateClient, after checking what a registration must also have
// (see ValidateRegistration). Every entry point that registers clients (the CLI, a registration endpoint) calls
// it.
func (s *Store) RegisterClient(ctx context.Context, c *Client) error {
	if err := c.ValidateRegistration(); err != nil {
		return fmt.Errorf("register client: %w", err)
	}
	return s.CreateClient(ctx, c)
}

// CreateClient stores a new client and its origins (those of its http(s) redirect URIs and its
// AllowedOrigins), normalises c.AllowedOrigins, sets c.Pool ("" → DefaultPool) and its timestamps;
// ErrConflict if the id is taken, ErrInvalid if the client breaks a rule of Validate (a ValidationError naming
// every field at fault) or its pool or an admin pool does not exist.
func (s *Store) CreateClient(ctx context.Context, c *Client) error {
	if err := c.validateWithSecret(); err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	return s.createClient(ctx, c, nil, nil)
}

// createClient is CreateClient after validation: extra columns go into the row, and before runs first in the
// transaction (an error from it rolls everything back).
func (s *Store) createClient(ctx context.Context, c *Client, extra map[string]any, before func(tx *gorm.DB) error) error {
	allowed, err := normalizeAllowedOrigins(c.AllowedOrigins)
	if err != nil {
		return fmt.Errorf("create client %q: %w", c.ID, err)
	}
	pool := poolOrDefault(c.Pool)
	now := dbTime(s.now())
	cols := clientColumns(c, allowed, pool)
	cols["id"], cols["secret_hash"], cols["created_at"], cols["updated_at"] = c.ID, c.SecretHash, now, now
	cols["client_secret_sealed"] = c.SealedSecret
	maps.Copy(cols, extra)
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		if before != nil {
			if err := before(tx); err != nil {
				return err
			}
		}
		if err := requirePools(tx, pool, c.AdminPools); err != nil {
			return err
		}
		if err := tx.Model(&clientRow{}).Create(cols).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return ErrConflict
			}
			return mapErr(err)
		}
		if err := insertClientOrigins(tx, c.ID, clientOrigins(c.RedirectURIs, allowed)); err != nil {
			return err
		}
		return recordClientChange(ctx, tx, EventClientCreated, c.ID, nil)
	})
	if err != nil {
		return fmt.Errorf("create client %q: %w", c.ID, err)
	}
	c.AllowedOrigins, c.Pool = allowed, pool
	c.RefreshTokenRotation = refreshTokenRotationOrDefault(c.RefreshTokenRotation)
	c.CreatedAt, c.UpdatedAt = now, now
	c.cacheKeys()
	return nil
}

// UpdateClient replaces every mutable field of client c.ID (all but the id, the secret, which
// UpdateClientSecret changes, and CreatedAt) and its origins, as CreateClient stores them, in one
// transaction; it normalises c.AllowedOrigins and sets c.Pool and c.UpdatedAt. ErrNotFound if there is no
// such client, ErrInvalid as for CreateClient. Tokens already issued are not touched. A client no longer
// client_secret_jwt loses its sealed secret; one that becomes client_secret_jwt needs its secret sealed, which
// only a new secret gives (UpdateClientAndSecret), so UpdateClient refuses a client_secret_jwt client that has
// no sealed secret stored.
func (s *Store) UpdateClient(ctx context.Context, c *Client) error {
	return s.updateClient(ctx, c, false)
}

// UpdateClientAndSecret is UpdateClient that also replaces the client's secret with c.SecretHash and
// c.SealedSecret (for client_secret_jwt), in the same transaction: how a client moves to client_secret_jwt.
func (s *Store) UpdateClientAndSecret(ctx context.Context, c *Client) error {
	return s.updateClient(ctx, c, true)
}

func (s *Store) updateClient(ctx context.Context, c *Client, withSecret bool) error {
	validate := c.Validate
	if withSecret {
		validate = c.validateWithSecret
	}
	if err := validate(); err != nil {
		return fmt.Errorf("update client: %w", err)
	}
	return s.updateClientRow(ctx, c, withSecret, nil, nil)
}

// updateClientRow is updateClient after validation: the secret (hash and sealed copy) too when withSecret, extra
// columns too, and the row is updated only where the extra where condition holds as well (nil: none); a row it
// excludes is ErrNotFound.
func (s *Store) updateClientRow(ctx context.Context, c *Client, withSecret bool, extra map[string]any, where map[string]any) error {
	defer s.clients.forget(c.ID)
	allowed, err := normalizeAllowedOrigins(c.AllowedOrigins)
	if err != nil {
		return fmt.Errorf("update client %q: %w", c.ID, err)
	}
	pool := poolOrDefault(c.Pool)
	now := dbTime(s.now())
	cols := clientColumns(c, allowed, pool)
	cols["updated_at"] = now
	secretJWT := c.TokenEndpointAuthMethod == AuthMethodClientSecretJWT
	switch {
	case withSecret:
		cols["secret_hash"], cols["client_secret_sealed"] = c.SecretHash, c.SealedSecret
	case !secretJWT:
		cols["client_secret_sealed"] = ""
	}
	maps.Copy(cols, extra)
	now = cols["updated_at"].(time.Time) // extra may set its own (a conditional write's stamp)
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		if err := requirePools(tx, pool, c.AdminPools); err != nil {
			return err
		}
		before := storedClient(tx, c.ID)
		q := tx.Model(&clientRow{}).Where("id = ?", c.ID)
		if secretJWT && !withSecret {
			q = q.Where("client_secret_sealed <> ''") // in the statement: a concurrent change cannot slip between
		}
		if where != nil {
			q = q.Where(where)
		}
		res := q.UpdateColumns(cols)
		if res.Error != nil {
			return mapErr(res.Error)
		}
		switch {
		case res.RowsAffected == 0 && where != nil:
			return ErrNotFound // gone, or the condition no longer holds
		case res.RowsAffected == 0:
			if err := missingOrUnsealed(tx, c.ID, secretJWT && !withSecret); err != nil {
				return err
			}
			return ErrNotFound // the row is there and was not updated: it matched neither condition
		}
		if err := tx.Where("client_id = ?", c.ID).Delete(&clientOriginRow{}).Error; err != nil {
			return mapErr(err)
		}
		if err := insertClientOrigins(tx, c.ID, clientOrigins(c.RedirectURIs, allowed)); err != nil {
			return err
		}
		return recordClientChange(ctx, tx, EventClientUpdated, c.ID, before)
	})
	if err != nil {
		return fmt.Errorf("update client %q: %w", c.ID, err)
	}
	c.AllowedOrigins, c.Pool = allowed, pool
	c.RefreshTokenRotation = refreshTokenRotationOrDefault(c.RefreshTokenRotation)
	c.UpdatedAt = now
	if !secretJWT {
		c.SealedSecret = ""
	}
	c.cacheKeys()
	return nil
}

// GetClient implements fosite.ClientManager; an unknown id is fosite.ErrNotFound. It reads the row, unless the
// request runs under WithClientCache and the cache holds the client (see ClientCheck).
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	if c, ok := s.cachedClientForAuth(ctx, id); ok {
		return c, nil
	}
	return s.storedRequestClient(ctx, id, true)
}

// ClientByID returns a client; an unknown id is ErrNotFound.
func (s *Store) ClientByID(ctx context.Context, id string) (*Client, error) {
	var row clientRow
	if err := s.conn(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("get client: %w", mapErr(err))
	}
	return row.client()
}

// ListClients returns every client, oldest first.
func (s *Store) ListClients(ctx context.Context) ([]Client, error) {
	var rows []clientRow
	if err := s.conn(ctx).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list clients: %w", mapErr(err))
	}
	out := make([]Client, 0, len(rows))
	for i := range rows {
		c, err := rows[i].client()
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		out = append(out, *c)
	}
	return out, nil
}

// HasClients reports whether any client is registered: a server without one has just been set up.
func (s *Store) HasClients(ctx context.Context) (bool, error) {
	var ids []string
	if err := s.conn(ctx).Model(&clientRow{}).Limit(1).Pluck("id", &ids).Error; err != nil {
		return false, fmt.Errorf("look for clients: %w", mapErr(err))
	}
	return len(ids) > 0, nil
}

// DeleteClient deletes a client, its origins, the consents given to it and every token, code and request
// issued to it, in one transaction; ErrNotFound if there is no such client.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.deleteClient(ctx, id, nil)
}

// deleteClient is DeleteClient of a row that also matches where (nil: any); a row it excludes is ErrNotFound.
func (s *Store) deleteClient(ctx context.Context, id string, where map[string]any) error {
	defer s.clients.forget(id)
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		before := storedClient(tx, id)
		q := tx.Where("id = ?", id)
		if where != nil {
			q = q.Where(where)
		}
		res := q.Delete(&clientRow{})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		if err := recordClientChange(ctx, tx, EventClientDeleted, id, before); err != nil {
			return err
		}
		for _, table := range tokenTables {
			if err := tx.Table(table).Where("client_id = ?", id).Delete(&tokenRow{}).Error; err != nil {
				return mapErr(err)
			}
		}
		if err := tx.Where("client_id = ?", id).Delete(&clientOriginRow{}).Error; err != nil {
			return mapErr(err)
		}
		// Its device codes too: a pending one must not be approved for, or pass to, a client later made with
		// the same id.
		if err := tx.Where("client_id = ?", id).Delete(&deviceAuthorizationRow{}).Error; err != nil {
			return mapErr(err)
		}
		return mapErr(tx.Where("client_id = ?", id).Delete(&consentRow{}).Error)
	})
	if err != nil {
		return fmt.Errorf("delete client %q: %w", id, err)
	}
	return nil
}

// UpdateClientSecret replaces a client's secret: its hash and, for a client_secret_jwt client and only for one,
// the secret sealed (sealed is "" for any other). ErrNotFound if there is no such client; ErrConflict if sealed
// does not go with the client's method as stored (it changed since the caller read it).
func (s *Store) UpdateClientSecret(ctx context.Context, id, secretHash, sealed string) error {
	return s.UpdateClientSecretIf(ctx, id, secretHash, sealed, nil)
}

// UpdateClientSecretIf is UpdateClientSecret applied only while the client's updated_at is still unmodified
// (nil: always), in the same statement; ErrPreconditionFailed when it changed (say, it became an admin client
// since the caller read it and decided it may rotate its secret).
func (s *Store) UpdateClientSecretIf(ctx context.Context, id, secretHash, sealed string, unmodified *time.Time) error {
	defer s.clients.forget(id)
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		q := tx.Model(&clientRow{}).Where("id = ?", id)
		if sealed != "" {
			q = q.Where("token_endpoint_auth_method = ?", AuthMethodClientSecretJWT)
		} else {
			q = q.Where("token_endpoint_auth_method <> ?", AuthMethodClientSecretJWT)
		}
		at := dbTime(s.now())
		if unmodified != nil {
			q = q.Where("updated_at = ?", dbTime(*unmodified))
			at = stamp(at, *unmodified) // a new ETag even within the clock's resolution
		}
		res := q.UpdateColumns(map[string]any{"secret_hash": secretHash, "client_secret_sealed": sealed, "updated_at": at})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 0 && unmodified != nil {
			return unlessGone(tx, &clientRow{}, "id = ?", id)
		}
		if res.RowsAffected == 0 {
			err := missingOrUnsealed(tx, id, false)
			if err == nil {
				err = ValidationError{{Field: "token_endpoint_auth_method", Problem: "changed while the secret was being replaced; try again"}}
			}
			return err
		}
		return recordClientChange(ctx, tx, EventSecretRotated, id, nil)
	})
	if err != nil {
		return fmt.Errorf("update client secret: %w", err)
	}
	return nil
}

// Client assertion JWT ids (RFC 7523 replay protection).

type jtiRow struct {
	JTI       string    `gorm:"column:jti;primaryKey"`
	ExpiresAt time.Time `gorm:"column:expires_at"`
}

func (jtiRow) TableName() string { return "oauth2_jti" }

// ClientAssertionJWTValid returns fosite.ErrJTIKnown if jti was seen and has not expired, nil otherwise.
func (s *Store) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	var n int64
	err := s.conn(ctx).Model(&jtiRow{}).Where("jti = ? AND expires_at > ?", hashKey(jti), dbTime(s.now())).Count(&n).Error
	if err != nil {
		return fmt.Errorf("check client assertion jti: %w", mapErr(err))
	}
	if n > 0 {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT records jti until exp; fosite.ErrJTIKnown if it is already recorded and live. It is one
// statement, so of two nodes presenting the same jti at once exactly one wins: the primary key makes the insert
// fail for the second, and an expired row is taken over only by an update that re-checks its expiry. Expired rows
// are otherwise left to the cleanup (DeleteExpiredRound), not swept on the request path.
//
// When the request authenticated its client from the cache (WithClientCache), this is the statement that confirms
// that row: the jti is recorded only if the client's credentials are unchanged, else nothing is written and
// ErrStaleClient is returned, so the request can be answered again from a fresh row with the jti still unspent.
func (s *Store) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	check := s.unsettledCheck(ctx)
	if check != nil && check.stale {
		return ErrStaleClient
	}
	q, args := `INSERT INTO oauth2_jti (jti, expires_at) VALUES (?, ?)`, []any{hashKey(jti), dbTime(exp)}
	if check != nil {
		q = `INSERT INTO oauth2_jti (jti, expires_at) SELECT ?, ? WHERE` + clientStillSame
		args = append(args, check.stillSameArgs()...)
	}
	q += ` ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at WHERE oauth2_jti.expires_at <= ?`
	res := s.conn(ctx).Exec(q, append(args, dbTime(s.now()))...)
	if res.Error != nil {
		return fmt.Errorf("record client assertion jti: %w", mapErr(res.Error))
	}
	if res.RowsAffected == 1 {
		if check != nil {
			_ = check.settle(true)
		}
		return nil
	}
	if check != nil {
		if err := check.confirm(ctx); err != nil { // nothing written: the client changed, or the jti is known
			return err
		}
	}
	return fosite.ErrJTIKnown
}
