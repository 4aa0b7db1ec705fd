// Package upstream is Latchkey as a client of another provider, for "sign in with another provider": the
// authorization request (PKCE S256 always; a nonce for OpenID Connect), the code exchange, the ID token's
// verification (go-oidc: signature, iss, aud, exp; the nonce here) or GitHub's user API, and the mapping of what
// the upstream said to a models.UpstreamAccount. Which user that account is, is the store's decision.
package upstream

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/models"
)

// ErrRefused: the upstream refused the sign-in or answered something that does not verify (a bad or used code,
// an ID token for someone else). The person may try again; it is not our fault nor the upstream's outage.
var ErrRefused = errors.New("the other provider refused the sign-in")

// ErrUnavailable: the upstream could not be reached or failed (a timeout, a 5xx, discovery down).
var ErrUnavailable = errors.New("the other provider is unavailable")

// Client talks to upstream providers. Safe for concurrent use.
type Client struct {
	HTTP        *http.Client // every call upstream, with a timeout
	Sealer      *SecretSealer
	RedirectURL string // our callback, registered with every upstream
	Now         func() time.Time

	mu   sync.Mutex
	oidc map[string]cachedDiscovery // by issuer
}

type cachedDiscovery struct {
	p  *oidc.Provider // keeps its JWKS cached too
	at time.Time
}

// discoveryTTL is how long an upstream's discovery document (and with it its key set cache) is reused.
const discoveryTTL = time.Hour

// New returns a Client whose calls upstream each time out after timeout.
func New(systemSecret []byte, redirectURL string, timeout time.Duration) *Client {
	return &Client{
		HTTP:        &http.Client{Timeout: timeout},
		Sealer:      NewSecretSealer(systemSecret),
		RedirectURL: redirectURL,
		Now:         time.Now,
		oidc:        map[string]cachedDiscovery{},
	}
}

func (c *Client) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, c.HTTP), c.HTTP)
}

// discover returns the upstream OpenID provider at issuer, from the cache while fresh.
func (c *Client) discover(ctx context.Context, issuer string) (*oidc.Provider, error) {
	c.mu.Lock()
	d, ok := c.oidc[issuer]
	c.mu.Unlock()
	if ok && c.Now().Sub(d.at) < discoveryTTL {
		return d.p, nil
	}
	// The provider outlives this request (its key set refreshes in the background of later ones): not ctx.
	p, err := oidc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), c.HTTP), issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery of %s: %v", ErrUnavailable, issuer, err)
	}
	c.mu.Lock()
	c.oidc[issuer] = cachedDiscovery{p: p, at: c.Now()}
	c.mu.Unlock()
	return p, nil
}

// config is the OAuth 2.0 client configuration for provider p, with its secret opened.
func (c *Client) config(ctx context.Context, p *models.UpstreamProvider) (*oauth2.Config, *oidc.Provider, error) {
	secret, err := c.Sealer.Open(p.ID, p.SealedSecret)
	if err != nil {
		return nil, nil, err
	}
	conf := &oauth2.Config{ClientID: p.ClientID, ClientSecret: string(secret), RedirectURL: c.RedirectURL, Scopes: p.Scopes}
	switch p.Kind {
	case models.UpstreamKindOIDC:
		op, err := c.discover(ctx, p.Issuer)
		if err != nil {
			return nil, nil, err
		}
		conf.Endpoint = op.Endpoint()
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic, the default (OIDC Core §9)
		return conf, op, nil
	case models.UpstreamKindGitHub:
		conf.Endpoint = oauth2.Endpoint{AuthURL: orDefault(p.AuthURL, githubAuthURL), TokenURL: orDefault(p.TokenURL, githubTokenURL), AuthStyle: oauth2.AuthStyleInParams}
		return conf, nil, nil
	}
	return nil, nil, fmt.Errorf("upstream provider %q: unknown kind %q", p.ID, p.Kind)
}

// AuthCodeURL is where to send the browser: p's authorization endpoint with state, PKCE S256 over verifier and,
// for OpenID Connect, nonce.
func (c *Client) AuthCodeURL(ctx context.Context, p *models.UpstreamProvider, state, nonce, verifier string) (string, error) {
	conf, _, err := c.config(c.ctx(ctx), p)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if p.Kind == models.UpstreamKindOIDC {
		opts = append(opts, oidc.Nonce(nonce))
	}
	return conf.AuthCodeURL(state, opts...), nil
}

