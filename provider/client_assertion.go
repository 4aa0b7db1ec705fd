package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/faults"
	"github.com/latchkey/latchkey/jwksfetch"
)

// private_key_jwt client authentication (RFC 7523 §2.2, OpenID Connect Core §9) is fosite's own
// (fosite.DefaultClientAuthenticationStrategy), at every endpoint that authenticates a client through it: token,
// introspection, revocation and PAR. It verifies the assertion with the client's registered keys and signing alg
// (models.Client.GetJSONWebKeys, GetTokenEndpointAuthSigningAlgorithm), requires iss = sub = the client id, a
// live exp and a jti it records once (models.Store.SetClientAssertionJWT: single-use across nodes until exp),
// and an aud among GetTokenURLs. This file gives it those audiences, puts the client_secret_jwt verifier in
// front of it (client_secret_jwt.go: an HMAC-signed assertion never reaches fosite), and answers every refused
// assertion invalid_client (see assertionErrors).

// assertionAudienceConfig is the provider's fosite config with the audiences a client assertion may name: the
// token endpoint, as RFC 7523 §3 and OpenID Connect Core §9 say; the issuer, which RFC 7523 §3 also allows and
// which many clients send (the same assertion then serves at introspection, revocation and PAR); and the endpoint
// the assertion is presented at, which clients of introspection, revocation and PAR send (Keycloak and
// node-oidc-provider accept it too). An assertion for one endpoint is not accepted at another (but the token
// endpoint's and the issuer's are accepted at all of them).
type assertionAudienceConfig struct {
	*fosite.Config
	audiences []string
	auth      fosite.ClientAuthenticationStrategy
}

func (c *assertionAudienceConfig) GetTokenURLs(ctx context.Context) []string {
	return assertionAudiences(ctx, c.audiences)
}

// assertionAudiences is base and, if ctx is marked (withAssertionEndpoint), the endpoint's URL.
func assertionAudiences(ctx context.Context, base []string) []string {
	if at, ok := ctx.Value(assertionEndpointKey{}).(string); ok && !slices.Contains(base, at) {
		return append(slices.Clone(base), at)
	}
	return base
}

// assertionEndpointKey marks a context with the URL of the client-authenticating endpoint a request came to.
type assertionEndpointKey struct{}

// clientAuthPaths are the endpoints where a client authenticates, whose URL may be an assertion's aud.
var clientAuthPaths = []string{PathToken, PathIntrospect, PathRevoke, PathPAR}

// withAssertionEndpoint marks ctx with the URL (issuer + path) of the endpoint r came to, if clients
// authenticate there.
func withAssertionEndpoint(ctx context.Context, issuer string, r *http.Request) context.Context {
	if r == nil || !slices.Contains(clientAuthPaths, r.URL.Path) {
		return ctx
	}
	return context.WithValue(ctx, assertionEndpointKey{}, issuer+r.URL.Path)
}

func (c *assertionAudienceConfig) GetClientAuthenticationStrategy(context.Context) fosite.ClientAuthenticationStrategy {
	return c.auth
}

