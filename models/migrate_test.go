package models_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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
	ses, tok, err := s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, time.Hour)
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

// TestMigrationUpgradeToPools fills a migration-2 database with users and clients the way the release
// before pools left it, migrates it, and checks everything landed in the default pool and still works:
// sign-in, origins, updates, and email uniqueness now per pool.
func TestMigrationUpgradeToPools(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testMigrationUpgradeToPools(t, openSQLiteStore(t)) })
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
		if base == "" {
			t.Skip("LATCHKEY_TEST_POSTGRES_URL not set")
		}
		testMigrationUpgradeToPools(t, openPostgresStore(t, base))
	})
}

func testMigrationUpgradeToPools(t *testing.T, s *models.Store) {
	ctx := context.Background()
	if err := s.MigrateTo(ctx, 2); err != nil {
		t.Fatalf("migrate to 2: %v", err)
	}
	hash, err := models.HashPassword("v2 password")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (id, email, email_normalized, password_hash, roles, name, extras, email_verified, disabled, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			[]any{"usr_ada", "Ada@Example.com", "ada@example.com", hash, `["admin"]`, "Ada", `{"team":"core"}`, true, false, now, now}},
		{`INSERT INTO users (id, email, email_normalized, password_hash, roles, name, extras, email_verified, disabled, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			[]any{"usr_bob", "bob@example.com", "bob@example.com", hash, `[]`, "", `{}`, false, false, now.Add(time.Second), now}},
		{`INSERT INTO clients (id, name, secret_hash, redirect_uris, grant_types, response_types, scopes, first_party,
			post_logout_redirect_uris, allowed_origins, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			[]any{"web", "Web", "secret-hash", `["https://web.example/cb"]`, `["authorization_code"]`, `["code"]`,
				`["openid"]`, true, `["https://web.example/bye"]`, `["https://admin.example"]`, now, now}},
		{`INSERT INTO client_origins (client_id, origin) VALUES (?, ?), (?, ?)`,
			[]any{"web", "https://web.example", "web", "https://admin.example"}},
	} {
		if err := s.ExecSQL(ctx, st.sql, st.args...); err != nil {
			t.Fatalf("fill migration-2 schema: %v", err)
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

	pools, err := s.ListPools(ctx)
	if err != nil || len(pools) != 1 || pools[0].Name != models.DefaultPool || pools[0].SignupEnabled {
		t.Fatalf("pools after upgrade = %+v, %v; want only default, signup off", pools, err)
	}
	users, err := s.ListUsers(ctx, models.DefaultPool)
	if err != nil || len(users) != 2 || users[0].ID != "usr_ada" || users[1].ID != "usr_bob" {
		t.Fatalf("default pool's users = %+v, %v; want usr_ada, usr_bob", users, err)
	}
	for _, u := range users {
		if u.Pool != models.DefaultPool {
			t.Errorf("user %s pool = %q, want default", u.ID, u.Pool)
		}
	}
	for _, pool := range []string{"", models.DefaultPool} {
		u, err := s.Authenticate(ctx, pool, "ADA@example.com", "v2 password")
		if err != nil || u.ID != "usr_ada" || u.Name != "Ada" || !u.EmailVerified || u.Extras["team"] != "core" ||
			!reflect.DeepEqual(u.Roles, []string{"admin"}) {
			t.Errorf("Authenticate(%q) the pre-upgrade user = %+v, %v", pool, u, err)
		}
	}
	if u, err := s.UserByEmail(ctx, "", "bob@example.com"); err != nil || u.ID != "usr_bob" {
		t.Errorf("UserByEmail = %+v, %v", u, err)
	}

	c, err := s.ClientByID(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if c.Pool != models.DefaultPool || c.AllowSignup || c.EncryptionJWK != "" || c.AccessTokenEncryptionAlg != "" ||
		!c.FirstParty || c.SecretHash != "secret-hash" || !reflect.DeepEqual(c.AllowedOrigins, []string{"https://admin.example"}) {
		t.Errorf("pre-upgrade client = %+v", c)
	}
	if _, _, _, ok := c.IDTokenEncryption(); ok {
		t.Error("pre-upgrade client reports ID token encryption")
	}
	if ok, err := s.ClientOriginAllowed(ctx, "web", "https://admin.example"); err != nil || !ok {
		t.Errorf("pre-upgrade origin: %v, %v", ok, err)
	}

	// Email uniqueness is per pool now: the old global index is gone, the per-pool one is in place.
	if err := s.CreatePool(ctx, models.Pool{Name: "customers", SignupEnabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUserWith(ctx, models.NewUser{Pool: "customers", Email: "ada@example.com", Password: "pw"}); err != nil {
		t.Errorf("same email in a new pool: %v", err)
	}
	if _, err := s.CreateUserWith(ctx, models.NewUser{Email: "Ada@EXAMPLE.com", Password: "pw"}); !errors.Is(err, models.ErrConflict) {
		t.Errorf("duplicate email in the default pool: %v, want models.ErrConflict", err)
	}
	if u, err := s.Authenticate(ctx, "", "ada@example.com", "v2 password"); err != nil || u.ID != "usr_ada" {
		t.Errorf("Authenticate after adding a same-email user elsewhere = %+v, %v", u, err)
	}

	// The pre-upgrade client can be moved and updated.
	c.Pool, c.AllowSignup = "customers", true
	c.AllowedOrigins = nil
	if err := s.UpdateClient(ctx, c); err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	if got, err := s.ClientByID(ctx, "web"); err != nil || got.Pool != "customers" || !got.AllowSignup || got.SecretHash != "secret-hash" {
		t.Errorf("client after UpdateClient = %+v, %v", got, err)
	}
	if ok, err := s.ClientOriginAllowed(ctx, "web", "https://admin.example"); err != nil || ok {
		t.Errorf("removed origin after UpdateClient: %v, %v", ok, err)
	}

	// The throttle table exists.
	p := models.ThrottlePolicy{Free: 1, Base: time.Second, Max: time.Minute, Window: time.Hour}
	k := models.ThrottleKey{Key: "acct:default:ada@example.com", Policy: p}
	if d, _, err := s.ThrottleReserve(ctx, now, k); err != nil || d != 0 {
		t.Errorf("ThrottleReserve on the upgraded schema = %v, %v", d, err)
	}
	if d, _, err := s.ThrottleReserve(ctx, now, k); err != nil || d != time.Second {
		t.Errorf("second ThrottleReserve on the upgraded schema = %v, %v, want a block of 1s", d, err)
	}
}
