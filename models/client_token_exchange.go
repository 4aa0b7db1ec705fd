package models

import (
	"slices"
	"strings"
)

// GrantTypeTokenExchange is OAuth 2.0 Token Exchange (RFC 8693 §2.1).
const GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// MaxTokenExchangeAudiences bounds a client's token exchange policy.
const MaxTokenExchangeAudiences = 50

// validateTokenExchange: a client exchanges tokens when an operator gave it a policy, the audiences it may ask
// for (TokenExchangeAudiences), and it registers the grant; one without the other is refused, so neither the
// grant list nor the policy alone says "may exchange". Only a confidential client: an exchange turns a token it
// was handed into one for another audience, which must be asked by a party that proves who it is. Never an admin
// client (client_credentials alone, validateAdmin).
func (c *Client) validateTokenExchange(p *problems) {
	grant := slices.Contains(c.GrantTypes, GrantTypeTokenExchange)
	policy := len(c.TokenExchangeAudiences) > 0
	switch {
	case grant && !policy:
		p.add("token_exchange_audiences", "the %s grant needs the audiences the client may ask for", GrantTypeTokenExchange)
	case policy && !grant:
		p.add("grant_types", "token exchange audiences need the %s grant", GrantTypeTokenExchange)
	case c.TokenExchangeDelegationOnly && !policy:
		p.add("token_exchange_delegation_only", "is a token exchange policy; the client has none")
	}
	if (grant || policy) && c.Public {
		p.add("public", "a public client cannot exchange tokens (it cannot authenticate)")
	}
	if len(c.TokenExchangeAudiences) > MaxTokenExchangeAudiences {
		p.add("token_exchange_audiences", "at most %d", MaxTokenExchangeAudiences)
	}
	for i, a := range c.TokenExchangeAudiences {
		switch {
		case a == "" || len(a) > 2000 || strings.ContainsAny(a, " \t\r\n"):
			p.add("token_exchange_audiences", "%q is not an audience (1 to 2000 characters, no spaces)", a)
		case slices.Contains(c.TokenExchangeAudiences[:i], a):
			p.add("token_exchange_audiences", "%q is listed twice", a)
		}
	}
}

// TokenExchangePolicy is what the provider checks an exchange against: the audiences the client may ask for
// (none: it may not exchange) and whether it must name an actor (delegation only).
func (c *Client) TokenExchangePolicy() (audiences []string, delegationOnly bool) {
	return clone(c.TokenExchangeAudiences), c.TokenExchangeDelegationOnly
}

// SignsInPool reports whether the users of pool are this client's users.
func (c *Client) SignsInPool(pool string) bool { return poolOrDefault(c.Pool) == poolOrDefault(pool) }
