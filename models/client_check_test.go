package models_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/models"
)

// TestClientCheck covers the statements that confirm a cached client: another node's change is simulated by
// writing the clients table directly, which this store's cache cannot see.
func TestClientCheck(t *testing.T) {
	backends := map[string]func(t *testing.T) *models.Store{"sqlite": func(t *testing.T) *models.Store { return newSQLiteStore(t) }}
	if base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL"); base != "" {
		backends["postgres"] = func(t *testing.T) *models.Store { return newPostgresStore(t, base) }
	} else {
		t.Log("LATCHKEY_TEST_POSTGRES_URL not set; PostgreSQL part skipped")
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) { testClientCheck(t, open) })
	}
}

func testClientCheck(t *testing.T, open func(t *testing.T) *models.Store) {
	ctx := context.Background()
	setup := func(t *testing.T) *models.Store {
		s := open(t)
		if err := s.CreateClient(ctx, &models.Client{ID: "svc", SecretHash: "hash-1", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetClient(ctx, "svc"); err != nil { // a fresh read fills the cache
			t.Fatal(err)
		}
		return s
	}
	request := func(c fosite.Client) *fosite.Request {
		sess := &openid.DefaultSession{Subject: "svc"}
		sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
		return &fosite.Request{ID: "grant-" + time.Now().Format(time.RFC3339Nano), RequestedAt: time.Now(), Client: c, Session: sess}
	}
	cached := func(t *testing.T, s *models.Store) (context.Context, *models.ClientCheck, fosite.Client) {
		t.Helper()
		cctx, check := s.WithClientCache(ctx)
		c, err := s.GetClient(cctx, "svc")
		if err != nil {
			t.Fatal(err)
		}
		if !check.Used() || !check.Unconfirmed() {
			t.Fatalf("GetClient did not answer from the cache (used %v, unconfirmed %v)", check.Used(), check.Unconfirmed())
		}
		return cctx, check, c
	}

	t.Run("the insert confirms an unchanged client", func(t *testing.T) {
		s := setup(t)
		cctx, check, c := cached(t, s)
		if err := s.CreateAccessTokenSession(cctx, "sig-1", request(c)); err != nil {
			t.Fatal(err)
		}
		if check.Unconfirmed() {
			t.Error("a successful conditional insert left the client unconfirmed")
		}
	})

	for _, change := range []struct{ name, stmt string }{
		{"secret rotated elsewhere", "UPDATE clients SET secret_hash = 'hash-2' WHERE id = 'svc'"},
		{"client deleted elsewhere", "DELETE FROM clients WHERE id = 'svc'"},
	} {
		t.Run(change.name+": the insert writes nothing and refuses", func(t *testing.T) {
			s := setup(t)
			if err := s.ExecSQL(ctx, change.stmt); err != nil {
				t.Fatal(err)
			}
			cctx, check, c := cached(t, s)
			if err := s.CreateAccessTokenSession(cctx, "sig-stale", request(c)); !errors.Is(err, models.ErrStaleClient) {
				t.Fatalf("insert with a stale client = %v, want ErrStaleClient", err)
			}
			if !check.Unconfirmed() {
				t.Error("a refused insert reports the client confirmed")
			}
			if _, err := s.GetAccessTokenSession(ctx, "sig-stale", nil); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("the refused token was written: %v", err)
			}
			// Nothing later in the same request runs on the stale row either.
			if _, err := s.GetAccessTokenSession(cctx, "sig-other", nil); !errors.Is(err, models.ErrStaleClient) {
				t.Errorf("a lookup after the refusal = %v, want ErrStaleClient", err)
			}
			// The entry is gone: the next request reads the row.
			c2, check2 := s.WithClientCache(ctx)
			if _, err := s.GetClient(c2, "svc"); check2.Used() {
				t.Errorf("the stale entry is still cached (%v)", err)
			}
		})
	}

	t.Run("a lookup confirms, and tells a missing token from a changed client", func(t *testing.T) {
		s := setup(t)
		if err := s.CreateAccessTokenSession(ctx, "sig-live", request(&models.Client{ID: "svc"})); err != nil {
			t.Fatal(err)
		}
		cctx, check, _ := cached(t, s)
		if _, err := s.GetAccessTokenSession(cctx, "sig-live", nil); err != nil || check.Unconfirmed() {
			t.Fatalf("lookup of a live token: %v, unconfirmed %v", err, check.Unconfirmed())
		}
		cctx, check, _ = cached(t, s)
		if _, err := s.GetAccessTokenSession(cctx, "sig-missing", nil); !errors.Is(err, fosite.ErrNotFound) || check.Unconfirmed() {
			t.Fatalf("lookup of a missing token: %v, unconfirmed %v; want ErrNotFound, confirmed", err, check.Unconfirmed())
		}
		for _, sig := range []string{"sig-live", "sig-missing"} {
			// The cache holds hash-1 while the row says hash-2.
			if err := s.ExecSQL(ctx, "UPDATE clients SET secret_hash = 'hash-1' WHERE id = 'svc'"); err != nil {
				t.Fatal(err)
			}
			_, _ = s.GetClient(ctx, "svc")
			if err := s.ExecSQL(ctx, "UPDATE clients SET secret_hash = 'hash-2' WHERE id = 'svc'"); err != nil {
				t.Fatal(err)
			}
			cctx, check, _ = cached(t, s)
			if _, err := s.GetAccessTokenSession(cctx, sig, nil); !errors.Is(err, models.ErrStaleClient) || !check.Unconfirmed() {
				t.Errorf("lookup of %s with a stale client: %v, unconfirmed %v; want ErrStaleClient", sig, err, check.Unconfirmed())
			}
		}
	})

	t.Run("Confirm checks a row no statement confirmed", func(t *testing.T) {
		s := setup(t)
		cctx, check, _ := cached(t, s)
		if err := check.Confirm(cctx); err != nil || check.Unconfirmed() {
			t.Fatalf("Confirm of an unchanged client: %v", err)
		}
		if err := s.ExecSQL(ctx, "UPDATE clients SET secret_hash = 'hash-2' WHERE id = 'svc'"); err != nil {
			t.Fatal(err)
		}
		cctx, check, _ = cached(t, s)
		if err := check.Confirm(cctx); !errors.Is(err, models.ErrStaleClient) {
			t.Fatalf("Confirm of a rotated client = %v, want ErrStaleClient", err)
		}
	})

	t.Run("without the cache context, or inside a transaction, GetClient reads the row", func(t *testing.T) {
		s := setup(t)
		if err := s.ExecSQL(ctx, "UPDATE clients SET secret_hash = 'hash-2' WHERE id = 'svc'"); err != nil {
			t.Fatal(err)
		}
		if c, err := s.GetClient(ctx, "svc"); err != nil || string(c.GetHashedSecret()) != "hash-2" {
			t.Errorf("GetClient without the cache context = %v %v, want the current row", c, err)
		}
		_ = s.ExecSQL(ctx, "UPDATE clients SET secret_hash = 'hash-3' WHERE id = 'svc'")
		cctx, check := s.WithClientCache(ctx)
		tctx, err := s.BeginTX(cctx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Rollback(tctx)
		if c, err := s.GetClient(tctx, "svc"); err != nil || check.Used() || string(c.GetHashedSecret()) != "hash-3" {
			t.Errorf("GetClient in a transaction = %v %v (used cache %v), want the current row", c, err, check.Used())
		}
	})
}
