package provider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"
)

// TokenSet is what a direct sign-in (the token API) hands back: the same tokens the OAuth endpoints issue.
type TokenSet struct {
	AccessToken  string
	RefreshToken string // empty unless offline_access was granted
	IDToken      string // empty unless openid was granted
	ExpiresIn    time.Duration
	Scopes       []string
}

// directGrantType marks grants made by the token API in the stored request form. It is not a grant the token
// endpoint accepts; refreshing such a grant goes through the standard refresh_token grant.
const directGrantType = "urn:latchkey:grant-type:direct-sign-in"

// IssueTokens issues an access token (and a refresh token with offline_access, an ID token with openid) for a
// user who signed in directly through a first-party client. The tokens are stored exactly like those of the
// authorization code flow, so introspection, revocation, refresh rotation and reuse detection treat them alike.
func (p *Provider) IssueTokens(ctx context.Context, client fosite.Client, session *Session, scopes []string) (_ TokenSet, err error) {
	now := time.Now().UTC()
	ar := fosite.NewAccessRequest(session)
	ar.Client = client
	ar.RequestedAt = now
	ar.GrantTypes = fosite.Arguments{directGrantType}
	ar.Form = url.Values{"grant_type": {directGrantType}}
	for _, s := range scopes {
		if !p.Config.GetScopeStrategy(ctx)(client.GetScopes(), s) {
			return TokenSet{}, fosite.ErrInvalidScope.WithHintf("The client may not request scope '%s'.", s)
		}
		ar.AppendRequestedScope(s)
		ar.GrantScope(s)
	}
	atLifespan := fosite.GetEffectiveLifespan(client, fosite.GrantTypeAuthorizationCode, fosite.AccessToken, p.Config.GetAccessTokenLifespan(ctx))
	session.SetExpiresAt(fosite.AccessToken, now.Add(atLifespan))
	withRefresh := ar.GetGrantedScopes().HasOneOf(p.Config.GetRefreshTokenScopes(ctx)...) && client.GetGrantTypes().Has("refresh_token")
	if withRefresh {
		rtLifespan := fosite.GetEffectiveLifespan(client, fosite.GrantTypeAuthorizationCode, fosite.RefreshToken, p.Config.GetRefreshTokenLifespan(ctx))
		if rtLifespan > 0 {
			session.SetExpiresAt(fosite.RefreshToken, now.Add(rtLifespan))
		}
	}

	out := TokenSet{ExpiresIn: atLifespan, Scopes: ar.GetGrantedScopes()}
	var accessSig, refreshSig string
	if out.AccessToken, accessSig, err = p.core.GenerateAccessToken(ctx, ar); err != nil {
		return TokenSet{}, fmt.Errorf("generate access token: %w", err)
	}
	if withRefresh {
		if out.RefreshToken, refreshSig, err = p.core.GenerateRefreshToken(ctx, ar); err != nil {
			return TokenSet{}, fmt.Errorf("generate refresh token: %w", err)
		}
	}
	if ar.GetGrantedScopes().Has(ScopeOpenID) {
		if out.IDToken, err = p.idTokens.GenerateIDToken(ctx, p.Config.GetIDTokenLifespan(ctx), ar); err != nil {
			return TokenSet{}, fmt.Errorf("generate ID token: %w", err)
		}
	}

	tx, err := p.store.BeginTX(ctx)
	if err != nil {
		return TokenSet{}, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			if rbErr := p.store.Rollback(tx); rbErr != nil {
				err = errors.Join(err, rbErr)
			}
		}
	}()
	stored := ar.Sanitize(nil)
	if err = p.store.CreateAccessTokenSession(tx, accessSig, stored); err != nil {
		return TokenSet{}, fmt.Errorf("store access token: %w", err)
	}
	if withRefresh {
		if err = p.store.CreateRefreshTokenSession(tx, refreshSig, accessSig, stored); err != nil {
			return TokenSet{}, fmt.Errorf("store refresh token: %w", err)
		}
	}
	if err = p.store.Commit(tx); err != nil {
		return TokenSet{}, fmt.Errorf("commit: %w", err)
	}
	return out, nil
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
