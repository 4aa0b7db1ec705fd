package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

// The statements every token request runs (store a token, find a token) are written by hand instead of built by
// gorm: gorm's reflection and clause building cost about as much CPU as the round trip itself. The SQL text is
// fixed per table, so the PostgreSQL driver prepares each statement once per connection and reuses it.

// selectColumns is the column list findToken reads from table and, in the same order, where each lands in r.
func (r *tokenRow) selectColumns(table string) (string, []any) {
	cols := "signature, request_id, requested_at, client_id, subject, requested_scopes, granted_scopes, " +
		"requested_audience, granted_audience, form, session, active, expires_at"
	targets := []any{&r.Signature, &r.RequestID, &r.RequestedAt, &r.ClientID, &r.Subject, &r.RequestedScopes,
		&r.GrantedScopes, &r.RequestedAudience, &r.GrantedAudience, &r.Form, &r.Session, &r.Active, &r.ExpiresAt}
	switch table {
	case tableRefresh:
		cols, targets = cols+", access_token_signature, rotated_at", append(targets, &r.AccessTokenSignature, &r.RotatedAt)
	case tablePAR:
		cols, targets = cols+", authorize_params", append(targets, &r.AuthorizeParams)
	}
	return cols, targets
}

// insertToken stores a token row. If the request authenticated its client from the cache, the insert happens
// only if that client row is unchanged; otherwise nothing is written and ErrStaleClient is returned.
func (s *Store) insertToken(ctx context.Context, table, rawKey string, req fosite.Requester, kind fosite.TokenType, extra map[string]any) error {
	cols, args, err := newTokenRow(hashKey(rawKey), req, sessionExpiry(req, kind))
	if err != nil {
		return err
	}
	if slices.Contains(sidTables, table) {
		if ss, ok := req.GetSession().(sidSession); ok && ss.GetSID() != "" {
			cols, args = append(cols, "sid"), append(args, ss.GetSID())
		}
	}
	for _, k := range sortedKeys(extra) {
		cols, args = append(cols, k), append(args, extra[k])
	}
	var ev *Event
	if table == tableAccess {
		ev = tokenEvent(req)
	}
	if err := s.insertRowEvent(ctx, table, cols, args, ev); err != nil {
		return err
	}
	if table == tableCode || table == tableAccess {
		if ss, ok := req.GetSession().(sidSession); ok {
			return s.recordSessionClient(ctx, ss.GetSID(), req.GetClient(), req.GetRequestedAt())
		}
	}
	return nil
}

// insertRow inserts one row, conditionally on the cached client as insertToken describes.
func (s *Store) insertRow(ctx context.Context, table string, cols []string, args []any) error {
	return s.insertRowEvent(ctx, table, cols, args, nil)
}

// insertRowEvent is insertRow that also records ev (nil: none) if, and only if, the row is inserted. On
// PostgreSQL both are one statement (the row's INSERT in a WITH, the event inserted from what it returned): a
// client_credentials token has no transaction, and opening one would cost two round trips per token. On SQLite
// the event follows in the same transaction: the caller's, or without one a transaction shared with the other
// token writes waiting for the single writer (insertWithEventSQLite, group commit).
func (s *Store) insertRowEvent(ctx context.Context, table string, cols []string, args []any, ev *Event) error {
	check := s.unsettledCheck(ctx)
	if check != nil && check.stale {
		return ErrStaleClient
	}
	var q strings.Builder
	q.WriteString("INSERT INTO ")
	q.WriteString(table)
	q.WriteString(" (")
	q.WriteString(strings.Join(cols, ", "))
	if check == nil {
		q.WriteString(") VALUES (")
	} else {
		q.WriteString(") SELECT ")
	}
	q.WriteString(strings.Repeat("?, ", len(cols)-1))
	q.WriteString("?")
	if check == nil {
		q.WriteString(")")
	} else {
		q.WriteString(" WHERE" + clientStillSame)
		args = append(args, check.stillSameArgs()...)
	}
	stmt := q.String()
	if ev != nil && s.dialect != dialectPostgres {
		if _, inTx := ctx.Value(txKey{s}).(*gorm.DB); !inTx {
			inserted, err := s.insertWithEventSQLite(ctx, stmt, args, check, ev)
			if err != nil || check == nil {
				return err
			}
			return check.settle(inserted)
		}
	}
	if ev != nil && s.dialect == dialectPostgres {
		evArgs, poolSQL := auditArgs(ctx, *ev, s.now())
		stmt = "WITH t AS (" + stmt + " RETURNING 1) INSERT INTO " + tableAudit + " (" + auditColumns +
			") SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " + poolSQL + " FROM t"
		args = append(args, evArgs...)
	}

	res, err := s.pool(ctx).ExecContext(ctx, s.bind(stmt), args...)
	if err != nil {
		return insertError(s.translate(err))
	}
	inserted := true
	if check != nil {
		if inserted, err = settleInsert(check, res); err != nil {
			return err
		}
	}
	if ev != nil && inserted && s.dialect != dialectPostgres {
		return recordEvent(ctx, s.conn(ctx), *ev)
	}
	return nil
}

