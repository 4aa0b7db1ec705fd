package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrBackupUnsupported: the database is PostgreSQL, which its own tools back up (pg_dump, or the server's base
// backups and WAL archiving).
var ErrBackupUnsupported = errors.New("online backup is for SQLite databases; back up PostgreSQL with pg_dump or its base backups")

// BackupTo writes a consistent copy of a SQLite database to path while it is in use, with SQLite's VACUUM INTO:
// one read transaction, so the copy is the database as of one moment, whatever is written meanwhile, and it has
// no -wal file to go with it. The copy is written beside path and renamed into place, so path is either the old
// file or a complete copy, never half of one; it is readable by its owner only (it holds password hashes and
// sealed keys). It refuses to replace an existing file unless replace is set.
func (s *Store) BackupTo(ctx context.Context, path string, replace bool) (int64, error) {
	if s.dialect != dialectSQLite {
		return 0, ErrBackupUnsupported
	}
	if !replace {
		if _, err := os.Stat(path); err == nil {
			return 0, fmt.Errorf("backup: %s exists (replace it with --force)", path)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	name := tmp.Name()
	_ = tmp.Close()
	_ = os.Remove(name) // VACUUM INTO writes a file that must not exist yet
	defer os.Remove(name)
	// A connection of its own: the read pool is query_only, which refuses VACUUM INTO, and the writer's one
	// connection would hold up every write for as long as the copy takes. In WAL mode this one reads while the
	// writer goes on writing.
	conn, err := s.backupConn()
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "VACUUM INTO ?", name); err != nil {
		return 0, fmt.Errorf("backup: copy the database: %w", mapErr(err))
	}
	if err := os.Chmod(name, 0o600); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	info, err := os.Stat(name)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(name, path); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return info.Size(), nil
}

func (s *Store) backupConn() (*sql.DB, error) {
	if s.sqliteDSN == "" {
		return nil, errors.New("an in-memory database has nothing to back up")
	}
	db, err := sql.Open(sqliteDriverName, s.sqliteDSN)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}