// withAssertionAudiences makes f accept client assertions whose aud is the token endpoint, the issuer or the
// endpoint presented at, verify HMAC-signed ones itself (client_secret_jwt, see client_secret_jwt.go), and answer
// a refused one invalid_client.
func withAssertionAudiences(f fosite.OAuth2Provider, cfg *fosite.Config, issuer string, clients fosite.ClientManager, sealer *ClientSecretSealer) {
	if fo, ok := f.(*fosite.Fosite); ok {
		audiences := []string{cfg.TokenURL, issuer}
		secrets := &secretAssertions{clients: clients, sealer: sealer, audiences: audiences, now: time.Now}
		fo.Config = &assertionAudienceConfig{Config: cfg, audiences: audiences,
			auth: assertionErrors(issuer, secrets.wrap(fo.DefaultClientAuthenticationStrategy))}
	}
}

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionErrors answers a client assertion fosite refused with invalid_client, as RFC 7523 §3.2 asks. fosite
// answers some refusals otherwise: a replayed jti jti_known (not an OAuth error code, and 200 at revocation, whose
// writer answers 200 to all but invalid_request and invalid_client), a kid it cannot find invalid_request, and an
// expired assertion an untyped error (500). A server fault stays one: an error fosite made 5xx, and any error
// while the database could not serve (faults; the handlers answer 503).
func assertionErrors(issuer string, next fosite.ClientAuthenticationStrategy) fosite.ClientAuthenticationStrategy {
	return func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		ctx = withAssertionEndpoint(ctx, issuer, r)
		if form.Get("client_assertion_type") == clientAssertionType {
			if err := assertionExpiresSoon(form.Get("client_assertion"), time.Now()); err != nil {
				return nil, err
			}
			ctx = jwksfetch.WithClientID(ctx, assertionClientID(form))
		}
		c, err := next(ctx, r, form)
		if err == nil || form.Get("client_assertion_type") != clientAssertionType || form.Get("client_assertion") == "" ||
			errors.Is(err, fosite.ErrInvalidClient) || faults.Recorded(ctx) != nil {
			return c, err
		}
		var fetch *jwksfetch.Error
		if errors.As(err, &fetch) { // the client's JWKS host failed (logged by the fetcher): the client's fault
			return nil, fosite.ErrInvalidClient.WithHint("The client's JWK Set could not be fetched from its jwks_uri.").WithWrap(err).WithDebug(err.Error())
		}
		var rfc *fosite.RFC6749Error
		if errors.As(err, &rfc) {
			if rfc.CodeField >= http.StatusInternalServerError {
				return nil, err
			}
			return nil, fosite.ErrInvalidClient.WithHint(rfc.HintField).WithWrap(err).WithDebug(rfc.DebugField)
		}
		return nil, fosite.ErrInvalidClient.WithHint("The client assertion could not be verified.").WithWrap(err).WithDebug(err.Error())
	}
}

// assertionClientID is the client an assertion claims to be, as fosite looks it up: client_id if the form has
// one, else the assertion's sub (unverified: only for the log).
func assertionClientID(form url.Values) string {
	if id := form.Get("client_id"); id != "" {
		return id
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	parts := strings.Split(form.Get("client_assertion"), ".")
	if len(parts) == 3 {
		if payload, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			_ = json.Unmarshal(payload, &claims)
		}
	}
	return claims.Sub
}

// clientAssertionSigningAlgs are the algorithms discovery says a client may sign its assertions with: those
// fosite v0.49.0 verifies, and models.ClientAssertionSigningAlgs, the rule a client's registration obeys (the
// provider does not import models; e2e's discovery test holds the two equal).
var clientAssertionSigningAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// assertionSigningAlgs are those and the HMAC algs of client_secret_jwt (secretAssertionAlgs).
func assertionSigningAlgs() []string {
	out := slices.Clone(clientAssertionSigningAlgs)
	for _, alg := range secretAssertionAlgs {
		out = append(out, string(alg))
	}
	return out
}

// MaxClientAssertionLifetime is how far in the future a client assertion's exp may be. fosite records each jti
// until its exp and bounds neither; a short bound keeps the jti table small and a stolen assertion short-lived.
const MaxClientAssertionLifetime = 10 * time.Minute

// assertionExpiresSoon refuses an assertion whose exp is more than MaxClientAssertionLifetime after now (the wall
// clock, which fosite checks exp against), before fosite verifies it or records its jti. It reads the claims
// without verifying them: it only ever refuses. A missing or malformed exp is left to fosite, which refuses it.
func assertionExpiresSoon(assertion string, now time.Time) error {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return nil
	}
	exp, err := claims.Exp.Float64()
	if err != nil {
		return nil
	}
	if limit := now.Add(MaxClientAssertionLifetime); exp > float64(limit.Unix()) {
		return fosite.ErrInvalidClient.WithHint(fmt.Sprintf("The client assertion's exp is more than %s away; sign assertions that expire sooner.", MaxClientAssertionLifetime))
	}
	return nil
}
