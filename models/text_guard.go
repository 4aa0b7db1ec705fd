package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"
)

// PostgreSQL's text cannot hold a NUL byte or bytes that are not UTF-8: a statement carrying either fails (SQLSTATE
// 22021), and every caller's input that reached a query that way (an email, a client id, a user or session id)
// came back as a 500. Instead of a check in every method, every statement passes through guardedPool, which
// refuses such text before the database sees it, on both databases so they answer alike:
//   - a read finds nothing, since no stored value can equal it (Take: not found; Find: empty; Count: 0);
//   - a write is ErrInvalid, and nothing is written.
//
// Only string arguments are checked: []byte goes to BYTEA/BLOB columns, which hold any bytes.

// errUnstorableText is what a write carrying such text gets.
var errUnstorableText = fmt.Errorf("%w: text contains a NUL byte or is not valid UTF-8", ErrInvalid)

// storableText reports whether s can be stored as text: valid UTF-8 without NUL bytes.
func storableText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

func unstorableArgs(args []any) bool {
	for _, a := range args {
		switch v := a.(type) {
		case string:
			if !storableText(v) {
				return true
			}
		case *string:
			if v != nil && !storableText(*v) {
				return true
			}
		}
	}
	return false
}

// readOnly reports whether query is a SELECT (the only reads the store sends).
func readOnly(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	return len(q) >= 6 && strings.EqualFold(q[:6], "SELECT")
}

// noRows is what a read with unstorable text runs instead: a statement that returns no rows, so the caller's
// scanning sees an ordinary empty result.
const noRows = "SELECT 1 WHERE 1 = 0"

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func guardedExec(ctx context.Context, q queryer, query string, args []any) (sql.Result, error) {
	if unstorableArgs(args) {
		if readOnly(query) {
			return driver.RowsAffected(0), nil
		}
		return nil, errUnstorableText
	}
	res, err := q.ExecContext(ctx, query, args...)
	return res, noteFault(ctx, err)
}

func guardedQuery(ctx context.Context, q queryer, query string, args []any) (*sql.Rows, error) {
	if unstorableArgs(args) {
		if readOnly(query) {
			return q.QueryContext(ctx, noRows)
		}
		return nil, errUnstorableText // INSERT ... RETURNING
	}
	rows, err := q.QueryContext(ctx, query, args...)
	return rows, noteFault(ctx, err)
}

// guardedQueryRow answers no row for unstorable text: a *sql.Row cannot carry an error of ours, and only reads
// use it (a write sent this way would write nothing either).
func guardedQueryRow(ctx context.Context, q queryer, query string, args []any) *sql.Row {
	if unstorableArgs(args) {
		return q.QueryRowContext(ctx, noRows)
	}
	return q.QueryRowContext(ctx, query, args...)
}

// guardedPool is the gorm connection pool: the *sql.DB behind the text check. It must not have Commit or
// Rollback, or gorm would take it for a transaction.
type guardedPool struct{ db *sql.DB }

var (
	_ gorm.ConnPool         = (*guardedPool)(nil)
	_ gorm.ConnPoolBeginner = (*guardedPool)(nil)
	_ gorm.GetDBConnector   = (*guardedPool)(nil)
	_ gorm.Tx               = (*guardedTx)(nil)
	_ gorm.GetDBConnector   = (*guardedTx)(nil)
)

func (p *guardedPool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return p.db.PrepareContext(ctx, query)
}

func (p *guardedPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return guardedExec(ctx, p.db, query, args)
}

func (p *guardedPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return guardedQuery(ctx, p.db, query, args)
}

func (p *guardedPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return guardedQueryRow(ctx, p.db, query, args)
}

func (p *guardedPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	tx, err := p.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, noteFault(ctx, err)
	}
	return &guardedTx{Tx: tx, db: p.db}, nil
}

func (p *guardedPool) GetDBConn() (*sql.DB, error) { return p.db, nil }

// guardedTx is a transaction behind the same check. A pointer, because gorm tests its committer with IsNil.
type guardedTx struct {
	*sql.Tx
	db *sql.DB
}

func (t *guardedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return guardedExec(ctx, t.Tx, query, args)
}

func (t *guardedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return guardedQuery(ctx, t.Tx, query, args)
}

func (t *guardedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return guardedQueryRow(ctx, t.Tx, query, args)
}

func (t *guardedTx) GetDBConn() (*sql.DB, error) { return t.db, nil }
