package models

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenRejectsUnknownScheme(t *testing.T) {
	for _, u := range []string{"mysql://root@localhost/db", "latchkey.db", "sqlite:/x.db"} {
		_, err := Open(context.Background(), u, Options{})
		if err == nil || !strings.Contains(err.Error(), "scheme") {
			t.Errorf("Open(%q) = %v, want an error naming the scheme", u, err)
		}
	}
}

// TestOpenDialect: the URL's scheme picks the dialect, which decides the SQL the store writes.
func TestOpenDialect(t *testing.T) {
	ctx := context.Background()
	urls := map[string]string{"sqlite": "sqlite://" + filepath.Join(t.TempDir(), "lk.db")}
	if pg := os.Getenv("LATCHKEY_TEST_POSTGRES_URL"); pg != "" {
		urls["postgres"] = pg
	}
	for want, u := range urls {
		s, err := Open(ctx, u, Options{})
		if err != nil {
			t.Fatalf("open %s: %v", want, err)
		}
		if s.dialect != want {
			t.Errorf("%s URL opened dialect %q", want, s.dialect)
		}
		if err := s.Ping(ctx); err != nil {
			t.Errorf("ping %s: %v", want, err)
		}
		_ = s.Close()
	}
}

func TestSQLiteSettings(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "lk.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.dialect != "sqlite" || s.sqlDB.Stats().MaxOpenConnections != 1 {
		t.Errorf("dialect %q, max open conns %d; want sqlite, 1", s.dialect, s.sqlDB.Stats().MaxOpenConnections)
	}
	for pragma, want := range map[string]string{
		"journal_mode": "wal", "busy_timeout": "5000", "foreign_keys": "1", "synchronous": "1", // 1 = NORMAL
	} {
		var got string
		if err := s.db.Raw("PRAGMA " + pragma).Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
		}
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != 0 {
		t.Errorf("SchemaVersion before Migrate = %d, %v; want 0", v, err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	v, err = s.SchemaVersion(ctx)
	if err != nil || v != migrations[len(migrations)-1].version {
		t.Errorf("SchemaVersion after Migrate = %d, %v", v, err)
	}
}

func TestMigrationsAreOrdered(t *testing.T) {
	for i, m := range migrations {
		if m.version != i+1 {
			t.Errorf("migration %d has version %d; versions must be 1, 2, 3, ...", i, m.version)
		}
		if len(m.sqlite) == 0 || len(m.postgres) == 0 {
			t.Errorf("migration %d lacks SQL for a dialect", m.version)
		}
	}
}
