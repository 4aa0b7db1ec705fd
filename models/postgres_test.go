package models_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for creating test schemas
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/models/storetest"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

func TestPostgres(t *testing.T) {
	base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("LATCHKEY_TEST_POSTGRES_URL not set; skipping PostgreSQL contract suite")
	}
	storetest.Run(t, func(t *testing.T) *models.Store { return newPostgresStore(t, base) })
}

// newPostgresStore creates a fresh schema, opens a store whose search_path is that schema, migrates it, and
// drops the schema when the test ends.
func newPostgresStore(t testing.TB, base string) *models.Store {
	t.Helper()
	s := openPostgresStore(t, base)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate postgres: %v", err)
	}
	return s
}

// openPostgresStore creates a fresh schema and opens a store whose search_path is that schema, without
// migrating; the schema is dropped when the test ends.
func openPostgresStore(t testing.TB, base string) *models.Store {
	t.Helper()
	return openPostgresStoreWith(t, base, models.Options{})
}

// openPostgresStoreWith is openPostgresStore with Open's options.
func openPostgresStoreWith(t testing.TB, base string, opts models.Options) *models.Store {
	t.Helper()
	ctx := context.Background()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "lk_test_" + hex.EncodeToString(b)
	if err := exec(ctx, admin, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := exec(context.Background(), admin, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		_ = admin.Close()
	})

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse LATCHKEY_TEST_POSTGRES_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	s, err := models.Open(ctx, u.String(), opts)
	if err != nil {
		t.Fatalf("open postgres schema %s: %v", schema, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func exec(ctx context.Context, db *sql.DB, stmt string) error {
	_, err := db.ExecContext(ctx, stmt)
	return err
}

// Cleanup has a connection of its own on PostgreSQL: with every pooled connection busy (here the pool's only
// one, held by an open transaction), expired rows are still deleted instead of the cleanup waiting its turn
// behind requests.
func TestPostgresCleanupDoesNotWaitForThePool(t *testing.T) {
	base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("LATCHKEY_TEST_POSTGRES_URL not set; skipping PostgreSQL cleanup test")
	}
	s := openPostgresStoreWith(t, base, models.Options{MaxOpenConns: 1})
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	now := time.Now()
	req := fosite.NewAccessRequest(&openid.DefaultSession{ExpiresAt: map[fosite.TokenType]time.Time{fosite.AccessToken: now.Add(-time.Minute)}})
	req.Client = &fosite.DefaultClient{ID: "app"}
	if err := s.CreateAccessTokenSession(ctx, "expired", req); err != nil {
		t.Fatalf("create expired token: %v", err)
	}

	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = s.Rollback(txCtx) }()
	cleanupCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, _, err := s.DeleteExpiredRound(cleanupCtx, now, 100, nil)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredRound while the pool is busy = %d, %v; want 1, nil", n, err)
	}
}
