package e2e

import "time"

// The CLI's --json output as a script reads it: decoded into the test's own types, not the CLI's, so a renamed or
// dropped field fails a test instead of moving with it.

// clientJSON is one client as `clients create|get|list --json` prints it.
type clientJSON struct {
	ClientID                string    `json:"client_id"`
	ClientSecret            string    `json:"client_secret,omitempty"`
	ClientName              string    `json:"client_name"`
	GrantTypes              []string  `json:"grant_types"`
	ResponseTypes           []string  `json:"response_types"`
	RedirectURIs            []string  `json:"redirect_uris"`
	Scope                   string    `json:"scope"`
	Audience                []string  `json:"audience"`
	Public                  bool      `json:"public"`
	TokenEndpointAuthMethod string    `json:"token_endpoint_auth_method"`
	AccessTokenFormat       string    `json:"access_token_format,omitempty"`
	FirstParty              bool      `json:"first_party"`
	Pool                    string    `json:"pool"`
	AllowSignup             bool      `json:"allow_signup"`
	Admin                   bool      `json:"admin"`
	AdminPools              []string  `json:"admin_pools"` // empty: every pool
	IDTokenEncryptedAlg     string    `json:"id_token_encrypted_response_alg,omitempty"`
	IDTokenEncryptedEnc     string    `json:"id_token_encrypted_response_enc,omitempty"`
	UserinfoEncryptedAlg    string    `json:"userinfo_encrypted_response_alg,omitempty"`
	UserinfoEncryptedEnc    string    `json:"userinfo_encrypted_response_enc,omitempty"`
	AccessTokenEncryptedAlg string    `json:"access_token_encryption_alg,omitempty"`
	AccessTokenEncryptedEnc string    `json:"access_token_encryption_enc,omitempty"`
	PostLogoutRedirectURIs  []string  `json:"post_logout_redirect_uris"`
	AllowedOrigins          []string  `json:"allowed_origins"`
	CreatedAt               time.Time `json:"created_at"`
}

// sessionJSON is one browser session as `sessions list --json` prints it.
type sessionJSON struct {
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	Device     string    `json:"device"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	CreatedAt  time.Time `json:"created_at"`
	LastActive time.Time `json:"last_active_at"`
	AuthTime   time.Time `json:"auth_time"`
	ExpiresAt  time.Time `json:"expires_at"`
}
