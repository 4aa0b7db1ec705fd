// Package provider composes fosite into Latchkey's OAuth 2.0 engine: which grants exist, how tokens look,
// how clients authenticate, and what the discovery documents say about it.
package provider

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	"github.com/ory/fosite/storage"

	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/jwksfetch"
	"github.com/latchkey/latchkey/keys"
)

var _ fosite.JWKSFetcherStrategy = (*jwksfetch.Fetcher)(nil)

// Storage is everything fosite needs persisted. models.Store implements it.
type Storage interface {
	fosite.ClientManager
	oauth2.CoreStorage
	oauth2.TokenRevocationStorage
	pkce.PKCERequestStorage
	openid.OpenIDConnectRequestStorage
	fosite.PARStorage
	storage.Transactional
	RefreshPolicyStorage
	// SpendDPoPProof records a DPoP proof's jti, scoped to its key, until until; fosite.ErrJTIKnown if it is
	// recorded and live. One statement, so that across nodes a proof is spent once.
	SpendDPoPProof(ctx context.Context, jkt, jti string, until time.Time) error
}

// Options configure the provider. Lifespans of zero take the defaults below.
type Options struct {
	Issuer                string
	SystemSecret          []byte
	AccessTokenLifespan   time.Duration
	RefreshTokenLifespan  time.Duration
	AuthorizeCodeLifespan time.Duration
	IDTokenLifespan       time.Duration
	AccessTokenFormat     string // FormatOpaque (default) or FormatJWT
	SigningAlg            string // keys.RS256 (default) or keys.ES256
	Now                   func() time.Time
	// FormPostTemplate renders response_mode=form_post responses (fosite's default when nil).
	FormPostTemplate *template.Template
	// Directory is read again at every code exchange and refresh (required; see fresh.go).
	Directory Directory

	// DeviceCodes stores device authorizations (RFC 8628, device_grant.go); nil: no device code grant.
	DeviceCodes DeviceCodes

	// JWKSFetcher resolves clients' jwks_uri (default: a jwksfetch.Fetcher that dials public addresses only).
	JWKSFetcher fosite.JWKSFetcherStrategy
	// DPoPNonce: every DPoP proof must carry a nonce the server issued (RFC 9449 §8, §9; dpop.go).
	DPoPNonce bool
}

// Default lifespans. Codes are short-lived per RFC 9700; access tokens are short enough that revocation-by-expiry
// is tolerable for JWT verifiers that never introspect.
const (
	DefaultAccessTokenLifespan   = time.Hour
	DefaultRefreshTokenLifespan  = 30 * 24 * time.Hour
	DefaultAuthorizeCodeLifespan = time.Minute
	DefaultIDTokenLifespan       = time.Hour
)

// Provider is the composed OAuth 2.0 engine.
type Provider struct {
	// OAuth2 is the public OAuth 2.0 / OpenID Connect provider behind /oauth2/*.
	OAuth2 fosite.OAuth2Provider
	// tokenAPI is the token endpoint of the token API (firstparty.go), reached through SignIn and Refresh.
	tokenAPI fosite.OAuth2Provider
	// clientAuth is the public endpoints' client authentication (AuthenticateClient).
	clientAuth fosite.ClientAuthenticationStrategy
	idSigner   *idTokenSigner
	store      Storage
	core       oauth2.CoreStrategy
	Config     *fosite.Config
	Hasher     *SecretHasher
	Issuer     string
	options    Options

	// nonces are the server's DPoP nonces; nil when they are not required.
	nonces *dpop.Nonces

	// Sealer keeps a client_secret_jwt client's secret at rest (see client_secret_jwt.go).
	Sealer *ClientSecretSealer
}

// AuthenticateClient is fosite's client authentication as the public token, revocation and PAR endpoints run it
// (secrets and private_key_jwt assertions), for an endpoint whose fosite handler cannot take an assertion itself
// (introspection).
func (p *Provider) AuthenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	return p.clientAuth(ctx, r, form)
}

// ErrInvalidTarget is RFC 8707's error for a resource (audience) the client may not ask for.
var ErrInvalidTarget = &fosite.RFC6749Error{
	ErrorField:       "invalid_target",
	DescriptionField: "The requested resource is invalid, unknown, or not allowed for this client.",
	CodeField:        http.StatusBadRequest,
}

// exactAudience allows exactly the client's registered audiences and answers invalid_target otherwise.
func exactAudience(allowed []string, requested []string) error {
	if err := fosite.ExactAudienceMatchingStrategy(allowed, requested); err != nil {
		return ErrInvalidTarget.WithWrap(err)
	}
	return nil
}

