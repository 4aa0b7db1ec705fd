package models

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// expiringTables are the tables DeleteExpiredRound sweeps: table, the condition for a row to go
// (each ? is bound to the cutoff), and how long past `before` rows are kept (cutoff = before - keep). When
// keeps is set, the i-th ? is bound to before - keeps[i] instead.
var expiringTables = []struct {
	table, expired string
	keep           time.Duration
	keeps          []time.Duration
}{
	{tableAccess, "expires_at < ?", 0, nil},
	{tableRefresh, "expires_at < ?", 0, nil},
	{tableCode, "expires_at < ?", 0, nil},
	{tablePKCE, "expires_at < ?", 0, nil},
	{tableOIDC, "expires_at < ?", 0, nil},
	{tablePAR, "expires_at < ?", 0, nil},
	{"oauth2_jti", "expires_at < ?", 0, nil},
	{"signing_keys", "not_after < ?", 0, nil},
	{"auth_challenges", "expires_at < ?", 0, nil},
	{"registration_initial_tokens", "expires_at < ?", 0, nil},
	{"device_authorizations", "expires_at < ?", 0, nil},
	{"mfa_challenges", "expires_at < ?", 0, nil},
	{"webauthn_ceremonies", "expires_at < ?", 0, nil},
	{"upstream_logins", "expires_at < ?", 0, nil},
	{"mail_tokens", "expires_at < ?", 0, nil},
	// A session expires when idle_expires_at passes (it never exceeds expires_at).
	{"browser_sessions", "ended_at < ? OR idle_expires_at < ?", browserSessionRetention, nil},
	// An outbox message goes a while after it was delivered or given up on.
	{"outbox", "delivered_at < ? OR dead_at < ?", outboxRetention, nil},
	// A throttle row goes a day after its last failure, once its block has passed too.
	{"login_throttle", "last_failure_at < ? AND (blocked_until IS NULL OR blocked_until < ?)", 0,
		[]time.Duration{throttleRetention, 0}},
}

// DefaultCleanupBatch is the batch DeleteExpiredRound is best called with here. On PostgreSQL a delete holds only
// the expired rows it takes (a request touching those waits for the statement), so batches are large. On SQLite
// each statement holds the single writer that token requests queue for, so the batch sets how much their p99
// rises while a backlog drains (docs/PERFORMANCE.md, "Figures behind the code").
func (s *Store) DefaultCleanupBatch() int {
	if s.dialect == dialectPostgres {
		return 5000
	}
	return 1000
}

// DeleteExpiredRound is one round of cleanup: it deletes at most batch rows from each of the named tables (nil:
// every table it sweeps) whose expiry is before `before` (rows without an expiry never expire; signing keys go
// when their not_after has passed; browser sessions go 7 days after they ended or expired; sign-in throttle rows
// go 24 hours after their last failure, once their block has passed; audit events go once older than
// Options.AuditRetention). Each delete is one bounded statement, so
// it holds locks briefly. It runs on the store's maintenance connection, never in the caller's transaction.
// It returns the total deleted and the tables a full batch was deleted from, the only ones that may still hold
// rows expired before `before`: a caller draining a backlog passes those to the next round, so a backlog in one
// table costs one statement per round rather than one per table (on SQLite each statement queues for the single
// writer).
func (s *Store) DeleteExpiredRound(ctx context.Context, before time.Time, batch int, tables []string) (deleted int64, more []string, err error) {
	if batch <= 0 {
		return 0, nil, errors.New("delete expired: batch must be positive")
	}
	for _, t := range expiringTables {
		if tables != nil && !slices.Contains(tables, t.table) {
			continue
		}
		q := s.deleteExpiredSQL(t.table, t.expired)
		args := make([]any, 0, 3)
		for i := range strings.Count(t.expired, "?") {
			keep := t.keep
			if t.keeps != nil {
				keep = t.keeps[i]
			}
			args = append(args, dbTime(before.Add(-keep)))
		}
		res, err := s.maintDB.ExecContext(ctx, s.bind(q), append(args, batch)...)
		if err != nil {
			return deleted, more, fmt.Errorf("delete expired %s: %w", t.table, mapErr(s.translate(err)))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return deleted, more, fmt.Errorf("delete expired %s: %w", t.table, err)
		}
		deleted += n
		if n >= int64(batch) {
			more = append(more, t.table)
		}
	}
	if s.auditRetention > 0 && (tables == nil || slices.Contains(tables, tableAudit)) {
		n, err := s.deleteOldAuditEvents(ctx, before.Add(-s.auditRetention), batch)
		if err != nil {
			return deleted, more, err
		}
		deleted += n
		if n >= int64(batch) {
			more = append(more, tableAudit)
		}
	}
	return deleted, more, nil
}

// deleteExpiredSQL is one bounded delete of expired rows. When the condition is a single "column < ?" the
// batch is taken in that column's order, so the planner walks the expiry index instead of scanning the table
// from its start again for every batch (past rows a previous batch deleted but vacuum has not yet removed:
// with millions of expired rows that made each batch slower than the last). Rows are addressed by their
// physical id (PostgreSQL ctid, SQLite rowid), which spares a primary-key lookup per row. On PostgreSQL every
// node cleans: SKIP LOCKED lets nodes cleaning at once take different rows instead of queueing on each other's
// locks.
func (s *Store) deleteExpiredSQL(table, expired string) string {
	order := ""
	if col, ok := strings.CutSuffix(expired, " < ?"); ok && !strings.ContainsAny(col, " ()") {
		order = " ORDER BY " + col
	}
	if s.dialect == dialectPostgres {
		return fmt.Sprintf("DELETE FROM %[1]s WHERE ctid = ANY(ARRAY(SELECT ctid FROM %[1]s WHERE %[2]s%[3]s LIMIT ? FOR UPDATE SKIP LOCKED))",
			table, expired, order)
	}
	return fmt.Sprintf("DELETE FROM %[1]s WHERE rowid IN (SELECT rowid FROM %[1]s WHERE %[2]s%[3]s LIMIT ?)", table, expired, order)
}
