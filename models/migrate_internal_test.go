package models

import (
	"context"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"gorm.io/gorm"
)

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	noop := func(*gorm.DB) error { return nil }
	good := fstest.MapFS{
		"postgres/0001_first.sql":  file("-- Frozen.\n\n-- Why.\nCREATE TABLE a (\n\tx TIMESTAMPTZ\n);\nCREATE INDEX a_x ON a (x);\n"),
		"postgres/0002_second.sql": file("UPDATE a SET x = NULL;\n"),
		"sqlite/0001_first.sql":    file("CREATE TABLE a (\n\tx DATETIME\n);\n\n-- Why.\nCREATE INDEX a_x ON a (x);\n"),
		"sqlite/0002_second.sql":   file("UPDATE a SET x = NULL;\n"),
	}
	ms, err := loadMigrations(good, map[int]func(*gorm.DB) error{2: noop})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].version != 1 || ms[0].name != "first" || ms[1].version != 2 || ms[1].name != "second" ||
		ms[0].after != nil || ms[1].after == nil {
		t.Fatalf("loaded %+v", ms)
	}
	if want := []string{"CREATE TABLE a (\n\tx TIMESTAMPTZ\n)", "CREATE INDEX a_x ON a (x)"}; !slices.Equal(ms[0].postgres, want) {
		t.Errorf("postgres statements %q, want %q", ms[0].postgres, want)
	}
	if want := []string{"CREATE TABLE a (\n\tx DATETIME\n)", "CREATE INDEX a_x ON a (x)"}; !slices.Equal(ms[0].sqlite, want) {
		t.Errorf("sqlite statements %q, want %q", ms[0].sqlite, want)
	}

	without := func(fsys fstest.MapFS, drop string, add map[string]string) fstest.MapFS {
		out := fstest.MapFS{}
		for k, v := range fsys {
			if k != drop {
				out[k] = v
			}
		}
		for k, v := range add {
			out[k] = file(v)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		fsys      fstest.MapFS
		backfills map[int]func(*gorm.DB) error
		want      string
	}{
		{"a dialect lacks a version", without(good, "sqlite/0002_second.sql", nil), nil, "2 for postgres, 1 for sqlite"},
		{"a gap in the versions", without(good, "postgres/0002_second.sql", map[string]string{"postgres/0003_second.sql": "SELECT 1;\n"}), nil, "want 2"},
		{"the dialects name a version differently", without(good, "sqlite/0002_second.sql", map[string]string{"sqlite/0002_other.sql": "SELECT 1;\n"}), nil, `"second" for postgres but "other"`},
		{"a file named without a version", without(good, "", map[string]string{"sqlite/notes.sql": "SELECT 1;\n"}), nil, "not named NNNN_name.sql"},
		{"a file without statements", without(good, "sqlite/0002_second.sql", map[string]string{"sqlite/0002_second.sql": "-- nothing\n"}), nil, "no statements"},
		{"a statement without its semicolon", without(good, "sqlite/0002_second.sql", map[string]string{"sqlite/0002_second.sql": "UPDATE a SET x = NULL\n"}), nil, "does not end"},
		{"a comment inside a statement", without(good, "sqlite/0002_second.sql", map[string]string{"sqlite/0002_second.sql": "UPDATE a\n-- no\nSET x = NULL;\n"}), nil, "comment inside"},
		{"a backfill without files", good, map[int]func(*gorm.DB) error{3: noop}, "backfill for version 3"},
		{"sqlite has a version postgres lacks", without(good, "", map[string]string{"sqlite/0003_third.sql": "SELECT 1;\n"}), nil, "2 for postgres, 3 for sqlite"},
		{"no migrations at all", fstest.MapFS{"postgres": {Mode: fs.ModeDir}, "sqlite": {Mode: fs.ModeDir}}, nil, "0 for postgres, 0 for sqlite"},
		{"a dialect's directory is missing", fstest.MapFS{"sqlite/0001_first.sql": good["sqlite/0001_first.sql"]}, nil, "file does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := loadMigrations(tc.fsys, tc.backfills); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("loadMigrations = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestSchemaTableLists: the code's lists of token tables and of token tables with a sid column are exactly the
// tables of the migrated schema that have those shapes, so the lists cannot drift from the frozen migrations.
func TestSchemaTableLists(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "lk.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tables, err := s.dumpQuery(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	tokenShape := []string{"signature", "request_id", "requested_at", "client_id", "subject", "requested_scopes",
		"granted_scopes", "requested_audience", "granted_audience", "form", "session", "active", "expires_at"}
	var tokens, sids []string
	for _, tbl := range tables {
		cols, err := s.dumpQuery(ctx, "SELECT name FROM pragma_table_info(?) ORDER BY cid", tbl[0])
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c[0]
		}
		if len(names) >= len(tokenShape) && slices.Equal(names[:len(tokenShape)], tokenShape) {
			tokens = append(tokens, tbl[0])
			if slices.Contains(names, "sid") {
				sids = append(sids, tbl[0])
			}
		}
	}
	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	if !slices.Equal(tokens, sorted(tokenTables)) {
		t.Errorf("tables with the token row shape %v; tokenTables %v", tokens, tokenTables)
	}
	if !slices.Equal(sids, sorted(sidTables)) {
		t.Errorf("token tables with a sid column %v; sidTables %v", sids, sidTables)
	}
}
