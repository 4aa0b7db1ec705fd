package models_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/models/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *models.Store { return newSQLiteStore(t) })
}

// newSQLiteStore opens and migrates a fresh SQLite database in a temporary directory.
func newSQLiteStore(t testing.TB) *models.Store {
	t.Helper()
	s := openSQLiteStore(t)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate sqlite: %v", err)
	}
	return s
}

// openSQLiteStore opens a fresh, empty SQLite database in a temporary directory.
func openSQLiteStore(t testing.TB) *models.Store {
	t.Helper()
	s, err := models.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "latchkey.db"), models.Options{})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
