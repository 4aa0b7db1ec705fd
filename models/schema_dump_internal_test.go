package models

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// SchemaDump describes the database's schema as text, one fact per line, in a fixed order: every table with its
// columns (position, type, nullability, default), its constraints and indexes (name, columns, uniqueness, partial
// predicate) and, on SQLite, the CREATE text SQLite keeps. Two databases built alike dump the same text, so tests
// compare dumps to compare schemas. On SQLite it reads sqlite_master, pragma_table_info, pragma_index_list and
// pragma_index_info; on PostgreSQL information_schema and pg_indexes of the current schema (whose name is left
// out, so dumps of different test schemas compare equal).
func (s *Store) SchemaDump(ctx context.Context) (string, error) {
	if s.dialect == dialectPostgres {
		return s.postgresSchemaDump(ctx)
	}
	return s.sqliteSchemaDump(ctx)
}

func (s *Store) sqliteSchemaDump(ctx context.Context) (string, error) {
	var b strings.Builder
	tables, err := s.dumpQuery(ctx, `SELECT name, sql FROM sqlite_master
		WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return "", err
	}
	for _, t := range tables {
		fmt.Fprintf(&b, "table %s\n\tsql %q\n", t[0], t[1])
		cols, err := s.dumpQuery(ctx, `SELECT cid, name, type, "notnull", dflt_value, pk
			FROM pragma_table_info(?) ORDER BY cid`, t[0])
		if err != nil {
			return "", err
		}
		for _, c := range cols {
			fmt.Fprintf(&b, "\tcolumn %s %s type=%s notnull=%s default=%s pk=%s\n", c[0], c[1], c[2], c[3], c[4], c[5])
		}
		idxs, err := s.dumpQuery(ctx, `SELECT l.name, l."unique", l.origin, l.partial, COALESCE(m.sql, 'NULL')
			FROM pragma_index_list(?) AS l LEFT JOIN sqlite_master AS m ON m.type = 'index' AND m.name = l.name
			ORDER BY l.name`, t[0])
		if err != nil {
			return "", err
		}
		for _, ix := range idxs {
			cols, err := s.dumpQuery(ctx, `SELECT COALESCE(name, 'expr') FROM pragma_index_info(?) ORDER BY seqno`, ix[0])
			if err != nil {
				return "", err
			}
			names := make([]string, len(cols))
			for i, c := range cols {
				names[i] = c[0]
			}
			fmt.Fprintf(&b, "\tindex %s (%s) unique=%s origin=%s partial=%s sql=%q\n",
				ix[0], strings.Join(names, ", "), ix[1], ix[2], ix[3], ix[4])
		}
	}
	return b.String(), nil
}

func (s *Store) postgresSchemaDump(ctx context.Context) (string, error) {
	var b strings.Builder
	schema, err := s.dumpQuery(ctx, "SELECT current_schema()")
	if err != nil {
		return "", err
	}
	prefix := schema[0][0] + "."
	tables, err := s.dumpQuery(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		return "", err
	}
	for _, t := range tables {
		fmt.Fprintf(&b, "table %s\n", t[0])
		cols, err := s.dumpQuery(ctx, `SELECT ordinal_position, column_name, data_type, is_nullable, column_default
			FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?
			ORDER BY ordinal_position`, t[0])
		if err != nil {
			return "", err
		}
		for _, c := range cols {
			fmt.Fprintf(&b, "\tcolumn %s %s type=%s nullable=%s default=%s\n", c[0], c[1], c[2], c[3], c[4])
		}
		cons, err := s.dumpQuery(ctx, `SELECT c.conname, c.contype, pg_get_constraintdef(c.oid)
			FROM pg_constraint AS c JOIN pg_class AS r ON r.oid = c.conrelid
			WHERE r.relnamespace = current_schema()::regnamespace AND r.relname = ? ORDER BY c.conname`, t[0])
		if err != nil {
			return "", err
		}
		for _, c := range cons {
			fmt.Fprintf(&b, "\tconstraint %s type=%s %s\n", c[0], c[1], c[2])
		}
		idxs, err := s.dumpQuery(ctx, `SELECT indexname, indexdef FROM pg_indexes
			WHERE schemaname = current_schema() AND tablename = ? ORDER BY indexname`, t[0])
		if err != nil {
			return "", err
		}
		for _, ix := range idxs {
			fmt.Fprintf(&b, "\tindex %s %s\n", ix[0], strings.ReplaceAll(ix[1], " ON "+prefix, " ON "))
		}
	}
	return b.String(), nil
}

// dumpQuery runs a query and returns its rows as text, NULL as "NULL".
func (s *Store) dumpQuery(ctx context.Context, query string, args ...any) ([][]string, error) {
	rows, err := s.conn(ctx).Raw(query, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("schema dump: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("schema dump: %w", err)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("schema dump: %w", err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = "NULL"
			if v.Valid {
				row[i] = v.String
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("schema dump: %w", err)
	}
	return out, nil
}