// insertError is what a failed token insert answers: ErrConflict for a duplicate key.
func insertError(err error) error {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return mapErr(err)
}

// settleInsert settles a cached client's check by whether the conditional insert wrote its row.
func settleInsert(check *ClientCheck, res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert token: %w", err)
	}
	return n == 1, check.settle(n == 1)
}

// findToken reads one token row by its raw key. If the request authenticated its client from the cache, the
// lookup also confirms that client row; a miss then tells "no such token" from "the client changed".
func (s *Store) findToken(ctx context.Context, table, rawKey string) (*tokenRow, error) {
	var row tokenRow
	cols, targets := row.selectColumns(table)
	q := "SELECT " + cols + " FROM " + table + " WHERE signature = ?"
	args := []any{hashKey(rawKey)}
	check := s.unsettledCheck(ctx)
	if check != nil && check.stale {
		return nil, ErrStaleClient
	}
	if check != nil {
		q += " AND" + clientStillSame
		args = append(args, check.stillSameArgs()...)
	}
	err := noteFault(ctx, s.readPool(ctx).QueryRowContext(ctx, s.bind(q), args...).Scan(targets...))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if check != nil {
			if err := check.confirm(ctx); err != nil {
				return nil, err
			}
		}
		return nil, ErrNotFound
	case err != nil:
		return nil, mapErr(s.translate(err))
	}
	if check != nil {
		_ = check.settle(true)
	}
	return &row, nil
}

// pool is the transaction in ctx, or the connection pool.
func (s *Store) pool(ctx context.Context) gorm.ConnPool {
	return s.conn(ctx).Statement.ConnPool
}

// readPool is the transaction in ctx, or the read pool.
func (s *Store) readPool(ctx context.Context) gorm.ConnPool {
	if tx, ok := ctx.Value(txKey{s}).(*gorm.DB); ok {
		return tx.Statement.ConnPool
	}
	return s.readDB
}

// translate maps a driver error to gorm's portable errors (duplicate key, foreign key), as gorm does for its own
// statements.
func (s *Store) translate(err error) error {
	if t, ok := s.db.Dialector.(gorm.ErrorTranslator); ok {
		return t.Translate(err)
	}
	return err
}

// boundSQL caches hand-written SQL rewritten for the dialect's placeholders.
var boundSQL sync.Map // string → string

// bind rewrites ? placeholders to PostgreSQL's $1, $2, ...; SQLite takes ? as written. None of the hand-written
// statements has a ? inside a string literal.
func (s *Store) bind(q string) string { return bindSQL(s.dialect, q) }

// bindSQL is bind for a dialect by name (gorm's Dialector.Name, which is ours).
func bindSQL(dialect, q string) string {
	if dialect != dialectPostgres {
		return q
	}
	if b, ok := boundSQL.Load(q); ok {
		return b.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	boundSQL.Store(q, b.String())
	return b.String()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
