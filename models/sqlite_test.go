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
	ctx := context.Background()
	s, err := models.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "latchkey.db"), models.Options{})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate sqlite: %v", err)
	}
	return s
}
