package models_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

var testRegistrationPolicy = models.RegistrationPolicy{Scopes: []string{"openid", "profile", "email"}}

func registeredClient(id string) *models.Client {
	return &models.Client{ID: id, Name: "App " + id, RedirectURIs: []string{"https://app.example/cb"},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, Scopes: []string{"openid"},
		SecretHash: "hash-" + id}
}

// forBothStores runs fn with two stores (two nodes) on one fresh database, SQLite and PostgreSQL.
func forBothStores(t *testing.T, fn func(t *testing.T, a, b *models.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		u := "sqlite://" + filepath.Join(t.TempDir(), "latchkey.db")
		fn(t, openMigrated(t, u), openMigrated(t, u))
	})
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
		if base == "" {
			t.Skip("LATCHKEY_TEST_POSTGRES_URL not set")
		}
		u := postgresSchemaURL(t, base)
		fn(t, openMigrated(t, u), openMigrated(t, u))
	})
}

// An initial access token of n uses makes exactly n clients, however many registrations race for it on two nodes;
// a refused or failed registration spends nothing.
func TestInitialAccessTokenSpentAtomically(t *testing.T) {
	forBothStores(t, func(t *testing.T, a, b *models.Store) {
		ctx := context.Background()
		for _, uses := range []int{1, 3} {
			tok := fmt.Sprintf("tok-%d", uses)
			if err := a.CreateInitialAccessToken(ctx, tok, uses, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			// Bad metadata is refused before the token is touched.
			bad := registeredClient(fmt.Sprintf("bad-%d", uses))
			bad.RedirectURIs = []string{"http://evil.example/cb"}
			if err := a.RegisterDynamicClient(ctx, bad, testRegistrationPolicy, "rt", tok); !errors.Is(err, models.ErrInvalid) {
				t.Fatalf("bad metadata: %v", err)
			}
			// A registration failing inside the transaction (taken id) gives its use back.
			if err := a.CreateClient(ctx, registeredClient(fmt.Sprintf("taken-%d", uses))); err != nil {
				t.Fatal(err)
			}
			if err := a.RegisterDynamicClient(ctx, registeredClient(fmt.Sprintf("taken-%d", uses)), testRegistrationPolicy, "rt", tok); !errors.Is(err, models.ErrConflict) {
				t.Fatalf("taken id: %v", err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			made, refused := 0, 0
			for i := range 40 {
				s := a
				if i%2 == 1 {
					s = b
				}
				wg.Go(func() {
					err := s.RegisterDynamicClient(ctx, registeredClient(fmt.Sprintf("c%d-%d", uses, i)), testRegistrationPolicy, fmt.Sprintf("rt-%d-%d", uses, i), tok)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						made++
					case errors.Is(err, models.ErrInitialTokenRefused):
						refused++
					default:
						t.Errorf("register: %v", err)
					}
				})
			}
			wg.Wait()
			if made != uses || refused != 40-uses {
				t.Errorf("token of %d uses: %d clients made, %d refused", uses, made, refused)
			}
			if ok, err := a.InitialAccessTokenUsable(ctx, tok); err != nil || ok {
				t.Errorf("spent token usable = %v, %v", ok, err)
			}
		}
		// Expired and unknown tokens register nothing.
		if err := a.CreateInitialAccessToken(ctx, "short", 5, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond)
		for _, tok := range []string{"short", "unknown"} {
			if err := a.RegisterDynamicClient(ctx, registeredClient("late-"+tok), testRegistrationPolicy, "rt", tok); !errors.Is(err, models.ErrInitialTokenRefused) {
				t.Errorf("token %s: %v", tok, err)
			}
		}
	})
}

// A registration access token reads, replaces and deletes its own client only; an update replaces it, and of two
// updates with the same token one wins. An operator's client has none.
func TestRegistrationAccessToken(t *testing.T) {
	forBothStores(t, func(t *testing.T, a, b *models.Store) {
		ctx := context.Background()
		if err := a.RegisterDynamicClient(ctx, registeredClient("dyn"), testRegistrationPolicy, "rt1", ""); err != nil {
			t.Fatal(err)
		}
		if err := a.CreateClient(ctx, registeredClient("cli")); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ClientByRegistrationToken(ctx, "dyn", "rt1"); err != nil {
			t.Fatal(err)
		}
		for _, c := range [][2]string{{"dyn", "other"}, {"cli", "rt1"}, {"cli", ""}, {"nope", "rt1"}} {
			if _, err := b.ClientByRegistrationToken(ctx, c[0], c[1]); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("client %s with token %q: %v", c[0], c[1], err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*models.Store{a, b} {
			wg.Go(func() {
				c := registeredClient("dyn")
				c.Name = fmt.Sprintf("Renamed %d", i)
				errs[i] = s.UpdateRegisteredClient(ctx, c, testRegistrationPolicy, "rt1", fmt.Sprintf("rt2-%d", i))
			})
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner < 0:
				winner = i
			case !errors.Is(err, models.ErrNotFound):
				t.Errorf("update %d: %v", i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("no update won: %v", errs)
		}
		if _, err := a.ClientByRegistrationToken(ctx, "dyn", "rt1"); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("the old token still reads: %v", err)
		}
		newTok := fmt.Sprintf("rt2-%d", winner)
		if c, err := a.ClientByRegistrationToken(ctx, "dyn", newTok); err != nil || c.Name != fmt.Sprintf("Renamed %d", winner) {
			t.Errorf("after update: %+v, %v", c, err)
		}
		if err := a.DeleteRegisteredClient(ctx, "cli", ""); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("delete operator's client: %v", err)
		}
		if err := a.DeleteRegisteredClient(ctx, "dyn", "rt1"); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("delete with the old token: %v", err)
		}
		if err := a.DeleteRegisteredClient(ctx, "dyn", newTok); err != nil {
			t.Fatal(err)
		}
		if _, err := a.ClientByID(ctx, "dyn"); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("deleted client still there: %v", err)
		}
	})
}

// The registration policy: on top of every client's rules, nothing an operator alone may choose.
func TestRegistrationPolicy(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		edit        func(c *models.Client)
	}{
		{"http redirect", "redirect_uris", func(c *models.Client) { c.RedirectURIs = []string{"http://app.example/cb"} }},
		{"javascript redirect", "redirect_uris", func(c *models.Client) { c.RedirectURIs = []string{"javascript:alert(1)"} }},
		{"admin", "admin", func(c *models.Client) { c.Admin = true }},
		{"first party", "first_party", func(c *models.Client) { c.FirstParty = true }},
		{"password grant", "grant_types", func(c *models.Client) { c.GrantTypes = append(c.GrantTypes, "password") }},
		{"unknown scope", "scopes", func(c *models.Client) { c.Scopes = []string{"openid", "payments"} }},
		{"other pool", "pool", func(c *models.Client) { c.Pool = "staff" }},
		{"no name", "name", func(c *models.Client) { c.Name = "" }},
	} {
		c := registeredClient("x")
		tc.edit(c)
		var v models.ValidationError
		if err := testRegistrationPolicy.Validate(c); !errors.As(err, &v) || !hasField(v, tc.field) {
			t.Errorf("%s: %v, want a problem with %s", tc.name, err, tc.field)
		}
	}
	for _, u := range []string{"https://app.example/cb", "http://127.0.0.1:5000/cb", "http://[::1]/cb", "http://localhost/cb", "com.example.app:/cb"} {
		c := registeredClient("x")
		c.RedirectURIs = []string{u}
		if err := testRegistrationPolicy.Validate(c); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func hasField(v models.ValidationError, field string) bool {
	for _, f := range v {
		if f.Field == field {
			return true
		}
	}
	return false
}
