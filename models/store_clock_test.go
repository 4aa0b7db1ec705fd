package models_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// Options.Now is the store's clock: what it stamps rows with follows it, so the app can give the store, the
// provider and the handlers one clock and a test can move it.
func TestStoreUsesItsClock(t *testing.T) {
	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	ctx := context.Background()
	s, err := models.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "lk.db"), models.Options{Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c := &models.Client{ID: "svc", GrantTypes: []string{"client_credentials"}}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUserWith(ctx, models.NewUser{Email: "ada@example.com", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ClientByID(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(at) || !u.CreatedAt.Equal(at) {
		t.Errorf("client created %v, user created %v; want the store's clock %v", got.CreatedAt, u.CreatedAt, at)
	}
}
