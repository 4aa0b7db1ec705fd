package models

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"gorm.io/gorm"

	migrationfiles "github.com/latchkey/latchkey/models/migrations"
)

// migration is one numbered schema change, with the statements for each dialect, read from the frozen SQL files in
// models/migrations (see that package: a released migration is never edited; the schema changes by a new one).
type migration struct {
	version  int
	name     string
	sqlite   []string
	postgres []string
	// after, if set, runs in the migration's transaction after its statements: a frozen Go backfill
	// (migrations.Backfills), only where SQL cannot express it.
	after func(tx *gorm.DB) error
}

func (m migration) statements(dialect string) []string {
	if dialect == dialectPostgres {
		return m.postgres
	}
	return m.sqlite
}

// migrations, in order. The files are embedded, so a malformed set fails every test and every start alike.
var migrations = func() []migration {
	ms, err := loadMigrations(migrationfiles.Files, migrationfiles.Backfills)
	if err != nil {
		panic(err)
	}
	return ms
}()

// tokenTables are the tables with one row per fosite token kind, as migration 1 created them, and sidTables those
// of them that record the browser session (sid) a token was issued through (migration 2). The code names them here;
// the migrations do not read these lists (TestSchemaTableLists checks they match the migrated schema).
var (
	tokenTables = []string{"oauth2_access", "oauth2_refresh", "oauth2_code", "oauth2_pkce", "oauth2_oidc", "oauth2_par"}
	sidTables   = []string{"oauth2_access", "oauth2_refresh", "oauth2_code"}
)

// loadMigrations reads the migrations from fsys (models/migrations' layout: postgres/NNNN_name.sql and
// sqlite/NNNN_name.sql) and attaches the Go backfills. Both dialects must have the same versions with the same
// names, numbered 1, 2, 3, ... without gaps.
func loadMigrations(fsys fs.FS, backfills map[int]func(tx *gorm.DB) error) ([]migration, error) {
	var out []migration
	for _, dialect := range []string{dialectPostgres, dialectSQLite} {
		entries, err := fs.ReadDir(fsys, dialect)
		if err != nil {
			return nil, fmt.Errorf("load migrations: %w", err)
		}
		n := 0
		for _, e := range entries {
			file := path.Join(dialect, e.Name())
			base, ok := strings.CutSuffix(e.Name(), ".sql")
			num, name, ok2 := strings.Cut(base, "_")
			version, err := strconv.Atoi(num)
			if !ok || !ok2 || len(num) != 4 || err != nil || name == "" {
				return nil, fmt.Errorf("load migrations: %s is not named NNNN_name.sql", file)
			}
			if n++; version != n {
				return nil, fmt.Errorf("load migrations: %s has version %d, want %d (versions are 1, 2, 3, ...)", file, version, n)
			}
			text, err := fs.ReadFile(fsys, file)
			if err != nil {
				return nil, fmt.Errorf("load migrations: %w", err)
			}
			stmts, err := splitStatements(string(text))
			if err != nil {
				return nil, fmt.Errorf("load migrations: %s: %w", file, err)
			}
			name = strings.ReplaceAll(name, "_", " ")
			switch {
			case dialect == dialectPostgres:
				out = append(out, migration{version: version, name: name, postgres: stmts, after: backfills[version]})
			case version <= len(out) && out[version-1].name != name:
				return nil, fmt.Errorf("load migrations: version %d is %q for postgres but %q for sqlite", version, out[version-1].name, name)
			case version <= len(out):
				out[version-1].sqlite = stmts
			}
		}
		if dialect == dialectSQLite && (n != len(out) || n == 0) {
			return nil, fmt.Errorf("load migrations: %d for postgres, %d for sqlite; want the same, at least one", len(out), n)
		}
	}
	for v := range backfills {
		if v < 1 || v > len(out) {
			return nil, fmt.Errorf("load migrations: a backfill for version %d, which has no files", v)
		}
	}
	return out, nil
}

// splitStatements splits a migration file into its statements: each ends with ";" at the end of a line, and the
// lines before it that are blank or start with "--" are comments, not part of it. The statement text is exactly
// what the file holds between them (SQLite keeps it verbatim in sqlite_master).
func splitStatements(text string) ([]string, error) {
	var stmts []string
	for chunk := range strings.SplitSeq(text, ";\n") {
		lines := strings.Split(chunk, "\n")
		for len(lines) > 0 && (strings.TrimSpace(lines[0]) == "" || strings.HasPrefix(lines[0], "--")) {
			lines = lines[1:]
		}
		if len(lines) > 0 {
			stmts = append(stmts, strings.Join(lines, "\n"))
		}
	}
	if len(stmts) == 0 {
		return nil, fmt.Errorf("no statements")
	}
	if !strings.HasSuffix(text, ";\n") {
		return nil, fmt.Errorf("does not end with a statement's \";\" and a newline")
	}
	if slices.ContainsFunc(stmts, func(s string) bool { return strings.Contains(s, "\n--") }) {
		return nil, fmt.Errorf("a comment inside a statement (put comments before it)")
	}
	return stmts, nil
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
