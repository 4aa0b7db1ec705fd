package models_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/models/migrations"
)

// forEachDialect runs test on a fresh, unmigrated store of each database: SQLite in a temporary file, PostgreSQL in
// a schema of its own when LATCHKEY_TEST_POSTGRES_URL is set. dialect is "sqlite" or "postgres"; newStore opens
// another such store of the same kind.
func forEachDialect(t *testing.T, test func(t *testing.T, dialect string, newStore func() *models.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		test(t, "sqlite", func() *models.Store { return openSQLiteStore(t) })
	})
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
		if base == "" {
			t.Skip("LATCHKEY_TEST_POSTGRES_URL not set")
		}
		test(t, "postgres", func() *models.Store { return openPostgresStore(t, base) })
	})
}

func schemaDump(t *testing.T, s *models.Store) string {
	t.Helper()
	d, err := s.SchemaDump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// diffLines reports the first lines where two schema dumps differ.
func diffLines(t *testing.T, what, got, want string) {
	t.Helper()
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("%s: schemas differ at line %d:\n got: %s\nwant: %s", what, i+1, gl, wl)
		}
	}
}

// TestMigrationsBuildTheReleasedSchema: the schema the migration files build up to version 5 is, fact by fact
// (tables, columns with types, nullability and defaults, constraints, indexes with columns and uniqueness, and on
// SQLite the stored CREATE text), the one the Go-generated migrations of the release before the files built.
// testdata/schema_v5_*.txt were captured from that migrator and are never regenerated, so databases it built
// upgrade as if nothing had changed.
func TestMigrationsBuildTheReleasedSchema(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect string, newStore func() *models.Store) {
		s := newStore()
		if err := s.MigrateTo(context.Background(), 5); err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("testdata", "schema_v5_"+dialect+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		diffLines(t, "version 5 from files vs the released migrator", schemaDump(t, s), string(want))
	})
}

