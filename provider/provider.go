// Package provider composes fosite into Latchkey's OAuth 2.0 engine: which grants exist, how tokens look,
// how clients authenticate, and what the discovery documents say about it.
package provider

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	"github.com/ory/fosite/storage"

	"github.com/latchkey/latchkey/keys"
)

// Storage is everything fosite needs persisted. models.Store implements it.
type Storage interface {
	fosite.ClientManager
	oauth2.CoreStorage
	oauth2.TokenRevocationStorage
	pkce.PKCERequestStorage
	openid.OpenIDConnectRequestStorage
	fosite.PARStorage
	storage.Transactional
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
	OAuth2   fosite.OAuth2Provider
	idSigner *idTokenSigner
	store    Storage
	core     oauth2.CoreStrategy
	idTokens openid.OpenIDConnectTokenStrategy
	Config   *fosite.Config
	Hasher   *SecretHasher
	Issuer   string
	options  Options
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

// New composes exactly the fosite handlers Latchkey supports; nothing implicit, no password grant.
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
	}
	idSigner := newIDTokenSigner(signing, opts.SigningAlg)
	strategy := &compose.CommonStrategy{
		CoreStrategy:               newTokenStrategy(cfg, signing, opts.Issuer, opts.AccessTokenFormat, opts.SigningAlg, opts.Now),
		OpenIDConnectTokenStrategy: encryptingIDTokenStrategy{inner: &openid.DefaultStrategy{Signer: idSigner, Config: cfg}},
		Signer:                     idSigner,
	}

	// Exactly the grants we support: no implicit, no hybrid, no password grant.
	oauth := compose.Compose(cfg, store, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2PKCEFactory,
		compose.PushedAuthorizeHandlerFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
	)
	for i, h := range cfg.TokenEndpointHandlers {
		cfg.TokenEndpointHandlers[i] = askFirst{oneRedemption{TokenEndpointHandler: h, revoker: store}}
	}
	// Last, so it sees the grant fosite loaded and refuses before anything is issued or rotated.
	cfg.TokenEndpointHandlers = append(cfg.TokenEndpointHandlers,
		&currentGrant{dir: opts.Directory, store: store, core: strategy.CoreStrategy, now: opts.Now})
	// The token API refreshes on behalf of first-party apps; see firstparty.go.
	cfg.ClientAuthenticationStrategy = firstPartyRefreshAuth(oauth.(*fosite.Fosite), store)
	return &Provider{
		OAuth2: oauth, idSigner: idSigner, store: store, core: strategy.CoreStrategy, idTokens: strategy.OpenIDConnectTokenStrategy,
		Config: cfg, Hasher: hasher, Issuer: opts.Issuer, options: opts,
	}, nil
}

// NewSession returns an empty session for one request.
func (p *Provider) NewSession() *Session { return NewSession() }

// Ready reports whether the provider can sign tokens, for readiness checks.
func (p *Provider) Ready(_ context.Context) error { return nil }

// askFirst asks a token endpoint handler whether a request is its own before asking it to populate the response.
// Fosite offers every response to every handler, and each that does not apply refuses with an error carrying a
// freshly captured stack trace: about 5% of a client_credentials grant's CPU, spent on nothing.
type askFirst struct{ fosite.TokenEndpointHandler }

func (a askFirst) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !a.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	return a.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, req, resp)
}
