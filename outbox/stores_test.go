package outbox_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // for creating the test's schema

	"github.com/latchkey/latchkey/models"
)

type testStore struct {
	name  string
	store *models.Store
}

// testStores is a migrated SQLite store and, with LATCHKEY_TEST_POSTGRES_URL, a PostgreSQL one in a schema of
// its own, dropped when the test ends.
func testStores(t *testing.T) []testStore {
	t.Helper()
	ctx := context.Background()
	open := func(u string) *models.Store {
		s, err := models.Open(ctx, u, models.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	out := []testStore{{"sqlite", open("sqlite://" + filepath.Join(t.TempDir(), "o.db"))}}
	base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
	if base == "" {
		t.Log("LATCHKEY_TEST_POSTGRES_URL not set; PostgreSQL skipped")
		return out
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "lk_outbox_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return append(out, testStore{"postgres", open(u.String())})
}
