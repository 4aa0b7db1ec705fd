package models_test

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"

	_ "github.com/glebarez/go-sqlite"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

func TestIsUnavailable(t *testing.T) {
	// A PostgreSQL nobody listens on: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	pg, _ := sql.Open("pgx", "postgres://postgres@"+addr+"/x?sslmode=disable&connect_timeout=2")
	defer pg.Close()
	refused := pg.Ping()

	// A SQLite file another connection holds the write lock of, with no busy timeout: SQLITE_BUSY.
	path := filepath.Join(t.TempDir(), "busy.db")
	holder, _ := sql.Open("sqlite", path)
	defer holder.Close()
	holder.SetMaxOpenConns(1)
	if _, err := holder.Exec("CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	tx, err := holder.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	other, _ := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)")
	defer other.Close()
	_, busy := other.Exec("INSERT INTO t VALUES (2)")

	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"postgres connection refused", refused, true},
		{"wrapped connection refused", fmt.Errorf("get client: %w", refused), true},
		{"sqlite busy", busy, true},
		{"not found", fosite.ErrNotFound, false},
		{"invalid input", models.ErrInvalid, false},
		{"conflict", models.ErrConflict, false},
		{"any other error", errors.New("json: cannot unmarshal"), false},
		{"nil", nil, false},
	} {
		if tc.want && tc.err == nil {
			t.Fatalf("%s: the fault did not happen", tc.name)
		}
		if got := models.IsUnavailable(tc.err); got != tc.want {
			t.Errorf("%s: IsUnavailable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
