package models_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/models"
)

// TestMigrationUpgrade fills a migration-1 database the way an older Latchkey left it, migrates it to the
// latest schema, and checks the old rows read back with the new columns' defaults and the backfilled
// client origins.
func TestMigrationUpgrade(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testMigrationUpgrade(t, openSQLiteStore(t)) })
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
		if base == "" {
			t.Skip("LATCHKEY_TEST_POSTGRES_URL not set")
		}
		testMigrationUpgrade(t, openPostgresStore(t, base))
	})
}

func testMigrationUpgrade(t *testing.T, s *models.Store) {
	ctx := context.Background()
	if err := s.MigrateTo(ctx, 1); err != nil {
		t.Fatalf("migrate to 1: %v", err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != 1 {
		t.Fatalf("SchemaVersion = %d, %v; want 1", v, err)
	}
	hash, err := models.HashPassword("old password")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	sigHash := sha256.Sum256([]byte("sig-old")) // the store keys tokens by the hex SHA-256 of the signature
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (id, email, email_normalized, password_hash, roles, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, []any{"usr_old", "Old@Example.com", "old@example.com", hash, `["admin"]`, now, now}},
		{`INSERT INTO clients (id, name, redirect_uris, grant_types, response_types, scopes, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, []any{"legacy", "Legacy", `["https://Legacy.example:443/cb","http://localhost:9000/cb","app:/cb"]`,
			`["authorization_code"]`, `["code"]`, `["openid"]`, now, now}},
		{`INSERT INTO oauth2_access (signature, request_id, requested_at, client_id, subject, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, []any{hex.EncodeToString(sigHash[:]), "req-old", now, "legacy", "usr_old", now.Add(time.Hour)}},
	} {
		if err := s.ExecSQL(ctx, st.sql, st.args...); err != nil {
			t.Fatalf("fill migration-1 schema: %v", err)
		}
	}

	for i := range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != models.LatestSchemaVersion {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, models.LatestSchemaVersion)
	}

	u, err := s.Authenticate(ctx, "", "old@example.com", "old password")
	if err != nil {
		t.Fatalf("Authenticate the pre-upgrade user: %v", err)
	}
	if u.Name != "" || u.Extras == nil || len(u.Extras) != 0 || u.EmailVerified || u.Disabled ||
		!reflect.DeepEqual(u.Roles, []string{"admin"}) {
		t.Errorf("pre-upgrade user = %+v", u)
	}
	c, err := s.ClientByID(ctx, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if c.FirstParty || len(c.AllowedOrigins) != 0 || len(c.PostLogoutRedirectURIs) != 0 || len(c.RedirectURIs) != 3 {
		t.Errorf("pre-upgrade client = %+v", c)
	}
	for origin, want := range map[string]bool{
		"https://legacy.example": true, "http://localhost:9000": true, "https://evil.example": false,
	} {
		if ok, err := s.ClientOriginAllowed(ctx, "legacy", origin); err != nil || ok != want {
			t.Errorf("backfilled origin %q: %v, %v; want %v", origin, ok, err, want)
		}
	}
	if _, err := s.GetAccessTokenSession(ctx, "sig-old", new(openid.DefaultSession)); err != nil {
		t.Errorf("pre-upgrade token: %v", err)
	}

	// The new tables work on the upgraded schema.
	ses, tok, err := s.CreateBrowserSession(ctx, u.ID, "", "", now, time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.BrowserSessionByToken(ctx, tok, now); err != nil || got.ID != ses.ID {
		t.Errorf("BrowserSessionByToken = %v, %v", got, err)
	}
	if err := s.SaveConsent(ctx, u.ID, "legacy", []string{"openid"}, now); err != nil {
		t.Error(err)
	}
	if err := s.DeleteClient(ctx, "legacy"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.OriginAllowed(ctx, "https://legacy.example"); err != nil || ok {
		t.Errorf("backfilled origin after DeleteClient: %v, %v", ok, err)
	}
}
