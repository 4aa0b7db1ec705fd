package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// oneRedemption makes a lost race on a single-use credential an ordinary reuse. Fosite checks that a code or
// refresh token is unused, then spends it in a later compare-and-swap; of two concurrent redemptions the one that
// loses the swap would answer server_error (code) or invalid_request (refresh) and leave the winner's tokens
// alive. RFC 6749 §4.1.2 and RFC 9700 §4.14.2 say a second use revokes what the first one issued, whether or not
// the two overlapped: the loser revokes the grant and answers invalid_grant.
type oneRedemption struct {
	fosite.TokenEndpointHandler
	revoker oauth2.TokenRevocationStorage
}

// HandleTokenEndpointRequest retries a request that met a concurrent revocation of the same grant: fosite's
// reuse handling revokes in a transaction and reports a deadlock with another revoker as a serialization
// failure ("retry the request"). Its work is idempotent, so it is retried here instead of asking the client.
func (o oneRedemption) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	var err error
	for range 5 {
		if err = o.TokenEndpointHandler.HandleTokenEndpointRequest(ctx, req); !errors.Is(err, fosite.ErrSerializationFailure) {
			return err
		}
	}
	return err
}

func (o oneRedemption) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	err := o.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, req, resp)
	if err == nil {
		return nil
	}
	var hint string
	switch {
	case errors.Is(err, fosite.ErrInvalidatedAuthorizeCode):
		hint = "The authorization code has already been used."
	case req.GetGrantTypes().ExactOne("refresh_token") && (errors.Is(err, fosite.ErrSerializationFailure) ||
		errors.Is(err, fosite.ErrNotFound) || errors.Is(err, fosite.ErrInactiveToken)):
		// The token was active when fosite read it, so "gone" or "inactive" now means a concurrent use got
		// there first (fosite's reuse handling deletes the presented token).
		hint = "The refresh token was already used."
	default:
		return err
	}
	// The winner has committed by the time the loser's swap fails (its row lock or SQLite's single writer
	// orders them), so revoking by request id reaches every token the winner issued. The client has been
	// answered already if it went away: revoking must not stop with it.
	if rerr := revokeGrant(context.WithoutCancel(ctx), o.revoker, req.GetID()); rerr != nil {
		return fosite.ErrServerError.WithWrap(rerr).WithDebug(rerr.Error())
	}
	return fosite.ErrInvalidGrant.WithWrap(err).WithHint(hint)
}

// revokeGrant revokes every access and refresh token of a grant. Revoking is idempotent, so a deadlock with a
// concurrent revocation of the same grant (fosite's reuse handling locks the same rows in another order) is
// simply tried again.
func revokeGrant(ctx context.Context, store oauth2.TokenRevocationStorage, requestID string) error {
	var err error
	for range 5 {
		if err = revokeGrantOnce(ctx, store, requestID); !errors.Is(err, fosite.ErrSerializationFailure) {
			return err
		}
	}
	return err
}

func revokeGrantOnce(ctx context.Context, store oauth2.TokenRevocationStorage, requestID string) error {
	if err := store.RevokeRefreshToken(ctx, requestID); err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return fmt.Errorf("revoke refresh tokens of grant: %w", err)
	}
	if err := store.RevokeAccessToken(ctx, requestID); err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return fmt.Errorf("revoke access tokens of grant: %w", err)
	}
	return nil
}

// DeletePKCERequestSession keeps the PKCE request until it expires with its code. fosite deletes it while
// checking the verifier, before the code is spent: of two concurrent redemptions of one code, the second then
// failed on the missing PKCE request (invalid_grant) without ever reaching the code's compare-and-swap, so
// nothing revoked what the first one issued. Kept, it lets the second reach the swap and lose there, which
// revokes the grant. A PKCE request is of no use without its code, which can be spent once; expiry cleanup
// removes it.
func (s grantStore) DeletePKCERequestSession(context.Context, string) error { return nil }
