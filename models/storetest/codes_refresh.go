package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/models"
)

// grantCases: a used code and a rotated refresh token stay readable as inactive, revocation by request id,
// and concurrent rotation with exactly one winner.
func grantCases() []testCase {
	return []testCase{
		{"code invalidated returns its requester with ErrInvalidatedAuthorizeCode", testCodeInvalidated},
		{"code invalidated twice reports it was already used", testCodeDoubleInvalidate},
		{"refresh revoke by request id deactivates every refresh token of the grant", testRevokeRefresh},
		{"access revoke by request id deletes every access token of the grant", testRevokeAccess},
		{"refresh rotation deactivates the token and deletes the grant's access tokens", testRotate},
		{"refresh concurrent rotation in transactions: exactly one wins", func(t *testing.T, s *models.Store) { testConcurrentRotation(t, s, true) }},
		{"refresh concurrent rotation without transactions: exactly one wins", func(t *testing.T, s *models.Store) { testConcurrentRotation(t, s, false) }},
	}
}

func testCodeInvalidated(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	want := newRequest(client, "req-1", "usr_alice", baseTime.Add(time.Hour))
	must(t, "create", s.CreateAuthorizeCodeSession(ctx, "code-1", want))
	must(t, "invalidate", s.InvalidateAuthorizeCodeSession(ctx, "code-1"))
	got, err := s.GetAuthorizeCodeSession(ctx, "code-1", new(openid.DefaultSession))
	if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Fatalf("get invalidated code: err = %v, want fosite.ErrInvalidatedAuthorizeCode", err)
	}
	checkRequest(t, got, want)
}

func testCodeDoubleInvalidate(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	must(t, "create", s.CreateAuthorizeCodeSession(ctx, "code-1", newRequest(client, "req-1", "usr_alice", baseTime.Add(time.Hour))))
	must(t, "first invalidate", s.InvalidateAuthorizeCodeSession(ctx, "code-1"))
	if err := s.InvalidateAuthorizeCodeSession(ctx, "code-1"); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Errorf("second invalidate: %v, want fosite.ErrInvalidatedAuthorizeCode (a code is exchanged once)", err)
	}
	wantNotFound(t, "invalidate unknown code", s.InvalidateAuthorizeCodeSession(ctx, "code-unknown"))
}

func testRevokeRefresh(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	exp := baseTime.Add(time.Hour)
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create r2", s.CreateRefreshTokenSession(ctx, "r2", "a2", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create r3", s.CreateRefreshTokenSession(ctx, "r3", "a3", newRequest(client, "grant-2", "usr_alice", exp)))
	must(t, "revoke", s.RevokeRefreshToken(ctx, "grant-1"))
	for _, sig := range []string{"r1", "r2"} {
		req, err := s.GetRefreshTokenSession(ctx, sig, new(openid.DefaultSession))
		if !errors.Is(err, fosite.ErrInactiveToken) {
			t.Errorf("get revoked %s: err = %v, want fosite.ErrInactiveToken", sig, err)
		}
		if req == nil || req.GetID() != "grant-1" {
			t.Errorf("get revoked %s: requester = %v, want the grant's request", sig, req)
		}
	}
	_, err := s.GetRefreshTokenSession(ctx, "r3", new(openid.DefaultSession))
	must(t, "other grant's token still active", err)
	must(t, "revoke unknown grant", s.RevokeRefreshToken(ctx, "grant-unknown"))
}

func testRevokeAccess(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	exp := baseTime.Add(time.Hour)
	must(t, "create a1", s.CreateAccessTokenSession(ctx, "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create a2", s.CreateAccessTokenSession(ctx, "a2", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create a3", s.CreateAccessTokenSession(ctx, "a3", newRequest(client, "grant-2", "usr_alice", exp)))
	must(t, "revoke", s.RevokeAccessToken(ctx, "grant-1"))
	for _, sig := range []string{"a1", "a2"} {
		_, err := s.GetAccessTokenSession(ctx, sig, new(openid.DefaultSession))
		wantNotFound(t, "get revoked "+sig, err)
	}
	_, err := s.GetAccessTokenSession(ctx, "a3", new(openid.DefaultSession))
	must(t, "other grant's token kept", err)
	must(t, "revoke unknown grant", s.RevokeAccessToken(ctx, "grant-unknown"))
}

func testRotate(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	exp := baseTime.Add(time.Hour)
	must(t, "create a1", s.CreateAccessTokenSession(ctx, "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create a2", s.CreateAccessTokenSession(ctx, "a2", newRequest(client, "grant-2", "usr_alice", exp)))
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a1", newRequest(client, "grant-1", "usr_alice", exp)))

	must(t, "rotate", s.RotateRefreshToken(ctx, "grant-1", "r1"))
	req, err := s.GetRefreshTokenSession(ctx, "r1", new(openid.DefaultSession))
	if !errors.Is(err, fosite.ErrInactiveToken) || req == nil || req.GetID() != "grant-1" {
		t.Errorf("get rotated token: (%v, %v), want its requester with fosite.ErrInactiveToken", req, err)
	}
	_, err = s.GetAccessTokenSession(ctx, "a1", new(openid.DefaultSession))
	wantNotFound(t, "the grant's access token after rotation", err)
	_, err = s.GetAccessTokenSession(ctx, "a2", new(openid.DefaultSession))
	must(t, "another grant's access token after rotation", err)

	if err := s.RotateRefreshToken(ctx, "grant-1", "r1"); !errors.Is(err, fosite.ErrSerializationFailure) {
		t.Errorf("rotating an inactive token: %v, want fosite.ErrSerializationFailure", err)
	}
	wantNotFound(t, "rotating an unknown token", s.RotateRefreshToken(ctx, "grant-1", "r-unknown"))
}

func testConcurrentRotation(t *testing.T, s *models.Store, inTx bool) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	exp := baseTime.Add(time.Hour)
	must(t, "create a1", s.CreateAccessTokenSession(ctx, "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a1", newRequest(client, "grant-1", "usr_alice", exp)))

	const workers = 8
	errs := make([]error, workers)
	runWithDeadline(t, func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if !inTx {
					errs[i] = s.RotateRefreshToken(ctx, "grant-1", "r1")
					return
				}
				txCtx, err := s.BeginTX(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				if err := s.RotateRefreshToken(txCtx, "grant-1", "r1"); err != nil {
					errs[i] = err
					if rbErr := s.Rollback(txCtx); rbErr != nil {
						errs[i] = fmt.Errorf("%w (rollback: %v)", err, rbErr)
					}
					return
				}
				// What fosite does next inside the same transaction.
				if err := s.CreateRefreshTokenSession(txCtx, fmt.Sprintf("r-next-%d", i), "a-next",
					newRequest(client, "grant-1", "usr_alice", exp)); err != nil {
					errs[i] = err
					_ = s.Rollback(txCtx)
					return
				}
				errs[i] = s.Commit(txCtx)
			}()
		}
		close(start)
		wg.Wait()
	})
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, fosite.ErrSerializationFailure):
		default:
			t.Errorf("worker %d: %v, want nil or fosite.ErrSerializationFailure", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d rotations succeeded, want exactly 1 (errors: %v)", wins, errs)
	}
}