// TestMigrationsFreshEqualsStepByStep migrates one database to the latest version in one call and another one
// version per call from version 1, with rows written between the steps so every backfill runs on real data, and
// requires the two schemas to be identical. It also checks what the backfills made of the rows.
func TestMigrationsFreshEqualsStepByStep(t *testing.T) {
	forEachDialect(t, func(t *testing.T, _ string, newStore func() *models.Store) {
		ctx := context.Background()
		fresh := newStore()
		if err := fresh.Migrate(ctx); err != nil {
			t.Fatalf("migrate fresh: %v", err)
		}

		s := newStore()
		now := time.Now().UTC().Truncate(time.Second)
		exec := func(stmt string, args ...any) {
			t.Helper()
			if err := s.ExecSQL(ctx, stmt, args...); err != nil {
				t.Fatalf("%s: %v", strings.SplitN(stmt, "\n", 2)[0], err)
			}
		}
		// Rows written after each version, before the next one runs.
		fill := map[int]func(){
			1: func() {
				exec(`INSERT INTO users (id, email, email_normalized, password_hash, roles, created_at, updated_at)
					VALUES (?, ?, ?, ?, ?, ?, ?)`, "usr_1", "One@Example.com", "one@example.com", "hash", `[]`, now, now)
				exec(`INSERT INTO clients (id, redirect_uris, grant_types, scopes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
					"web", `["https://Web.example:443/cb","http://localhost:08080/cb","app:/cb"]`, `["authorization_code"]`,
					`["openid","latchkey.admin"]`, now, now)
				exec(`INSERT INTO clients (id, secret_hash, grant_types, scopes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
					"backend", "hash", `["client_credentials"]`, `["latchkey.admin"]`, now, now)
				exec(`INSERT INTO signing_keys (kid, alg, public_jwk, sealed_private, created_at) VALUES (?, ?, ?, ?, ?)`,
					"k1", "RS256", []byte(`{}`), []byte{1}, now.Add(-time.Hour))
				exec(`INSERT INTO oauth2_access (signature, request_id, requested_at, client_id, expires_at) VALUES (?, ?, ?, ?, ?)`,
					"sig1", "req1", now, "web", now.Add(time.Hour))
			},
			2: func() {
				exec(`INSERT INTO clients (id, is_public, first_party, redirect_uris, grant_types, scopes, created_at, updated_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, "spa", true, true, `["https://spa.example/cb"]`, `["authorization_code"]`,
					`["latchkey.admin","openid"]`, now, now)
				exec(`INSERT INTO oauth2_code (signature, request_id, requested_at, client_id, sid) VALUES (?, ?, ?, ?, ?)`,
					"sig2", "req2", now, "spa", "ses_1")
			},
			3: func() {
				exec(`INSERT INTO users (id, pool, email, email_normalized, password_hash, created_at, updated_at)
					VALUES (?, ?, ?, ?, ?, ?, ?)`, "usr_3", "default", "three@example.com", "three@example.com", "hash", now, now)
			},
			4: func() {
				exec(`INSERT INTO signing_keys (kid, alg, public_jwk, sealed_private, created_at, retired_at) VALUES (?, ?, ?, ?, ?, ?)`,
					"k4", "ES256", []byte(`{}`), []byte{4}, now.Add(-2*time.Hour), now.Add(-time.Hour))
			},
		}
		for v := 1; v <= models.LatestSchemaVersion; v++ {
			if err := s.MigrateTo(ctx, v); err != nil {
				t.Fatalf("migrate to %d: %v", v, err)
			}
			if got, err := s.SchemaVersion(ctx); err != nil || got != v {
				t.Fatalf("SchemaVersion after step %d = %d, %v", v, got, err)
			}
			if f := fill[v]; f != nil {
				f()
			}
		}
		diffLines(t, "step by step vs fresh", schemaDump(t, s), schemaDump(t, fresh))

		// What the backfills made of the rows.
		for origin, want := range map[string]bool{
			"https://web.example": true, "http://localhost:8080": true, "https://spa.example": false,
		} {
			if ok, err := s.ClientOriginAllowed(ctx, "web", origin); err != nil || ok != want {
				t.Errorf("web's backfilled origin %q: %v, %v; want %v", origin, ok, err, want)
			}
		}
		if pools, err := s.ListPools(ctx); err != nil || len(pools) != 1 || pools[0].Name != models.DefaultPool ||
			pools[0].SignupEnabled || pools[0].CreatedAt.IsZero() || pools[0].CreatedAt.After(time.Now()) {
			t.Errorf("pools = %+v, %v; want only default, signup off, created by the migration", pools, err)
		}
		// The backfilled pool's created_at sorts before a pool the store creates afterwards.
		if err := s.CreatePool(ctx, models.Pool{Name: "later"}); err != nil {
			t.Fatal(err)
		}
		if pools, err := s.ListPools(ctx); err != nil || len(pools) != 2 || pools[0].Name != models.DefaultPool || pools[1].Name != "later" {
			t.Errorf("pools in creation order = %+v, %v; want default, later", pools, err)
		}
		for id, want := range map[string]struct {
			admin  bool
			scopes []string
		}{
			"backend": {true, []string{"latchkey.admin"}},
			"web":     {false, []string{"openid"}},
			"spa":     {false, []string{"openid"}},
		} {
			c, err := s.ClientByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if c.Admin != want.admin || strings.Join(c.Scopes, " ") != strings.Join(want.scopes, " ") || c.Pool != models.DefaultPool {
				t.Errorf("client %s after the backfills: admin %v, scopes %v, pool %q; want %v, %v, default",
					id, c.Admin, c.Scopes, c.Pool, want.admin, want.scopes)
			}
		}
		ks, err := s.ListSigningKeys(ctx, now)
		if err != nil || len(ks) != 2 {
			t.Fatalf("ListSigningKeys = %d keys, %v", len(ks), err)
		}
		for _, k := range ks {
			if !k.ActivatesAt.Equal(k.CreatedAt) {
				t.Errorf("key %s activates at %v, want its creation %v", k.KID, k.ActivatesAt, k.CreatedAt)
			}
		}
	})
}

// releasedMigrations are the SHA-256 of every released migration file and frozen Go backfill. A released
// migration is never edited: databases in production were built by exactly these bytes. A new migration's files
// are added here in the change that adds them.
var releasedMigrations = map[string]string{
	"backfill_0002.go":                 "d34cce1427e30af1067140417340ee4e831a7c079552beab7950893d1b5de2e0",
	"postgres/0001_initial_schema.sql": "7d74d5e766d85af6f61a45c7a695a3a99ea0774deb3776ad29492675a84be4b4",
	"postgres/0002_profiles_origins_sessions_consents_challenges.sql": "dc99adeadd1b7bf6c8f8002611b033eff0c4bb406e9cf63a070beb97f25cc67f",
	"postgres/0003_pools_client_settings_throttle.sql":                "29b82a1d7d953da434b5201650abf6e868d76203c2f6b42d4c13c18a766bc92f",
	"postgres/0004_admin_clients.sql":                                 "1ce4bae062a3752048c5c601661a91a152a839447bc5f43d99e2a92896f15da7",
	"postgres/0005_signing_key_activation.sql":                        "fc25d9e57b5e80c2607b238bddc633e8a26a37848d346c54b4c1d904152fb91d",
	"postgres/0006_refresh_token_policy.sql":                          "9f08c1d93350625b0bbea499db241d03ee9440afd0ac461b276134ed40d0c50e",
	"postgres/0007_minted_sessions.sql":                               "8eeb5b7c41ae4e66115032de67717e3d3ebc18110db7afdf150a99bdf285a141",
	"postgres/0008_client_jwks.sql":                                   "133c9e725e266258e4967cfba794e1f240ecb64ce679307560f0d7e436f61d1d",
	"postgres/0009_client_secret_jwt.sql":                             "a8f4c2800d99e60a532f1f1a44d4cd28d7f1cbc68a416e6243f89e7b84fd71b8",
	"postgres/0010_request_objects.sql":                               "f85c081231f83f3c43c2d771946af8b0186897466b44d1b75e042413715567de",
	"postgres/0011_client_jwks_uri.sql":                               "af5a7cef08dabedfafe9dbece44ece4ee4ed31dba85ff7afc630d5d6b06638dd",
	"postgres/0012_client_registration.sql":                           "8cc2b1897c395925e5fe2291567c92075453880af166c4d021a753f288afdb0f",
	"postgres/0013_token_exchange.sql":                                "ebc15989a938c20baac880b51e13f6f7654c9c15b4c4f4fda797dad511c99665",
	"postgres/0014_device_authorization.sql":                          "a6dac12df7911c62766749d70fbe094923f2664aeedda82b45f0d7efc512679d",
	"postgres/0015_dpop.sql":                                          "2b3746e6a13ee88f9e021203d26010c5d88e5c73984f4df733a72e59de952538",
	"postgres/0016_logout_outbox.sql":                                 "9d2ef2c41036ac2c5e2241077aa204a9bca2319cf7d793e0be3504a7bbf3dfda",
	"postgres/0017_mfa.sql":                                           "5048fded5161dbcac2b9c0cbc576dfb2bdf21f65f3c2282914d2bc7f46f801b9",
	"postgres/0018_upstream_providers.sql":                            "f42fbf0a57cc093522bb378c3bbe26fb672610b2b390da98b95bc2bb7dca0672",
	"postgres/0019_mail_accounts.sql":                                 "d74c8973d0c29902b586355f53507f9ecb0b768a2d7254dadfb521a7ed6fab2f",
	"postgres/0020_passwordless.sql":                                  "ab0a17dad8f75e303fffbff788eb9113cb1fd698f0cf8a98d466e44bf2ecc290",
	"postgres/0021_webhooks.sql":                                      "dd05748458bd2fdd4caf767edee99e64955dd04ea28c443987b41a2c59747505",
	"postgres/0022_audit_events.sql":                                  "828ef5ccfac57ed53f1655cfd887aa0b5765361813a81d5dfdf0cde8cc17126a",
	"postgres/0023_passkeys.sql":                                      "b1f86f5bc923a02300cec8dcfd0e29a1f72c891de5e2134ae05ed13ffd88e827",
	"sqlite/0001_initial_schema.sql":                                  "66960f2a7f60b300ed169ee0d4087a9169ba211d98a2981373fadff66283124c",
	"sqlite/0002_profiles_origins_sessions_consents_challenges.sql":   "87259c6234414d891ad5231ad9282046db3edcd8784d013ac3bd8cac7edfe5f0",
	"sqlite/0003_pools_client_settings_throttle.sql":                  "fa83c8bd55e7995bb4e0785183ac33997f75f5c48d8a97e3cf18bc0e5dbebb80",
	"sqlite/0004_admin_clients.sql":                                   "a199b3a43206285e88b33288d24166fcd1ee8aa120551770b1696b44af3e6d15",
	"sqlite/0005_signing_key_activation.sql":                          "4ccf826371e3e64ffcc04fe17f88675dd05d055bee1172444c4bf8e07b083816",
	"sqlite/0006_refresh_token_policy.sql":                            "8b0e7390ae940ac59edd4572a1832ea2659579ca5f2702d6b5f4c86a6dd9e13f",
	"sqlite/0007_minted_sessions.sql":                                 "476c29279848dfc8e8dccb9b585e98b2b58c7ac1398308b48e96a1db53a1afb5",
	"sqlite/0008_client_jwks.sql":                                     "a07b5bbca1cfb93f0ff6614f48ae96fc79bf11a1ea2dc3b88a06ac39d58aa2f7",
	"sqlite/0009_client_secret_jwt.sql":                               "5ede579884ef40b8c4395896d15c09ca63854bf9d6884b2155e1c305573f2106",
	"sqlite/0010_request_objects.sql":                                 "434af2b632a74754ea34f8fc84166910ba06c314e4b63f39a237974ba36c061a",
	"sqlite/0011_client_jwks_uri.sql":                                 "420004f1e91c40f91863415a8aa9c9ff7e98ff29ad516b434d07ff6d28090990",
	"sqlite/0012_client_registration.sql":                             "23d6fa7f4ddc517db1f87d9a55d47791397f1927ad2754c6fc6b7dbf41d8ee40",
	"sqlite/0013_token_exchange.sql":                                  "358f444ad681c82670cfa49bbb729afa6e6cf7509f3b1690bb77864ff381aae7",
	"sqlite/0014_device_authorization.sql":                            "37297e87a6c720232960ded724796ed58e4687d5763b6e0efe75c4151d92275e",
	"sqlite/0015_dpop.sql":                                            "2b3746e6a13ee88f9e021203d26010c5d88e5c73984f4df733a72e59de952538",
	"sqlite/0016_logout_outbox.sql":                                   "bb180cd91ec3961320816e499a1216a18365162757e9387faf41fe7760f068fc",
	"sqlite/0017_mfa.sql":                                             "0b206e037f35fc6dcda584f57191a36effa9917df941e11530d069d7fe4886d0",
	"sqlite/0018_upstream_providers.sql":                              "7d6acb51d6880940810bea37ef6dba60927f4756d3525f4a10a5e4d1c47b4ba6",
	"sqlite/0019_mail_accounts.sql":                                   "6e204252f34196cda7b38df07f33441b98914d324f6d32f9f3fc53751201de1d",
	"sqlite/0020_passwordless.sql":                                    "47a29039a926ad610a7b523b29fc99849fa079f81215279558210e170cb01bc9",
	"sqlite/0021_webhooks.sql":                                        "65980fe3d283faaa26a81c7bb4e02597b4eaa516e07a725c7ffe79707a3466d3",
	"sqlite/0022_audit_events.sql":                                    "810f404bee1698a0b5cc162a179e05c913bd15495262294f13cf18c969f35ddf",
	"sqlite/0023_passkeys.sql":                                        "dec62a01e768a7fdd4dc0790594a9a8935ab0f563cc281e4b045003f28f15ad3",
}

func TestReleasedMigrationsAreFrozen(t *testing.T) {
	seen := map[string]bool{}
	check := func(name string, data []byte) {
		sum := sha256.Sum256(data)
		got := hex.EncodeToString(sum[:])
		seen[name] = true
		switch want, ok := releasedMigrations[name]; {
		case !ok:
			t.Errorf("%s is not in releasedMigrations: add %q: %q when it ships", name, name, got)
		case got != want:
			t.Errorf("%s has changed (sha256 %s, released %s): a released migration is never edited; add a new one", name, got, want)
		}
	}
	err := fs.WalkDir(migrations.Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(migrations.Files, p)
		check(p, data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	gos, err := filepath.Glob(filepath.Join("migrations", "backfill_*.go"))
	if err != nil || len(gos) == 0 {
		t.Fatalf("frozen Go backfills: %v, %v", gos, err)
	}
	for _, p := range gos {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		check(filepath.Base(p), data)
	}
	for name := range releasedMigrations {
		if !seen[name] {
			t.Errorf("released migration %s is missing", name)
		}
	}
}
