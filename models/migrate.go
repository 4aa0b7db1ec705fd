package models

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// migration is one numbered schema change, with the statements for each dialect. Append only: never edit or
// renumber a migration that has shipped.
type migration struct {
	version  int
	name     string
	sqlite   []string
	postgres []string
	// after, if set, runs in the migration's transaction after its statements: data backfills that need Go.
	after func(tx *gorm.DB) error
}

func (m migration) statements(dialect string) []string {
	if dialect == dialectPostgres {
		return m.postgres
	}
	return m.sqlite
}

// migrations, in order.
var migrations = []migration{
	{
		version:  1,
		name:     "initial schema",
		sqlite:   initialSchema(dialectSQLite),
		postgres: initialSchema(dialectPostgres),
	},
	{
		version:  2,
		name:     "user profiles, client origins, browser sessions, consents, authorization challenges",
		sqlite:   schemaV2(dialectSQLite),
		postgres: schemaV2(dialectPostgres),
		after:    backfillClientOrigins,
	},
	{
		version:  3,
		name:     "user pools, client signup and encryption settings, sign-in throttling",
		sqlite:   schemaV3(dialectSQLite),
		postgres: schemaV3(dialectPostgres),
		after:    createDefaultPool,
	},
	{
		version:  4,
		name:     "admin clients",
		sqlite:   schemaV4(),
		postgres: schemaV4(),
		after:    backfillAdminClients,
	},
	{
		version:  5,
		name:     "signing key activation times",
		sqlite:   schemaV5(dialectSQLite),
		postgres: schemaV5(dialectPostgres),
	},
}

// tokenTables are the tables with one row per fosite token kind.
var tokenTables = []string{"oauth2_access", "oauth2_refresh", "oauth2_code", "oauth2_pkce", "oauth2_oidc", "oauth2_par"}

