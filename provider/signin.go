package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
)

// TokenSet is what the token API hands back for a sign-in or a refresh: the same tokens the OAuth endpoints issue.
type TokenSet struct {
	AccessToken  string
	RefreshToken string // empty unless offline_access was granted and the client may refresh
	IDToken      string // empty unless openid was granted
	ExpiresIn    time.Duration
	Scopes       []string
}

// GrantTypeFirstPartySignIn is the token API's first-party password sign-in as a grant of its own. Only the token API
// endpoint (firstparty.go) composes its handler; the public token endpoint does not know it and refuses it.
// Refreshing such a grant goes through the standard refresh_token grant.
const GrantTypeFirstPartySignIn = "urn:latchkey:grant-type:first-party-sign-in"

// SignIn issues an access token (and a refresh token with offline_access when the client may refresh, an ID
// token with openid) for a user who signed in with their password through the first-party client clientID. The
// caller has checked the password and built session (SessionFor). It runs fosite's token endpoint with the
// sign-in grant, so the tokens are stored exactly like those of the authorization code flow, and introspection,
// revocation, refresh rotation and reuse detection treat them alike.
//
// A refusal (a client that is not first-party, a scope it may not have) is a fosite error; a storage or signing
// failure is a wrapped error.
func (p *Provider) SignIn(ctx context.Context, clientID string, session *Session, scopes []string) (TokenSet, error) {
	form := url.Values{"grant_type": {GrantTypeFirstPartySignIn}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	tokens, _, err := p.exchange(ctx, form, clientID, "", session)
	return tokens, err
}

// Refresh exchanges a refresh token through fosite's refresh_token grant at the token API endpoint: rotation,
// reuse detection and the re-read of the user (fresh.go) are exactly the token endpoint's. The client is
// identified by clientID, or authenticated with clientSecret when one is given (firstPartyAuth). It returns the
// grant's session as now issued. Every error is fosite's, as the token endpoint would answer it.
func (p *Provider) Refresh(ctx context.Context, clientID, clientSecret, refreshToken string) (TokenSet, *Session, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	return p.exchange(ctx, form, clientID, clientSecret, NewSession())
}

// exchange runs one token request through the token API endpoint for the client clientID: named by client_id,
// or with clientSecret presented the way the client is registered to present it (HTTP Basic, RFC 6749 §2.3.1,
// both parts form-encoded; or client_secret_post in the form), so the secret a caller holds is checked whatever
// the client's method.
func (p *Provider) exchange(ctx context.Context, form url.Values, clientID, clientSecret string, session *Session) (TokenSet, *Session, error) {
	ctx = withClientProved(ctx, clientSecret != "")
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer+PathToken, http.NoBody)
	if err != nil {
		return TokenSet{}, nil, fmt.Errorf("build token request: %w", err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	switch {
	case clientSecret == "":
		form.Set("client_id", clientID)
	case p.postsSecret(ctx, clientID):
		form.Set("client_id", clientID)
		form.Set("client_secret", clientSecret)
	default:
		r.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret))
	}
	r.PostForm, r.Form = form, form
	ar, err := p.tokenAPI.NewAccessRequest(ctx, r, session)
	if err != nil {
		return TokenSet{}, nil, err
	}
	resp, err := p.tokenAPI.NewAccessResponse(ctx, ar)
	if err != nil {
		return TokenSet{}, nil, err
	}
	out := TokenSet{AccessToken: resp.GetAccessToken()}
	out.RefreshToken, _ = resp.GetExtra("refresh_token").(string)
	out.IDToken, _ = resp.GetExtra("id_token").(string)
	if v, ok := resp.GetExtra("expires_in").(int64); ok {
		out.ExpiresIn = time.Duration(v) * time.Second
	}
	if v, ok := resp.GetExtra("scope").(string); ok {
		out.Scopes = strings.Fields(v)
	}
	sess, ok := ar.GetSession().(*Session)
	if !ok {
		return TokenSet{}, nil, fmt.Errorf("token API: unexpected session type %T", ar.GetSession())
	}
	return out, sess, nil
}

// postsSecret reports whether clientID is registered for client_secret_post. A client that cannot be read is
// sent by HTTP Basic, where fosite's own lookup answers for it (unknown client, or the store's failure).
func (p *Provider) postsSecret(ctx context.Context, clientID string) bool {
	c, err := p.store.GetClient(ctx, clientID)
	if err != nil {
		return false
	}
	oidc, ok := c.(fosite.OpenIDConnectClient)
	return ok && oidc.GetTokenEndpointAuthMethod() == "client_secret_post"
}

// RefreshTokenClient names the client a refresh token was issued to, also when the token was already used, so a
// caller that sends only the token still gets reuse detection from the refresh grant.
func (p *Provider) RefreshTokenClient(ctx context.Context, token string) (string, error) {
	ar, err := p.store.GetRefreshTokenSession(ctx, p.core.RefreshTokenSignature(ctx, token), NewSession())
	if ar != nil && ar.GetClient() != nil && (err == nil || errors.Is(err, fosite.ErrInactiveToken)) {
		return ar.GetClient().GetID(), nil
	}
	if err == nil {
		err = fosite.ErrNotFound
	}
	return "", err
}

