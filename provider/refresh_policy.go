package provider

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/storage"
)

// A client's refresh policy (README, "Refresh policy") has two settings; models.Client holds both.
//   - Rotation on (the default): fosite's refresh grant. Each refresh spends the presented refresh token and answers
//     a new one; presenting a spent one revokes the grant (RFC 9700 §4.14.2).
//   - Reuse interval, with rotation on: refreshKeeper.rotateWithin below. The first use spends the token and
//     records its successor, sealed with a key derived from the spent token; a use within the interval after that
//     (another tab) gets fresh access and ID tokens and that same successor, so the grant keeps one live chain
//     however often the spent token is replayed (models.Store.RotateRefreshTokenWithin). Outside the interval
//     reuse revokes the grant as with rotation alone.
//   - Rotation off: refreshKeeper below. A refresh answers a new access token (and ID token) and the presented
//     refresh token again, which keeps its absolute expiry.

// RefreshPolicyStorage is what a client that does not rotate its refresh tokens needs from the store.
type RefreshPolicyStorage interface {
	// KeepRefreshToken confirms, in the transaction of ctx, that a refresh token is still active without spending
	// it, holding it against a concurrent revocation until the transaction ends; fosite.ErrInactiveToken if it was
	// revoked, fosite.ErrNotFound if unknown.
	KeepRefreshToken(ctx context.Context, refreshSignature string) error
	// RotateRefreshTokenWithin spends a refresh token of a client with a reuse interval, recording sealedSuccessor,
	// in the transaction of ctx; within interval of that it answers later uses the sealed successor instead.
	RotateRefreshTokenWithin(ctx context.Context, refreshSignature string, interval time.Duration, sealedSuccessor string) (string, error)
}

// refreshReuse is a client that has a reuse interval for its spent refresh tokens (models.Client).
type refreshReuse interface{ RefreshReuseWindow() time.Duration }

func reuseWindow(c fosite.Client) time.Duration {
	if r, ok := c.(refreshReuse); ok {
		return r.RefreshReuseWindow()
	}
	return 0
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
	if !h.CanHandleTokenEndpointRequest(ctx, req) {
		return h.RefreshTokenGrantHandler.PopulateTokenEndpointResponse(ctx, req, resp)
	}
	if rotatesRefreshTokens(req.GetClient()) {
		if window := reuseWindow(req.GetClient()); window > 0 {
			return h.rotateWithin(ctx, req, resp, window)
		}
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
	respond(ctx, req, resp, h.cfg, accessToken, presented)
	return nil
}

// rotateWithin is the refresh response of a client with a reuse interval: the presented token is spent with its
// successor recorded, or, presented again within the interval, answered that recorded successor with fresh
// access tokens, in one transaction (models.Store.RotateRefreshTokenWithin).
func (h refreshKeeper) rotateWithin(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder, window time.Duration) (err error) {
	presented := req.GetRequestForm().Get("refresh_token")
	accessToken, accessSignature, err := h.core.GenerateAccessToken(ctx, req)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	refreshToken, refreshSignature, err := h.core.GenerateRefreshToken(ctx, req)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	sealed, err := sealSuccessor(presented, refreshToken)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	storeReq := req.Sanitize(nil)
	storeReq.SetID(req.GetID())
	ctx, err = storage.MaybeBeginTx(ctx, h.store)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	defer func() {
		if err == nil {
			return
		}
		if rbErr := storage.MaybeRollbackTx(ctx, h.store); rbErr != nil {
			err = errors.Join(err, rbErr)
		}
		if !errors.Is(err, fosite.ErrSerializationFailure) && !errors.Is(err, fosite.ErrNotFound) {
			err = fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
		} // else reuse outside the interval, or revoked meanwhile: oneRedemption revokes the grant
	}()
	recorded, err := h.store.RotateRefreshTokenWithin(ctx, h.core.RefreshTokenSignature(ctx, presented), window, sealed)
	if err != nil {
		return err
	}
	if recorded != "" {
		// Another use spent it first: answer its successor; that refresh token's row is already stored.
		if refreshToken, err = openSuccessor(presented, recorded); err != nil {
			return err
		}
		err = h.store.CreateAccessTokenSession(ctx, accessSignature, storeReq)
	} else {
		if err = h.store.CreateAccessTokenSession(ctx, accessSignature, storeReq); err == nil {
			err = h.store.CreateRefreshTokenSession(ctx, refreshSignature, accessSignature, storeReq)
		}
	}
	if err == nil {
		err = storage.MaybeCommitTx(ctx, h.store)
	}
	if err != nil {
		return err
	}
	respond(ctx, req, resp, h.cfg, accessToken, refreshToken)
	return nil
}

// respond fills a refresh response made here (rotation off, or a reuse interval) as fosite's refresh grant fills
// its own: the access token lives until the expiry fosite set in the session, else the client's lifespan for the
// refresh grant.
func respond(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder, cfg *fosite.Config, accessToken, refreshToken string) {
	expiresIn := fosite.GetEffectiveLifespan(req.GetClient(), fosite.GrantTypeRefreshToken, fosite.AccessToken, cfg.GetAccessTokenLifespan(ctx))
	if exp := req.GetSession().GetExpiresAt(fosite.AccessToken); !exp.IsZero() {
		expiresIn = time.Until(exp)
	}
	resp.SetAccessToken(accessToken)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(expiresIn)
	resp.SetScopes(req.GetGrantedScopes())
	resp.SetExtra("refresh_token", refreshToken)
}

// successorKey is the key a spent refresh token's successor is sealed with: derived from the spent token itself,
// which the store never keeps (it holds a hash of its signature), so only its holder can open the successor.
func successorKey(spent string) []byte {
	k := sha256.Sum256([]byte("latchkey refresh successor v1\x00" + spent))
	return k[:]
}

// sealSuccessor seals successor (AES-256-GCM) under a key only the holder of spent can derive.
func sealSuccessor(spent, successor string) (string, error) {
	block, err := aes.NewCipher(successorKey(spent))
	if err != nil {
		return "", fmt.Errorf("seal successor: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return "", fmt.Errorf("seal successor: %w", err)
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal successor: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(successor), nil)), nil
}

// openSuccessor opens what sealSuccessor sealed for spent.
func openSuccessor(spent, sealed string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return "", fmt.Errorf("open successor: %w", err)
	}
	block, err := aes.NewCipher(successorKey(spent))
	if err != nil {
		return "", fmt.Errorf("open successor: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return "", fmt.Errorf("open successor: %w", err)
	}
	if len(raw) < aead.NonceSize() {
		return "", errors.New("open successor: too short")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], nil)
	if err != nil {
		return "", fmt.Errorf("open successor: %w", err)
	}
	return string(plain), nil
}