// New composes exactly the fosite handlers Latchkey supports: of the implicit flow only the ID token alone
// (implicit.go), and the password grant only in its first-party form (password_grant.go).
func New(opts Options, store Storage, signing SigningKeys) (*Provider, error) {
	if opts.Issuer == "" {
		return nil, errors.New("provider: issuer is required")
	}
	if len(opts.SystemSecret) < 32 {
		return nil, errors.New("provider: system secret must be at least 32 bytes")
	}
	if opts.AccessTokenLifespan == 0 {
		opts.AccessTokenLifespan = DefaultAccessTokenLifespan
	}
	if opts.RefreshTokenLifespan == 0 {
		opts.RefreshTokenLifespan = DefaultRefreshTokenLifespan
	}
	if opts.AuthorizeCodeLifespan == 0 {
		opts.AuthorizeCodeLifespan = DefaultAuthorizeCodeLifespan
	}
	if opts.IDTokenLifespan == 0 {
		opts.IDTokenLifespan = DefaultIDTokenLifespan
	}
	switch opts.AccessTokenFormat {
	case "":
		opts.AccessTokenFormat = FormatOpaque
	case FormatOpaque, FormatJWT:
	default:
		return nil, fmt.Errorf("provider: unknown access token format %q", opts.AccessTokenFormat)
	}
	switch opts.SigningAlg {
	case "":
		opts.SigningAlg = keys.RS256
	case keys.RS256, keys.ES256:
	default:
		return nil, fmt.Errorf("provider: unsupported signing algorithm %q", opts.SigningAlg)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Directory == nil {
		return nil, errors.New("provider: a directory to re-read users and sessions is required")
	}
	store = grantStore{store}

	hasher := NewSecretHasher(opts.SystemSecret)
	cfg := &fosite.Config{
		AccessTokenLifespan:        opts.AccessTokenLifespan,
		RefreshTokenLifespan:       opts.RefreshTokenLifespan,
		AuthorizeCodeLifespan:      opts.AuthorizeCodeLifespan,
		IDTokenLifespan:            opts.IDTokenLifespan,
		IDTokenIssuer:              opts.Issuer,
		AccessTokenIssuer:          opts.Issuer,
		TokenURL:                   opts.Issuer + PathToken,
		GlobalSecret:               keys.Derive(opts.SystemSecret, "fosite-hmac"),
		ClientSecretsHasher:        hasher,
		ScopeStrategy:              fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:   exactAudience,
		SendDebugMessagesToClients: false,
		// RFC 9700 §2.1.1: PKCE for public clients, S256 only.
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		MinParameterEntropy:            fosite.MinParameterEntropy,
		AllowedPromptValues:            []string{"login", "none", "consent"},
		// A refresh token is issued only when offline_access was granted.
		RefreshTokenScopes:   []string{ScopeOfflineAccess},
		FormPostHTMLTemplate: opts.FormPostTemplate,
		JWKSFetcherStrategy:  opts.JWKSFetcher,
	}
	if cfg.JWKSFetcherStrategy == nil {
		cfg.JWKSFetcherStrategy = jwksfetch.New(jwksfetch.Options{})
	}
	idSigner := newIDTokenSigner(signing, opts.SigningAlg)
	strategy := &compose.CommonStrategy{
		CoreStrategy:               newTokenStrategy(cfg, signing, opts.Issuer, opts.AccessTokenFormat, opts.SigningAlg, opts.Now),
		OpenIDConnectTokenStrategy: encryptingIDTokenStrategy{inner: &openid.DefaultStrategy{Signer: idSigner, Config: cfg}},
		Signer:                     idSigner,
	}

	// Exactly the grants we support: no hybrid; the password grant in its own block below; of the implicit flow
	// only the ID token alone (implicit.go): never an access token in a URL.
	oauth := compose.Compose(cfg, store, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		idTokenOnlyImplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2PKCEFactory,
		compose.PushedAuthorizeHandlerFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
	)
	sealer := NewClientSecretSealer(opts.SystemSecret)
	withAssertionAudiences(oauth, cfg, opts.Issuer, store, sealer)
	recordJTIOnce(oauth, store)
	wrap := func(h fosite.TokenEndpointHandler) fosite.TokenEndpointHandler {
		return askFirst{oneRedemption{TokenEndpointHandler: narrowResources{withRefreshPolicy(h, store, strategy.CoreStrategy, cfg), cfg}, revoker: store}}
	}
	for i, h := range cfg.TokenEndpointHandlers {
		cfg.TokenEndpointHandlers[i] = wrap(h)
	}
	// Last, so it sees the grant fosite loaded and refuses before anything is issued or rotated.
	current := &currentGrant{dir: opts.Directory, store: store, core: strategy.CoreStrategy, now: opts.Now}
	// And a grant issued while its client authenticated is not refreshed by that client once it cannot (made public).
	cfg.TokenEndpointHandlers = append(cfg.TokenEndpointHandlers, current, clientProof{require: true}, dpopBinding{require: true})

	// The password grant (RFC 6749 §4.3) for first-party clients that register it; see password_grant.go.
	signIn := &signInGrant{config: cfg, store: store, core: strategy.CoreStrategy, idTokens: strategy.OpenIDConnectTokenStrategy, now: opts.Now}
	cfg.TokenEndpointHandlers = append(cfg.TokenEndpointHandlers, &passwordGrant{audience: cfg, signIn: signIn})
	// Token exchange (RFC 8693; token_exchange.go): the subject's user is read again in the handler itself.
	cfg.TokenEndpointHandlers = append(cfg.TokenEndpointHandlers, askFirst{&tokenExchange{config: cfg, store: store,
		core: strategy.CoreStrategy, keys: signing, issuer: opts.Issuer, dir: opts.Directory, now: opts.Now}})
	// The device code grant (RFC 8628), issuing like the sign-in; see device_grant.go.
	if opts.DeviceCodes != nil {
		cfg.TokenEndpointHandlers = append(cfg.TokenEndpointHandlers, &deviceGrant{codes: opts.DeviceCodes, signIn: signIn, dir: opts.Directory, now: opts.Now})
	}
	// First of all: it records on the grant that the client authenticated, before anything issues (client_proof.go).
	// So does the DPoP key the tokens are bound to (dpop.go).
	cfg.TokenEndpointHandlers = append(fosite.TokenEndpointHandlers{clientProof{}, dpopBinding{}}, cfg.TokenEndpointHandlers...)

	// The token API's endpoint: the same config, store and strategies; the sign-in and refresh grants; the
	// first-party client rule. See firstparty.go.
	apiCfg := &tokenAPIConfig{Config: cfg, handlers: fosite.TokenEndpointHandlers{
		clientProof{tokenAPI: true},
		dpopBinding{},
		&signInGrant{config: cfg, store: store, core: strategy.CoreStrategy, idTokens: strategy.OpenIDConnectTokenStrategy, now: opts.Now},
		wrap(compose.OAuth2RefreshTokenGrantFactory(cfg, store, strategy).(fosite.TokenEndpointHandler)),
		wrap(compose.OpenIDConnectRefreshFactory(cfg, store, strategy).(fosite.TokenEndpointHandler)),
		current,
		clientProof{tokenAPI: true, require: true},
		dpopBinding{require: true},
	}}
	tokenAPI := fosite.NewOAuth2Provider(store, apiCfg)
	recordJTIOnce(tokenAPI, store)
	apiCfg.auth = firstPartyAuth(assertionErrors(opts.Issuer, tokenAPI.DefaultClientAuthenticationStrategy), store)
	return &Provider{
		// Request objects outermost but for the responses: what they carry is the request the others see.
		OAuth2: authorizationEndpoint{OAuth2Provider: requestObjects{OAuth2Provider: resourceIndicators{oauth},
			clients: store, cfg: cfg, issuer: opts.Issuer, now: opts.Now}, cfg: cfg, issuer: opts.Issuer}, tokenAPI: tokenAPI,
		clientAuth: oauth.(*fosite.Fosite).AuthenticateClient,
		idSigner:   idSigner, store: store, core: strategy.CoreStrategy,
		Config: cfg, Hasher: hasher, Sealer: sealer, Issuer: opts.Issuer, options: opts, nonces: newDPoPNonces(opts),
	}, nil
}

// askFirst asks a token endpoint handler whether a request is its own before asking it to populate the response.
// Fosite offers every response to every handler, and each that does not apply refuses with an error carrying a
// freshly captured stack trace: a measurable share of a client_credentials grant's CPU, spent on nothing
// (docs/PERFORMANCE.md, "Figures behind the code").
type askFirst struct{ fosite.TokenEndpointHandler }

func (a askFirst) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !a.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	return a.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, req, resp)
}
