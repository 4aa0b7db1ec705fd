package models

import (
	"slices"
	"strings"

	"gorm.io/gorm"
)

// client_secret_jwt client authentication (RFC 7523 §2.2 with an HMAC, OpenID Connect Core §9). The provider
// verifies the assertion (provider/client_secret_jwt.go) with the client's secret, which such a client, and only
// such a client, also keeps sealed (Client.SealedSecret). The rules for what it may register are here, once.

// ClientSecretJWTSigningAlgs are the algorithms a client_secret_jwt client may MAC its assertions with; unset
// means HS256.
var ClientSecretJWTSigningAlgs = []string{"HS256", "HS384", "HS512"}

// GetSealedSecret is the client's secret sealed, for a client_secret_jwt client; "" for any other.
func (c *Client) GetSealedSecret() string { return c.SealedSecret }

// validateSecretJWT: a client_secret_jwt client (confidential: validate refuses a public one) MACs with one of
// ClientSecretJWTSigningAlgs and registers no JWK Set (it would verify nothing).
func (c *Client) validateSecretJWT(p *problems) {
	if c.TokenEndpointAuthMethod != AuthMethodClientSecretJWT {
		return
	}
	if alg := c.TokenEndpointAuthSigningAlg; alg != "" && !slices.Contains(ClientSecretJWTSigningAlgs, alg) {
		p.add("token_endpoint_auth_signing_alg", "%q is not an HMAC alg client_secret_jwt uses (supported: %s)", alg, strings.Join(ClientSecretJWTSigningAlgs, ", "))
	}
	if c.JWKS != "" {
		p.add("jwks", "is for private_key_jwt; a client_secret_jwt client signs with its secret (remove the JWK Set)")
	}
}

// validateWithSecret is Validate for a client stored with its secret (CreateClient, UpdateClientAndSecret): a
// client_secret_jwt client has its secret hashed and sealed, and no other client has a sealed secret.
// (UpdateClient writes no secret: it clears the sealed one of a client that is no longer client_secret_jwt.)
func (c *Client) validateWithSecret() error {
	if c == nil {
		return c.Validate()
	}
	var p problems
	c.validate(&p)
	switch {
	case c.TokenEndpointAuthMethod != AuthMethodClientSecretJWT && c.SealedSecret != "":
		p.add("client_secret", "only a client_secret_jwt client keeps its secret sealed")
	case c.TokenEndpointAuthMethod == AuthMethodClientSecretJWT && (c.SecretHash == "" || c.SealedSecret == ""):
		p.add("client_secret", "a client_secret_jwt client is stored with its secret hashed and sealed")
	}
	return p.err()
}

// missingOrUnsealed says why an update of client id touched no row: ErrNotFound if there is no such client, or,
// when the update required one (unsealed), that the client has no sealed secret; nil if neither holds.
func missingOrUnsealed(tx *gorm.DB, id string, unsealed bool) error {
	var sealed []string
	err := tx.Model(&clientRow{}).Where("id = ?", id).Limit(1).Pluck("client_secret_sealed", &sealed).Error
	switch {
	case err != nil:
		return mapErr(err)
	case len(sealed) == 0:
		return ErrNotFound
	case unsealed && sealed[0] == "":
		return ValidationError{{Field: "token_endpoint_auth_method", Problem: "client_secret_jwt needs the client's secret sealed, and its secret so far is kept only hashed: give it a new secret as it switches"}}
	}
	return nil
}
