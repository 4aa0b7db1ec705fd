package models_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/models"
)

// TestMigrationSigningKeyActivation fills a migration-4 database with an active and a retired signing key the
// way the release before activation times left them, migrates it, and checks both read back as they were
// (activated when created) and rotation works on the upgraded rows.
func TestMigrationSigningKeyActivation(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testMigrationSigningKeyActivation(t, openSQLiteStore(t)) })
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
		if base == "" {
			t.Skip("LATCHKEY_TEST_POSTGRES_URL not set")
		}
		testMigrationSigningKeyActivation(t, openPostgresStore(t, base))
	})
}

func testMigrationSigningKeyActivation(t *testing.T, s *models.Store) {
	ctx := context.Background()
	if err := s.MigrateTo(ctx, 4); err != nil {
		t.Fatalf("migrate to 4: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	created, retired, notAfter := now.Add(-48*time.Hour), now.Add(-time.Hour), now.Add(time.Hour)
	insert := `INSERT INTO signing_keys (kid, alg, public_jwk, sealed_private, created_at, retired_at, not_after)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	if err := s.ExecSQL(ctx, insert, "old", keys.RS256, []byte(`{}`), []byte{1}, created, retired, notAfter); err != nil {
		t.Fatal(err)
	}
	if err := s.ExecSQL(ctx, insert, "cur", keys.RS256, []byte(`{}`), []byte{2}, retired, nil, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != models.LatestSchemaVersion {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, models.LatestSchemaVersion)
	}
	ks, err := s.ListSigningKeys(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]keys.Record{}
	for _, k := range ks {
		got[k.KID] = k
	}
	if k := got["old"]; !k.ActivatesAt.Equal(created) || k.State(now) != keys.StateRetired {
		t.Errorf("upgraded retired key = %+v (state %s), want activated at creation %v, retired", k, k.State(now), created)
	}
	if k := got["cur"]; !k.ActivatesAt.Equal(retired) || k.State(now) != keys.StateActive || k.RetiredAt != nil {
		t.Errorf("upgraded active key = %+v (state %s), want activated at creation %v, active", k, k.State(now), retired)
	}
	// The upgraded newest key is the one a rotation replaces.
	next := keys.Record{KID: "next", Alg: keys.RS256, PublicJWK: []byte(`{}`), SealedPrivate: []byte{3}, ActivatesAt: now.Add(time.Hour)}
	if err := s.ReplaceActiveKey(ctx, "cur", next, now, now.Add(3*time.Hour)); err != nil {
		t.Fatalf("rotate from the upgraded key: %v", err)
	}
	ks, err = s.ListSigningKeys(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if want := map[string]string{"old": keys.StateRetired, "cur": keys.StateActive, "next": keys.StateNext}[k.KID]; k.State(now) != want {
			t.Errorf("after rotation %s is %s, want %s", k.KID, k.State(now), want)
		}
	}
}
