package models_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

func onBothDatabases(t *testing.T, fn func(t *testing.T, s *models.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLiteStore(t)) })
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
		if base == "" {
			t.Skip("LATCHKEY_TEST_POSTGRES_URL not set")
		}
		fn(t, openPostgresStore(t, base))
	})
}

// TestMigrationMakesAdminClients fills a migration-3 database with the clients an older release allowed to hold
// latchkey.admin, migrates it, and checks that only the backends become admins (of every pool) and that no other
// client keeps the scope, so no user's grant can carry it.
func TestMigrationMakesAdminClients(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		if err := s.MigrateTo(ctx, 3); err != nil {
			t.Fatalf("migrate to 3: %v", err)
		}
		now := time.Now().UTC().Truncate(time.Second)
		for _, c := range []struct {
			id, grants, scopes string
			public, firstParty bool
		}{
			{"backend", `["client_credentials"]`, `["latchkey.admin"]`, false, false},
			{"backend-more", `["client_credentials"]`, `["read","latchkey.admin","write"]`, false, false},
			{"webapp", `["authorization_code","refresh_token"]`, `["openid","latchkey.admin","profile"]`, false, true},
			{"own-cc", `["client_credentials"]`, `["latchkey.admin","openid"]`, false, true},
			{"spa", `["authorization_code","refresh_token"]`, `["openid","latchkey.admin"]`, true, false},
			{"worker", `["client_credentials"]`, `["read"]`, false, false},
		} {
			err := s.ExecSQL(ctx, `INSERT INTO clients (id, name, redirect_uris, grant_types, response_types, scopes, is_public,
				first_party, pool, created_at, updated_at) VALUES (?, ?, '[]', ?, '[]', ?, ?, ?, 'default', ?, ?)`,
				c.id, c.id, c.grants, c.scopes, c.public, c.firstParty, now, now)
			if err != nil {
				t.Fatalf("fill migration-3 schema: %v", err)
			}
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		for _, want := range []struct {
			id     string
			admin  bool
			scopes []string
		}{
			{"backend", true, []string{"latchkey.admin"}},
			{"backend-more", true, []string{"read", "latchkey.admin", "write"}},
			{"webapp", false, []string{"openid", "profile"}},
			{"own-cc", false, []string{"openid"}},
			{"spa", false, []string{"openid"}},
			{"worker", false, []string{"read"}},
		} {
			c, err := s.ClientByID(ctx, want.id)
			if err != nil {
				t.Fatal(err)
			}
			if c.Admin != want.admin || !reflect.DeepEqual(c.Scopes, want.scopes) || len(c.AdminPools) != 0 {
				t.Errorf("%s after the upgrade: admin %v, admin pools %v, scopes %v; want admin %v, every pool, scopes %v",
					want.id, c.Admin, c.AdminPools, c.Scopes, want.admin, want.scopes)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("%s breaks the client rules after the upgrade: %v", want.id, err)
			}
			if c.AdministersPool("default") != want.admin || c.AdministersPool("anything") != want.admin {
				t.Errorf("%s administers every pool = %v, want %v", want.id, !want.admin, want.admin)
			}
		}
	})
}

// Admin clients round-trip through the store, their pools must exist, and the client rules hold on every write.
func TestStoreAdminClients(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.CreatePool(ctx, models.Pool{Name: "customers"}); err != nil {
			t.Fatal(err)
		}
		c := &models.Client{ID: "xano", Name: "Xano", SecretHash: "h", GrantTypes: []string{"client_credentials"},
			Scopes: []string{models.AdminScope}, Admin: true, AdminPools: []string{"customers"}}
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.ClientByID(ctx, "xano")
		if err != nil || !got.Admin || !reflect.DeepEqual(got.AdminPools, []string{"customers"}) {
			t.Fatalf("stored admin client = %+v, %v", got, err)
		}
		if !got.AdministersPool("customers") || got.AdministersPool("default") {
			t.Errorf("AdministersPool: customers %v, default %v", got.AdministersPool("customers"), got.AdministersPool("default"))
		}
		got.AdminPools = []string{"customers", "nowhere"}
		if err := s.UpdateClient(ctx, got); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("UpdateClient with an unknown admin pool: %v, want ErrInvalid", err)
		}
		for name, bad := range map[string]models.Client{
			"scope without admin": {ID: "a", GrantTypes: []string{"client_credentials"}, Scopes: []string{models.AdminScope}},
			"pools without admin": {ID: "b", GrantTypes: []string{"client_credentials"}, AdminPools: []string{"customers"}},
			"public admin":        {ID: "c", Public: true, GrantTypes: []string{"client_credentials"}, Scopes: []string{models.AdminScope}, Admin: true},
			"first-party admin":   {ID: "d", FirstParty: true, GrantTypes: []string{"client_credentials"}, Scopes: []string{models.AdminScope}, Admin: true},
			"admin with a user grant": {ID: "e", GrantTypes: []string{"client_credentials", "authorization_code"},
				Scopes: []string{models.AdminScope}, Admin: true},
			"admin without the scope": {ID: "f", GrantTypes: []string{"client_credentials"}, Admin: true},
		} {
			if err := s.CreateClient(ctx, &bad); !errors.Is(err, models.ErrInvalid) {
				t.Errorf("%s: CreateClient = %v, want ErrInvalid", name, err)
			}
		}
		if list, err := s.ListClients(ctx); err != nil || len(list) != 1 {
			t.Errorf("clients after the refused writes = %d, %v", len(list), err)
		}
		if got, err := s.ClientByID(ctx, "xano"); err != nil || !reflect.DeepEqual(got.AdminPools, []string{"customers"}) {
			t.Errorf("a refused update changed the client: %+v, %v", got, err)
		}
	})
}
