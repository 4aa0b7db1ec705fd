package models_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

// Text PostgreSQL cannot hold never reaches the database: lookups find nothing, writes are ErrInvalid, on both
// databases alike. On PostgreSQL each of these used to fail with SQLSTATE 22021 (and abort the transaction).
func TestUnstorableText(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testUnstorableText(t, newSQLiteStore(t)) })
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
		if base == "" {
			t.Skip("LATCHKEY_TEST_POSTGRES_URL not set")
		}
		testUnstorableText(t, newPostgresStore(t, base))
	})
}

func testUnstorableText(t *testing.T, s *models.Store) {
	ctx := context.Background()
	const password = "violet-tractor-47"
	ada, err := s.CreateUserWith(ctx, models.NewUser{Email: "ada@example.com", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, &models.Client{ID: "app", Name: "App", Public: true}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, bad := range []string{"ada@example.com\x00", "ada@example.com\xff", "\xc3", "\x00"} {
		t.Run("", func(t *testing.T) {
			notFound := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, models.ErrNotFound) {
					t.Errorf("%s(%q) = %v, want not found", what, bad, err)
				}
			}
			invalid := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, models.ErrInvalid) {
					t.Errorf("%s(%q) = %v, want ErrInvalid", what, bad, err)
				}
			}
			_, err := s.UserByEmail(ctx, "", bad)
			notFound("UserByEmail", err)
			_, err = s.UserByEmail(ctx, bad, "ada@example.com")
			notFound("UserByEmail pool", err)
			_, err = s.UserByID(ctx, bad)
			notFound("UserByID", err)
			_, err = s.ListUsers(ctx, bad)
			notFound("ListUsers", err)
			_, err = s.ClientByID(ctx, bad)
			notFound("ClientByID", err)
			_, err = s.GetClient(ctx, bad)
			notFound("GetClient", err)
			cacheCtx, _ := s.WithClientCache(ctx)
			_, err = s.GetClient(cacheCtx, bad)
			notFound("GetClient with the client cache", err)
			_, err = s.BrowserSessionByID(ctx, bad)
			notFound("BrowserSessionByID", err)
			_, err = s.GetPool(ctx, bad)
			notFound("GetPool", err)
			if _, err := s.Authenticate(ctx, "", bad, password); !errors.Is(err, models.ErrInvalidCredentials) {
				t.Errorf("Authenticate(%q) = %v, want ErrInvalidCredentials", bad, err)
			}
			if ok, err := s.ClientOriginAllowed(ctx, bad, "https://app.example"); ok || err != nil {
				t.Errorf("ClientOriginAllowed(%q) = %v, %v; want false, nil", bad, ok, err)
			}
			if list, err := s.ListBrowserSessions(ctx, bad, now); len(list) != 0 || err != nil {
				t.Errorf("ListBrowserSessions(%q) = %v, %v; want none", bad, list, err)
			}
			if scopes, err := s.ConsentedScopes(ctx, bad, "app"); len(scopes) != 0 || err != nil {
				t.Errorf("ConsentedScopes(%q) = %v, %v; want none", bad, scopes, err)
			}
			if _, err := s.GetAccessTokenSession(ctx, bad, nil); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("GetAccessTokenSession(%q) = %v, want not found", bad, err)
			}

			_, err = s.CreateUserWith(ctx, models.NewUser{Email: "new" + bad, Password: password})
			invalid("CreateUserWith", err)
			_, err = s.CreateUserWith(ctx, models.NewUser{Email: "new@example.com", Password: password, Pool: bad})
			if err == nil {
				t.Errorf("CreateUserWith pool %q succeeded", bad)
			}
			invalid("SetName", s.SetName(ctx, ada.ID, "Ada"+bad))
			invalid("SetRoles of an unstorable id", s.SetRoles(ctx, bad, []string{"x"}))
			invalid("CreateClient", s.CreateClient(ctx, &models.Client{ID: bad, Public: true}))

			// Inside a transaction the refusals leave it usable: on PostgreSQL a failed statement would have
			// aborted it.
			txCtx, err := s.BeginTX(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.UserByEmail(txCtx, "", bad)
			notFound("UserByEmail in a transaction", err)
			invalid("SetName in a transaction", s.SetName(txCtx, ada.ID, bad))
			if err := s.SetName(txCtx, ada.ID, "Ada"); err != nil {
				t.Fatalf("transaction unusable after a refused statement: %v", err)
			}
			if err := s.Commit(txCtx); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Nothing was written, and the real account still signs in.
	users, err := s.ListUsers(ctx, "")
	if err != nil || len(users) != 1 || users[0].Name != "Ada" {
		t.Fatalf("users = %v, %v; want only Ada", users, err)
	}
	if _, err := s.Authenticate(ctx, "", "ADA@example.com", password); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
}