// initialSchema is migration 1, written once with the two dialects' type names filled in.
func initialSchema(dialect string) []string {
	ts, blob := "DATETIME", "BLOB" // DATETIME makes the SQLite driver return time.Time
	if dialect == dialectPostgres {
		ts, blob = "TIMESTAMPTZ", "BYTEA"
	}
	var stmts []string
	for _, table := range tokenTables {
		extra := ""
		switch table {
		case "oauth2_refresh":
			extra = ",\n\taccess_token_signature TEXT NOT NULL DEFAULT ''"
		case "oauth2_par":
			extra = ",\n\tauthorize_params TEXT NOT NULL DEFAULT '{}'"
		}
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE %[1]s (
	signature TEXT PRIMARY KEY,
	request_id TEXT NOT NULL,
	requested_at %[2]s NOT NULL,
	client_id TEXT NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	requested_scopes TEXT NOT NULL DEFAULT '[]',
	granted_scopes TEXT NOT NULL DEFAULT '[]',
	requested_audience TEXT NOT NULL DEFAULT '[]',
	granted_audience TEXT NOT NULL DEFAULT '[]',
	form TEXT NOT NULL DEFAULT '',
	session TEXT NOT NULL DEFAULT '{}',
	active BOOLEAN NOT NULL DEFAULT TRUE,
	expires_at %[2]s NULL%[3]s
)`, table, ts, extra))
		for _, col := range []string{"request_id", "client_id", "subject", "expires_at"} {
			stmts = append(stmts, fmt.Sprintf("CREATE INDEX %[1]s_%[2]s_idx ON %[1]s (%[2]s)", table, col))
		}
	}
	stmts = append(stmts,
		fmt.Sprintf(`CREATE TABLE oauth2_jti (
	jti TEXT PRIMARY KEY,
	expires_at %s NOT NULL
)`, ts),
		"CREATE INDEX oauth2_jti_expires_at_idx ON oauth2_jti (expires_at)",
		fmt.Sprintf(`CREATE TABLE clients (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL DEFAULT '',
	secret_hash TEXT NOT NULL DEFAULT '',
	redirect_uris TEXT NOT NULL DEFAULT '[]',
	grant_types TEXT NOT NULL DEFAULT '[]',
	response_types TEXT NOT NULL DEFAULT '[]',
	scopes TEXT NOT NULL DEFAULT '[]',
	audience TEXT NOT NULL DEFAULT '[]',
	is_public BOOLEAN NOT NULL DEFAULT FALSE,
	token_endpoint_auth_method TEXT NOT NULL DEFAULT '',
	access_token_format TEXT NOT NULL DEFAULT '',
	created_at %[1]s NOT NULL,
	updated_at %[1]s NOT NULL
)`, ts),
		"CREATE INDEX clients_created_at_idx ON clients (created_at, id)",
		fmt.Sprintf(`CREATE TABLE users (
	id TEXT PRIMARY KEY,
	email TEXT NOT NULL,
	email_normalized TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	roles TEXT NOT NULL DEFAULT '[]',
	created_at %[1]s NOT NULL,
	updated_at %[1]s NOT NULL
)`, ts),
		"CREATE UNIQUE INDEX users_email_normalized_key ON users (email_normalized)",
		"CREATE INDEX users_created_at_idx ON users (created_at, id)",
		fmt.Sprintf(`CREATE TABLE signing_keys (
	kid TEXT PRIMARY KEY,
	alg TEXT NOT NULL,
	public_jwk %[2]s NOT NULL,
	sealed_private %[2]s NOT NULL,
	created_at %[1]s NOT NULL,
	retired_at %[1]s NULL,
	not_after %[1]s NULL
)`, ts, blob),
		// The backstop for rotation's compare-and-swap: at most one active key per algorithm.
		"CREATE UNIQUE INDEX signing_keys_active_alg_key ON signing_keys (alg) WHERE retired_at IS NULL",
		"CREATE INDEX signing_keys_not_after_idx ON signing_keys (not_after)",
	)
	return stmts
}

// sidTables are the token tables that record the browser session (sid) a token was issued through.
var sidTables = []string{"oauth2_access", "oauth2_refresh", "oauth2_code"}

// schemaV2 is migration 2: user profile columns, first-party clients with post-logout redirect URIs and
// allowed CORS origins (client_origins indexes every client's origins), browser sessions and the sid of the
// tokens issued through them, consents, and pending authorization challenges.
func schemaV2(dialect string) []string {
	ts := "DATETIME"
	if dialect == dialectPostgres {
		ts = "TIMESTAMPTZ"
	}
	stmts := []string{
		"ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT ''",
		"ALTER TABLE users ADD COLUMN extras TEXT NOT NULL DEFAULT '{}'",
		"ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE",
		"ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE",
		"ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE",
		"ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]'",
		"ALTER TABLE clients ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]'",
		`CREATE TABLE client_origins (
	client_id TEXT NOT NULL,
	origin TEXT NOT NULL,
	PRIMARY KEY (client_id, origin)
)`,
		"CREATE INDEX client_origins_origin_idx ON client_origins (origin)",
		fmt.Sprintf(`CREATE TABLE browser_sessions (
	id TEXT PRIMARY KEY,
	token_hash TEXT NOT NULL,
	user_id TEXT NOT NULL,
	ip TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	auth_time %[1]s NOT NULL,
	created_at %[1]s NOT NULL,
	last_active_at %[1]s NOT NULL,
	idle_expires_at %[1]s NOT NULL,
	expires_at %[1]s NOT NULL,
	ended_at %[1]s NULL
)`, ts),
		"CREATE UNIQUE INDEX browser_sessions_token_hash_key ON browser_sessions (token_hash)",
		"CREATE INDEX browser_sessions_user_id_idx ON browser_sessions (user_id, last_active_at)",
		// idle_expires_at never exceeds expires_at, so it alone says when a session expired.
		"CREATE INDEX browser_sessions_idle_expires_at_idx ON browser_sessions (idle_expires_at)",
		"CREATE INDEX browser_sessions_ended_at_idx ON browser_sessions (ended_at)",
		fmt.Sprintf(`CREATE TABLE consents (
	user_id TEXT NOT NULL,
	client_id TEXT NOT NULL,
	scopes TEXT NOT NULL DEFAULT '[]',
	created_at %[1]s NOT NULL,
	updated_at %[1]s NOT NULL,
	PRIMARY KEY (user_id, client_id)
)`, ts),
		"CREATE INDEX consents_client_id_idx ON consents (client_id)",
		fmt.Sprintf(`CREATE TABLE auth_challenges (
	id TEXT PRIMARY KEY,
	query TEXT NOT NULL,
	client_id TEXT NOT NULL DEFAULT '',
	browser_session_id TEXT NOT NULL DEFAULT '',
	login_at %[1]s NULL,
	consent_at %[1]s NULL,
	created_at %[1]s NOT NULL,
	expires_at %[1]s NOT NULL
)`, ts),
		"CREATE INDEX auth_challenges_expires_at_idx ON auth_challenges (expires_at)",
	}
	for _, table := range sidTables {
		stmts = append(stmts,
			fmt.Sprintf("ALTER TABLE %s ADD COLUMN sid TEXT NULL", table),
			fmt.Sprintf("CREATE INDEX %[1]s_sid_idx ON %[1]s (sid)", table))
	}
	return stmts
}

// backfillClientOrigins fills client_origins for the clients that existed before migration 2, from their
// redirect URIs (they had no allowed origins yet).
func backfillClientOrigins(tx *gorm.DB) error {
	var rows []clientRow
	if err := tx.Select("id", "redirect_uris").Find(&rows).Error; err != nil {
		return fmt.Errorf("backfill client origins: %w", err)
	}
	for _, r := range rows {
		uris, err := decodeList(r.RedirectURIs)
		if err != nil {
			return fmt.Errorf("backfill client origins: client %q: %w", r.ID, err)
		}
		if err := insertClientOrigins(tx, r.ID, clientOrigins(uris, nil)); err != nil {
			return fmt.Errorf("backfill client origins: client %q: %w", r.ID, err)
		}
	}
	return nil
}

// schemaV3 is migration 3: user pools (every existing user and client lands in "default"; email addresses
// become unique per pool instead of globally), clients' signup switch and OpenID Connect encryption
// settings, and the shared sign-in throttle. users_email_normalized_key was created by migration 1 as a
// plain unique index (not a table constraint) on both dialects, so DROP INDEX removes it.
func schemaV3(dialect string) []string {
	ts := "DATETIME"
	if dialect == dialectPostgres {
		ts = "TIMESTAMPTZ"
	}
	stmts := []string{
		fmt.Sprintf(`CREATE TABLE pools (
	name TEXT PRIMARY KEY,
	signup_enabled BOOLEAN NOT NULL DEFAULT FALSE,
	default_roles TEXT NOT NULL DEFAULT '[]',
	created_at %s NOT NULL
)`, ts),
		// No foreign keys to pools: SQLite cannot add a REFERENCES column with a non-NULL default. Pools are
		// never deleted, and the store checks the pool exists in the transaction that writes the user or client.
		"ALTER TABLE users ADD COLUMN pool TEXT NOT NULL DEFAULT 'default'",
		"DROP INDEX users_email_normalized_key",
		"CREATE UNIQUE INDEX users_pool_email_normalized_key ON users (pool, email_normalized)",
		"CREATE INDEX users_pool_created_at_idx ON users (pool, created_at, id)",
		"ALTER TABLE clients ADD COLUMN pool TEXT NOT NULL DEFAULT 'default'",
		"ALTER TABLE clients ADD COLUMN allow_signup BOOLEAN NOT NULL DEFAULT FALSE",
	}
	for _, col := range []string{
		"encryption_jwk", "id_token_encrypted_response_alg", "id_token_encrypted_response_enc",
		"userinfo_encrypted_response_alg", "userinfo_encrypted_response_enc",
		"access_token_encryption_jwk", "access_token_encryption_alg", "access_token_encryption_enc",
	} {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE clients ADD COLUMN %s TEXT NOT NULL DEFAULT ''", col))
	}
	return append(stmts,
		fmt.Sprintf(`CREATE TABLE login_throttle (
	key_hash TEXT PRIMARY KEY,
	failures INTEGER NOT NULL,
	last_failure_at %[1]s NOT NULL,
	blocked_until %[1]s NULL
)`, ts),
		"CREATE INDEX login_throttle_last_failure_at_idx ON login_throttle (last_failure_at)",
	)
}

// createDefaultPool creates the "default" pool, the one every existing user and client now belongs to.
// Signup is off: nobody could sign themselves up before pools existed.
func createDefaultPool(tx *gorm.DB) error {
	err := tx.Exec("INSERT INTO pools (name, signup_enabled, default_roles, created_at) VALUES (?, ?, ?, ?)",
		"default", false, "[]", dbTime(tx.NowFunc())).Error
	if err != nil {
		return fmt.Errorf("create the default pool: %w", err)
	}
	return nil
}

// schemaV4 is migration 4: admin power belongs to clients an operator marked admin (optionally limited to some
// pools; admin_pools '[]' means every pool), not to whoever holds the latchkey.admin scope.
func schemaV4() []string {
	return []string{
		"ALTER TABLE clients ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE",
		"ALTER TABLE clients ADD COLUMN admin_pools TEXT NOT NULL DEFAULT '[]'",
		// Challenges are now created per signed-in browser session, and capped per session.
		"CREATE INDEX auth_challenges_browser_session_idx ON auth_challenges (browser_session_id, created_at)",
		// Only an admin client may hold latchkey.admin (models.Client validation): every client that will not become
		// one below (confidential, client_credentials only, not first-party) loses the scope, so no grant made for a
		// user can carry it. The scopes column is a compact JSON list.
		`UPDATE clients SET scopes = REPLACE(REPLACE(REPLACE(scopes,
	',"latchkey.admin"', ''), '"latchkey.admin",', ''), '"latchkey.admin"', '')
WHERE scopes LIKE '%"latchkey.admin"%'
	AND NOT (is_public = FALSE AND first_party = FALSE AND grant_types = '["client_credentials"]')`,
	}
}

// backfillAdminClients keeps working what worked before: a confidential client that could only use client
// credentials and had the latchkey.admin scope was a backend using the admin API, so it becomes an admin of
// every pool. Any other client holding the scope loses admin power (an operator can grant it again).
func backfillAdminClients(tx *gorm.DB) error {
	err := tx.Exec(`UPDATE clients SET admin = TRUE
WHERE is_public = FALSE AND grant_types = '["client_credentials"]' AND scopes LIKE '%"latchkey.admin"%'`).Error
	if err != nil {
		return fmt.Errorf("mark existing admin clients: %w", err)
	}
	return nil
}

// schemaV5 is migration 5: a signing key starts signing at activates_at, a moment every node obeys, so a
// rotated-in key can be published for a while before it signs. retired_at now means "stops signing at" and
// may be in the future. Existing keys activated when they were created. (The column stays nullable: SQLite
// cannot add a NOT NULL column without a constant default; the store always writes it.)
func schemaV5(dialect string) []string {
	ts := "DATETIME"
	if dialect == dialectPostgres {
		ts = "TIMESTAMPTZ"
	}
	return []string{
		"ALTER TABLE signing_keys ADD COLUMN activates_at " + ts + " NULL",
		"UPDATE signing_keys SET activates_at = created_at",
	}
}

// migrateLockKey is the pg_advisory_xact_lock key that serialises migrations across nodes ("ltchkey").
const migrateLockKey int64 = 0x6c7463686b6579

// Migrate applies the migrations not yet recorded in schema_migrations, each in its own transaction. It is
// idempotent, and on PostgreSQL nodes starting at once take turns on an advisory lock.
func (s *Store) Migrate(ctx context.Context) error {
	return s.migrateTo(ctx, migrations[len(migrations)-1].version)
}

// migrateTo applies the migrations up to and including version target.
func (s *Store) migrateTo(ctx context.Context, target int) error {
	createTable := fmt.Sprintf(
		"CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at %s NOT NULL)",
		map[string]string{dialectSQLite: "DATETIME", dialectPostgres: "TIMESTAMPTZ"}[s.dialect])
	if err := s.migrationTx(ctx, func(tx *gorm.DB) error { return tx.Exec(createTable).Error }); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	latest := migrations[len(migrations)-1].version
	for _, m := range migrations {
		if m.version > target {
			break
		}
		err := s.migrationTx(ctx, func(tx *gorm.DB) error {
			var current int
			if err := tx.Raw("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current).Error; err != nil {
				return err
			}
			if current > latest {
				return fmt.Errorf("database schema version %d is newer than this build knows (%d)", current, latest)
			}
			var n int64
			if err := tx.Raw("SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range m.statements(s.dialect) {
				if err := tx.Exec(stmt).Error; err != nil {
					return fmt.Errorf("%s: %w", strings.SplitN(stmt, "\n", 2)[0], err)
				}
			}
			if m.after != nil {
				if err := m.after(tx); err != nil {
					return err
				}
			}
			return tx.Exec("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
				m.version, dbTime(s.now())).Error
		})
		if err != nil {
			return fmt.Errorf("migrate: %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

func (s *Store) migrationTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.inTx(ctx, func(tx *gorm.DB) error {
		if s.dialect == dialectPostgres {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrateLockKey).Error; err != nil {
				return fmt.Errorf("take migration lock: %w", err)
			}
		}
		return fn(tx)
	})
}

// SchemaVersion is the highest applied migration, 0 for an empty database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	db := s.conn(ctx)
	var exists bool
	var err error
	if s.dialect == dialectPostgres {
		err = db.Raw("SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists).Error
	} else {
		var n int64
		err = db.Raw("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").Scan(&n).Error
		exists = n > 0
	}
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := db.Raw("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v).Error; err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}
