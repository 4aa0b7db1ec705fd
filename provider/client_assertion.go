package provider

import (
	"context"
	"slices"

	"github.com/ory/fosite"
)

// private_key_jwt client authentication (RFC 7523 §2.2, OpenID Connect Core §9) is fosite's own
// (fosite.DefaultClientAuthenticationStrategy), at every endpoint that authenticates a client through it: token,
// introspection, revocation and PAR. It verifies the assertion with the client's registered keys and signing alg
// (models.Client.GetJSONWebKeys, GetTokenEndpointAuthSigningAlgorithm), requires iss = sub = the client id, a
// live exp and a jti it records once (models.Store.SetClientAssertionJWT: single-use across nodes until exp),
// and an aud among GetTokenURLs. This file gives it those audiences.

// assertionAudienceConfig is the provider's fosite config with the audiences a client assertion may name: the
// token endpoint, as RFC 7523 §3 and OpenID Connect Core §9 say, or the issuer, which RFC 7523 §3 also allows
// and which many clients send (the same assertion then serves at introspection, revocation and PAR).
type assertionAudienceConfig struct {
	*fosite.Config
	audiences []string
}

func (c *assertionAudienceConfig) GetTokenURLs(context.Context) []string { return c.audiences }

// withAssertionAudiences makes f accept client assertions whose aud is the token endpoint or the issuer.
func withAssertionAudiences(f fosite.OAuth2Provider, cfg *fosite.Config, issuer string) {
	if fo, ok := f.(*fosite.Fosite); ok {
		fo.Config = &assertionAudienceConfig{Config: cfg, audiences: []string{cfg.TokenURL, issuer}}
	}
}

// clientAssertionSigningAlgs are the algorithms discovery says a client may sign its assertions with: those
// fosite v0.49.0 verifies, and models.ClientAssertionSigningAlgs, the rule a client's registration obeys (the
// provider does not import models; e2e's discovery test holds the two equal).
var clientAssertionSigningAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

func assertionSigningAlgs() []string { return slices.Clone(clientAssertionSigningAlgs) }