// signInGrant is the token endpoint handler of the first-party sign-in grant. The session arrives filled by the
// caller (SignIn): the user was just authenticated, so there is no stored grant to load or re-read. It grants the
// requested scopes the client may have and issues like the authorization code grant: the access token; a
// refresh token when offline_access was granted and the client may use refresh_token; an ID token with openid.
// Lifespans are the client's for authorization_code, times are the injected clock's.
type signInGrant struct {
	config interface {
		fosite.ScopeStrategyProvider
		fosite.AccessTokenLifespanProvider
		fosite.RefreshTokenLifespanProvider
		fosite.RefreshTokenScopesProvider
		fosite.IDTokenLifespanProvider
	}
	store    Storage
	core     oauth2.CoreStrategy
	idTokens openid.OpenIDConnectTokenStrategy
	now      func() time.Time
}

var _ fosite.TokenEndpointHandler = (*signInGrant)(nil)

func (h *signInGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (h *signInGrant) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(GrantTypeFirstPartySignIn)
}

func (h *signInGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	if err := h.grantScopes(ctx, r); err != nil {
		return err
	}
	return h.startLifespans(ctx, r)
}

// grantScopes grants the requested scopes, each of which the client must be registered for.
func (h *signInGrant) grantScopes(ctx context.Context, r fosite.AccessRequester) error {
	client := r.GetClient()
	for _, s := range r.GetRequestedScopes() {
		if !h.config.GetScopeStrategy(ctx)(client.GetScopes(), s) {
			return fosite.ErrInvalidScope.WithHintf("The client may not request scope '%s'.", s)
		}
		r.GrantScope(s)
	}
	return nil
}

// startLifespans dates the request now and sets when its access token (and refresh token, if one is issued)
// expire.
func (h *signInGrant) startLifespans(ctx context.Context, r fosite.AccessRequester) error {
	ar, ok := r.(*fosite.AccessRequest)
	if !ok {
		return fosite.ErrServerError.WithDebugf("unexpected access request type %T", r)
	}
	client := r.GetClient()
	atLifespan, err := h.accessTokenLifespan(ctx, r)
	if err != nil {
		return err
	}
	now := h.now().UTC()
	ar.RequestedAt = now
	sess := r.GetSession()
	sess.SetExpiresAt(fosite.AccessToken, now.Add(atLifespan))
	if h.withRefresh(ctx, r) {
		rtLifespan := fosite.GetEffectiveLifespan(client, fosite.GrantTypeAuthorizationCode, fosite.RefreshToken, h.config.GetRefreshTokenLifespan(ctx))
		if rtLifespan > 0 {
			sess.SetExpiresAt(fosite.RefreshToken, now.Add(rtLifespan))
		}
	}
	return nil
}

// accessTokenLifespan is the client's for authorization_code, or the grant's own when it has one (mint.go).
func (h *signInGrant) accessTokenLifespan(ctx context.Context, r fosite.Requester) (time.Duration, error) {
	return grantLifespan(r, fosite.GetEffectiveLifespan(r.GetClient(), fosite.GrantTypeAuthorizationCode, fosite.AccessToken, h.config.GetAccessTokenLifespan(ctx)))
}

func (h *signInGrant) withRefresh(ctx context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantedScopes().HasOneOf(h.config.GetRefreshTokenScopes(ctx)...) && r.GetClient().GetGrantTypes().Has("refresh_token")
}

func (h *signInGrant) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return h.issue(ctx, r, resp)
}

// issue generates the grant's tokens, stores them in one transaction and fills the response.
func (h *signInGrant) issue(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) (err error) {
	atLifespan, err := h.accessTokenLifespan(ctx, r)
	if err != nil {
		return err
	}
	withRefresh := h.withRefresh(ctx, r)
	accessToken, accessSig, err := h.core.GenerateAccessToken(ctx, r)
	if err != nil {
		return fmt.Errorf("generate access token: %w", err)
	}
	var refreshToken, refreshSig, idToken string
	if withRefresh {
		if refreshToken, refreshSig, err = h.core.GenerateRefreshToken(ctx, r); err != nil {
			return fmt.Errorf("generate refresh token: %w", err)
		}
	}
	// Before storing: the ID token's claims are part of the stored session, as they always were.
	if r.GetGrantedScopes().Has(ScopeOpenID) {
		if idToken, err = h.idTokens.GenerateIDToken(ctx, h.config.GetIDTokenLifespan(ctx), r); err != nil {
			return fmt.Errorf("generate ID token: %w", err)
		}
	}

	tx, err := h.store.BeginTX(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			if rbErr := h.store.Rollback(tx); rbErr != nil {
				err = errors.Join(err, rbErr)
			}
		}
	}()
	stored := r.Sanitize(nil)
	if err = h.store.CreateAccessTokenSession(tx, accessSig, stored); err != nil {
		return fmt.Errorf("store access token: %w", err)
	}
	if withRefresh {
		if err = h.store.CreateRefreshTokenSession(tx, refreshSig, accessSig, stored); err != nil {
			return fmt.Errorf("store refresh token: %w", err)
		}
	}
	if err = h.store.Commit(tx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}

	resp.SetAccessToken(accessToken)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(atLifespan)
	resp.SetScopes(r.GetGrantedScopes())
	if withRefresh {
		resp.SetExtra("refresh_token", refreshToken)
	}
	if idToken != "" {
		resp.SetExtra("id_token", idToken)
	}
	return nil
}
