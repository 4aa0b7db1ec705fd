package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/models"
)

// transactionCases: transactions ride in the context: commit, rollback, no nesting, savepoints inside a
// caller's transaction.
func transactionCases() []testCase {
	return []testCase{
		{"transaction commit makes writes visible", testTxCommit},
		{"transaction rollback leaves nothing", testTxRollback},
		{"transaction nested begin is refused", testTxNested},
		{"transaction failed step inside a caller's transaction changes nothing", testTxSavepoint},
		{"the same token statements inside and outside transactions", testTokenStatementsAcrossTx},
	}
}

func testTxCommit(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	txCtx, err := s.BeginTX(ctx)
	must(t, "begin", err)
	client := &models.Client{ID: "app", GrantTypes: []string{"authorization_code"}}
	must(t, "create client in tx", s.CreateClient(txCtx, client))
	must(t, "create token in tx", s.CreateAccessTokenSession(txCtx, "a1", newRequest(client, "g1", "usr_alice", baseTime.Add(time.Hour))))
	_, err = s.GetAccessTokenSession(txCtx, "a1", new(openid.DefaultSession))
	must(t, "read own write in tx", err)
	must(t, "commit", s.Commit(txCtx))
	must(t, "rollback after commit is harmless", s.Rollback(txCtx))
	_, err = s.GetAccessTokenSession(ctx, "a1", new(openid.DefaultSession))
	must(t, "read after commit", err)
}

func testTxRollback(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a0", newRequest(client, "g1", "usr_alice", baseTime.Add(time.Hour))))
	txCtx, err := s.BeginTX(ctx)
	must(t, "begin", err)
	must(t, "create in tx", s.CreateAccessTokenSession(txCtx, "a1", newRequest(client, "g1", "usr_alice", baseTime.Add(time.Hour))))
	must(t, "rotate in tx", s.RotateRefreshToken(txCtx, "g1", "r1"))
	_, err = s.CreateUserWith(txCtx, models.NewUser{Email: "tx@example.com", Password: "pw"})
	must(t, "create user in tx", err)
	must(t, "rollback", s.Rollback(txCtx))
	_, err = s.GetAccessTokenSession(ctx, "a1", new(openid.DefaultSession))
	wantNotFound(t, "token after rollback", err)
	_, err = s.GetRefreshTokenSession(ctx, "r1", new(openid.DefaultSession))
	must(t, "refresh token active again after rollback", err)
	_, err = s.UserByEmail(ctx, "", "tx@example.com")
	wantNotFound(t, "user after rollback", err)
}

// testTokenStatementsAcrossTx runs the token insert and lookup outside a transaction, then inside ones that roll
// back and commit, then outside again: the statements prepared on the pool must serve the transactions (and be
// undone with them) without waiting for a connection the transaction holds, and duplicates stay conflicts.
func testTokenStatementsAcrossTx(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	req := func(id string) fosite.Requester { return newRequest(client, id, "usr_alice", baseTime.Add(time.Hour)) }
	get := func(ctx context.Context, sig string) error {
		_, err := s.GetAccessTokenSession(ctx, sig, new(openid.DefaultSession))
		return err
	}
	must(t, "create a0", s.CreateAccessTokenSession(ctx, "a0", req("g0")))
	must(t, "get a0", get(ctx, "a0"))

	txCtx, err := s.BeginTX(ctx)
	must(t, "begin", err)
	must(t, "create a1 in tx", s.CreateAccessTokenSession(txCtx, "a1", req("g1")))
	must(t, "get a1 in tx", get(txCtx, "a1"))
	must(t, "get a0 in tx", get(txCtx, "a0"))
	must(t, "rollback", s.Rollback(txCtx))

	txCtx, err = s.BeginTX(ctx)
	must(t, "begin", err)
	must(t, "create a2 in tx", s.CreateAccessTokenSession(txCtx, "a2", req("g2")))
	must(t, "commit", s.Commit(txCtx))

	wantNotFound(t, "a1 after rollback", get(ctx, "a1"))
	must(t, "get a2 after commit", get(ctx, "a2"))
	if err := s.CreateAccessTokenSession(ctx, "a2", req("g2")); !errors.Is(err, models.ErrConflict) {
		t.Errorf("duplicate access token: %v, want models.ErrConflict", err)
	}
	must(t, "create a3", s.CreateAccessTokenSession(ctx, "a3", req("g3")))
	must(t, "get a3", get(ctx, "a3"))
}

func testTxNested(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	txCtx, err := s.BeginTX(ctx)
	must(t, "begin", err)
	defer func() { must(t, "rollback", s.Rollback(txCtx)) }()
	if _, err := s.BeginTX(txCtx); err == nil {
		t.Error("nested BeginTX succeeded")
	}
	if err := s.Commit(ctx); err == nil {
		t.Error("Commit without a transaction succeeded")
	}
}

func testTxSavepoint(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	must(t, "first key", s.ReplaceActiveKey(ctx, "", keyRecord("k1", keys.RS256), baseTime, time.Time{}))
	txCtx, err := s.BeginTX(ctx)
	must(t, "begin", err)
	// k1 is retired, then the insert of a duplicate kid fails: the retirement must be undone.
	err = s.ReplaceActiveKey(txCtx, "k1", keyRecord("k1", keys.RS256), baseTime, baseTime.Add(time.Hour))
	if !errors.Is(err, keys.ErrRotationConflict) {
		t.Fatalf("ReplaceActiveKey with a duplicate kid: %v, want keys.ErrRotationConflict", err)
	}
	// The caller's transaction is still usable and commits without the half-done rotation.
	must(t, "list in tx", func() error { _, err := s.ListSigningKeys(txCtx, baseTime); return err }())
	must(t, "commit", s.Commit(txCtx))
	ks, err := s.ListSigningKeys(ctx, baseTime.Add(2*time.Hour))
	must(t, "list", err)
	if len(ks) != 1 || ks[0].KID != "k1" || ks[0].RetiredAt != nil {
		t.Errorf("keys = %+v, want k1 still active", ks)
	}
}