// Account redeems code at p and returns who signed in there. The error is ErrRefused or ErrUnavailable
// (wrapped) when it is the upstream's answer.
func (c *Client) Account(ctx context.Context, p *models.UpstreamProvider, code, verifier, nonce string) (models.UpstreamAccount, error) {
	ctx = c.ctx(ctx)
	conf, op, err := c.config(ctx, p)
	if err != nil {
		return models.UpstreamAccount{}, err
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return models.UpstreamAccount{}, exchangeError(err)
	}
	var a models.UpstreamAccount
	if p.Kind == models.UpstreamKindGitHub {
		a, err = c.githubAccount(ctx, p, tok)
	} else {
		a, err = c.oidcAccount(ctx, p, op, tok, nonce)
	}
	a.ProviderID, a.Pool = p.ID, p.Pool
	return a, err
}

// exchangeError sorts a failed code exchange: the upstream's OAuth error (4xx, or GitHub's 200 with an error)
// is ErrRefused; no answer or a 5xx is ErrUnavailable.
func exchangeError(err error) error {
	var re *oauth2.RetrieveError
	var ne net.Error
	switch {
	case errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 500:
		return fmt.Errorf("%w: token endpoint: %v", ErrUnavailable, err)
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: token endpoint: %v", ErrUnavailable, err)
	}
	return fmt.Errorf("%w: code exchange: %v", ErrRefused, err)
}

func (c *Client) oidcAccount(ctx context.Context, p *models.UpstreamProvider, op *oidc.Provider, tok *oauth2.Token, nonce string) (models.UpstreamAccount, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return models.UpstreamAccount{}, fmt.Errorf("%w: no ID token in the token response", ErrRefused)
	}
	idt, err := op.Verifier(&oidc.Config{ClientID: p.ClientID, Now: c.Now}).Verify(ctx, raw)
	if err != nil {
		return models.UpstreamAccount{}, fmt.Errorf("%w: ID token: %v", ErrRefused, err)
	}
	if nonce == "" || idt.Nonce != nonce {
		return models.UpstreamAccount{}, fmt.Errorf("%w: ID token nonce does not match this sign-in", ErrRefused)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return models.UpstreamAccount{}, fmt.Errorf("%w: ID token claims: %v", ErrRefused, err)
	}
	return mapClaims(p, idt.Subject, claims), nil
}

// mapClaims is an OpenID Connect account from its verified ID token's claims. email_verified speaks of the
// email claim only: an email taken from another claim is never treated as verified.
func mapClaims(p *models.UpstreamProvider, subject string, claims map[string]any) models.UpstreamAccount {
	a := models.UpstreamAccount{Subject: subject}
	a.Email, _ = claims[p.ClaimEmail].(string)
	verified, _ := claims["email_verified"].(bool)
	a.EmailVerified = verified && p.ClaimEmail == "email"
	if p.ClaimName != "" {
		a.Name, _ = claims[p.ClaimName].(string)
	}
	if p.ClaimRoles != "" {
		switch v := claims[p.ClaimRoles].(type) {
		case string:
			a.Roles = []string{v}
		case []any:
			for _, r := range v {
				if s, ok := r.(string); ok && s != "" {
					a.Roles = append(a.Roles, s)
				}
			}
		}
	}
	return a
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// SecretSealer keeps an upstream client secret at rest: AES-256-GCM under a key derived from the system secret
// for this use alone, bound to the provider id, so a sealed secret copied onto another provider does not open.
type SecretSealer struct {
	sealer *keys.Sealer
}

// NewSecretSealer derives the sealing key from the system secret.
func NewSecretSealer(systemSecret []byte) *SecretSealer {
	s, err := keys.NewSealer(keys.Derive(systemSecret, "upstream client secret v1"))
	if err != nil {
		panic(fmt.Sprintf("upstream: secret sealer: %v", err)) // Derive returns 32 bytes, which NewSealer takes
	}
	return &SecretSealer{sealer: s}
}

func secretAAD(providerID string) []byte {
	return []byte("latchkey/upstream-client-secret/v1\x00" + providerID)
}

// Seal returns secret sealed for provider providerID, base64url-encoded (models.UpstreamProvider.SealedSecret).
func (s *SecretSealer) Seal(providerID, secret string) (string, error) {
	b, err := s.sealer.Seal([]byte(secret), secretAAD(providerID))
	if err != nil {
		return "", fmt.Errorf("seal upstream client secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Open returns the secret Seal sealed for providerID.
func (s *SecretSealer) Open(providerID, sealed string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return nil, errors.New("open upstream client secret: not base64url")
	}
	secret, err := s.sealer.Open(b, secretAAD(providerID))
	if err != nil {
		return nil, fmt.Errorf("open upstream client secret of %q (sealed under another system secret?): %w", providerID, err)
	}
	return secret, nil
}
