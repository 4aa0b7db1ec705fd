package models

import (
	"slices"

	"github.com/google/uuid"
)

// What a new or changed client gets without asking, the same from every entry point (the CLI's clients
// commands, the admin API): Validate then checks the result.

// ApplyDefaults fills in what a new client left out: its chosen id as its name, else a random UUID as its id (and
// no name); the admin scope for an admin client; grant types by its kind (public, or first party with redirect
// URIs: the authorization code and refresh grants; a first-party app without them, signing users in through the
// token API: refresh only; else client_credentials); and the code response type with the authorization code grant.
func (c *Client) ApplyDefaults() {
	if c.Name == "" {
		c.Name = c.ID // a chosen id only: a generated one makes no name, and ValidateRegistration asks for one
	}
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	if c.Admin && !slices.Contains(c.Scopes, AdminScope) {
		c.Scopes = append(c.Scopes, AdminScope)
	}
	if len(c.GrantTypes) == 0 {
		switch {
		case c.Public, c.FirstParty && len(c.RedirectURIs) > 0:
			c.GrantTypes = []string{"authorization_code", "refresh_token"}
		case c.FirstParty:
			c.GrantTypes = []string{"refresh_token"}
		default:
			c.GrantTypes = []string{"client_credentials"}
		}
	}
	if len(c.ResponseTypes) == 0 && slices.Contains(c.GrantTypes, "authorization_code") {
		c.ResponseTypes = []string{"code"}
	}
}

// SetAdmin makes c an admin client, holding AdminScope, or takes that away with the scope and its admin pools.
func (c *Client) SetAdmin(admin bool) {
	c.Admin = admin
	c.Scopes = slices.DeleteFunc(c.Scopes, func(s string) bool { return s == AdminScope })
	if admin {
		c.Scopes = append(c.Scopes, AdminScope)
	} else {
		c.AdminPools = nil
	}
}

// SetAuthMethod changes how c authenticates at the token endpoint. An HMAC signing algorithm goes with
// client_secret_jwt only, so a change across that line drops the algorithm for the new method's default (a
// caller that names one sets it after).
func (c *Client) SetAuthMethod(method string) {
	if slices.Contains(ClientSecretJWTSigningAlgs, c.TokenEndpointAuthSigningAlg) != (method == AuthMethodClientSecretJWT) {
		c.TokenEndpointAuthSigningAlg = ""
	}
	c.TokenEndpointAuthMethod = method
}

// NeedsSealedSecret says whether c, whose method was before, has just become a confidential client_secret_jwt
// client: only a hash of its secret is kept, and verifying its assertions needs the secret itself, so it must be
// given a new one (UpdateClientAndSecret).
func (c *Client) NeedsSealedSecret(before string) bool {
	return c.TokenEndpointAuthMethod == AuthMethodClientSecretJWT && before != AuthMethodClientSecretJWT && !c.Public
}

// NeedsNewSecret says whether c, changed from was, must get a new secret (shown once, the old one gone): when it
// becomes client_secret_jwt (NeedsSealedSecret), and when a client that has a secret gains admin power, by
// becoming an admin client or administering more pools than it did. Whoever knew its secret was trusted with
// what the client could do then, not with more: a pool-limited admin that made the client, say.
func (c *Client) NeedsNewSecret(was *Client) bool {
	if c.NeedsSealedSecret(was.TokenEndpointAuthMethod) {
		return true
	}
	switch c.TokenEndpointAuthMethod {
	case "", AuthMethodClientSecretBasic, AuthMethodClientSecretPost, AuthMethodClientSecretJWT: // "": the default, basic
	default:
		return false // no secret to know: a public client, or one that signs with its own keys
	}
	switch {
	case c.Public || !c.Admin:
		return false
	case !was.Admin:
		return true
	case len(was.AdminPools) == 0: // it administered every pool already
		return false
	case len(c.AdminPools) == 0:
		return true
	}
	for _, p := range c.AdminPools {
		if !slices.Contains(was.AdminPools, p) {
			return true
		}
	}
	return false
}

// SignupAllowed is whether a new client lets users sign themselves up through it (if its pool allows sign-up
// too): a first-party app does unless asked (nil: not said) not to; no other client can.
func SignupAllowed(firstParty bool, asked *bool) bool {
	return firstParty && (asked == nil || *asked)
}
