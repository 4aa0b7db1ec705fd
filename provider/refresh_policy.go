package provider

import (
	"context"
	"errors"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/storage"
)

// A client's refresh policy (README, "Refresh policy") has two settings; models.Client holds both.
//   - Rotation on (the default): fosite's refresh grant. Each refresh spends the presented refresh token and answers
//     a new one; presenting a spent one revokes the grant (RFC 9700 §4.14.2).
//   - Reuse interval, with rotation on: the store (models.Store.GetRefreshTokenSession, RotateRefreshToken) honours
//     a token presented again within the interval after its rotation, atomically, without revoking the grant, and
//     answers it a new sibling refresh token of the same grant. Nothing here: fosite's flow runs unchanged on it.
//   - Rotation off: refreshKeeper below. A refresh answers a new access token (and ID token) and the presented
//     refresh token again, which keeps its absolute expiry.

// RefreshPolicyStorage is what a client that does not rotate its refresh tokens needs from the store.
type RefreshPolicyStorage interface {
	// KeepRefreshToken confirms, in the transaction of ctx, that a refresh token is still active without spending
	// it, holding it against a concurrent revocation until the transaction ends; fosite.ErrInactiveToken if it was
	// revoked, fosite.ErrNotFound if unknown.
	KeepRefreshToken(ctx context.Context, refreshSignature string) error
}

// refreshRotation is a client that says whether it rotates refresh tokens (models.Client). A client that does
// not say rotates them.
type refreshRotation interface{ RotatesRefreshTokens() bool }

func rotatesRefreshTokens(c fosite.Client) bool {
	r, ok := c.(refreshRotation)
	return !ok || r.RotatesRefreshTokens()
}

// withRefreshPolicy gives fosite's refresh token grant handler the client's refresh policy; any other handler is
// returned as it is.
func withRefreshPolicy(h fosite.TokenEndpointHandler, store Storage, core oauth2.CoreStrategy, cfg *fosite.Config) fosite.TokenEndpointHandler {
	if rh, ok := h.(*oauth2.RefreshTokenGrantHandler); ok {
		return refreshKeeper{RefreshTokenGrantHandler: rh, store: store, core: core, cfg: cfg}
	}
	return h
}

// refreshKeeper is fosite's refresh token grant, except that for a client with rotation off the response is made
// here: a new access token, stored in one transaction with a check that the refresh token is still active, and the
// presented refresh token answered again. No refresh token row is written, so its expiry does not slide, and the
// access tokens issued before are left to expire (another tab may hold them). Every revocation of the grant (logout,
// session end, password change, disabling the user, RFC 7009 revocation) still ends the refresh token.
type refreshKeeper struct {
	*oauth2.RefreshTokenGrantHandler
	store Storage
	core  oauth2.CoreStrategy
	cfg   *fosite.Config
}

func (h refreshKeeper) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, req) || rotatesRefreshTokens(req.GetClient()) {
		return h.RefreshTokenGrantHandler.PopulateTokenEndpointResponse(ctx, req, resp)
	}
	presented := req.GetRequestForm().Get("refresh_token")
	accessToken, accessSignature, err := h.core.GenerateAccessToken(ctx, req)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	storeReq := req.Sanitize(nil)
	storeReq.SetID(req.GetID())
	ctx, err = storage.MaybeBeginTx(ctx, h.store)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	err = h.store.KeepRefreshToken(ctx, h.core.RefreshTokenSignature(ctx, presented))
	if err == nil {
		err = h.store.CreateAccessTokenSession(ctx, accessSignature, storeReq)
	}
	if err == nil {
		err = storage.MaybeCommitTx(ctx, h.store)
	}
	if err != nil {
		if rbErr := storage.MaybeRollbackTx(ctx, h.store); rbErr != nil {
			err = errors.Join(err, rbErr)
		}
		if errors.Is(err, fosite.ErrInactiveToken) || errors.Is(err, fosite.ErrNotFound) || errors.Is(err, fosite.ErrSerializationFailure) {
			// Revoked since fosite read it: oneRedemption revokes the grant (again) and answers invalid_grant.
			return err
		}
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	now := time.Now().UTC()
	lifespan := fosite.GetEffectiveLifespan(req.GetClient(), fosite.GrantTypeRefreshToken, fosite.AccessToken, h.cfg.GetAccessTokenLifespan(ctx))
	expiresIn := lifespan
	if exp := req.GetSession().GetExpiresAt(fosite.AccessToken); !exp.IsZero() {
		expiresIn = exp.Sub(now)
	}
	resp.SetAccessToken(accessToken)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(expiresIn)
	resp.SetScopes(req.GetGrantedScopes())
	resp.SetExtra("refresh_token", presented)
	return nil
}
