package models

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// AuditQuery selects audit events, newest first. Zero fields do not filter.
type AuditQuery struct {
	Since, Until time.Time // occurred at or after Since, before Until
	UserID       string
	ClientID     string
	Types        []string
	// Pools limits the answer to these pools (an admin client's; nil: every pool). Pool filters by one pool.
	Pools []string
	Pool  string
	// Before is the keyset cursor: only events older than it (by time, then id), as the last page ended.
	Before *AuditCursor
	Limit  int // 1..1000; 0: 100
}

// AuditCursor is where a page of audit events ended: its last event's time and id.
type AuditCursor struct {
	Time time.Time
	ID   int64
}

// MaxAuditPage bounds one page of audit events.
const MaxAuditPage = 1000

// ListAuditEvents answers the events q selects, newest first, at most q.Limit of them. The keyset (occurred_at,
// id) makes every page one index range, however deep the pagination.
func (s *Store) ListAuditEvents(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	limit := q.Limit
	switch {
	case limit == 0:
		limit = 100
	case limit < 0 || limit > MaxAuditPage:
		return nil, fmt.Errorf("%w: limit must be between 1 and %d", ErrInvalid, MaxAuditPage)
	}
	var (
		where []string
		args  []any
	)
	add := func(cond string, a ...any) { where, args = append(where, cond), append(args, a...) }
	if !q.Since.IsZero() {
		add("occurred_at >= ?", dbTime(q.Since))
	}
	if !q.Until.IsZero() {
		add("occurred_at < ?", dbTime(q.Until))
	}
	if q.UserID != "" {
		add("user_id = ? AND user_id <> ''", q.UserID) // the second term lets SQLite use the partial index
	}
	if q.ClientID != "" {
		add("client_id = ? AND client_id <> ''", q.ClientID)
	}
	if q.Pool != "" {
		add("pool = ?", q.Pool)
	}
	if q.Pools != nil {
		add("pool IN ("+placeholders(len(q.Pools))+")", anys(q.Pools)...)
	}
	for _, t := range q.Types {
		if !slices.Contains(EventTypes, t) {
			return nil, fmt.Errorf("%w: unknown event type %q (known: %s)", ErrInvalid, t, strings.Join(EventTypes, ", "))
		}
	}
	if len(q.Types) > 0 {
		add("type IN ("+placeholders(len(q.Types))+")", anys(q.Types)...)
	}
	if q.Before != nil {
		add("(occurred_at < ? OR (occurred_at = ? AND id < ?))", dbTime(q.Before.Time), dbTime(q.Before.Time), q.Before.ID)
	}
	stmt := "SELECT id, occurred_at, type, pool, user_id, client_id, actor, ip, user_agent, request_id, reason, details FROM " + tableAudit
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	stmt += " ORDER BY occurred_at DESC, id DESC LIMIT ?"
	rows, err := s.readPool(ctx).QueryContext(ctx, s.bind(stmt), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", noteFault(ctx, mapErr(s.translate(err))))
	}
	defer rows.Close()
	out := []AuditEvent{}
	for rows.Next() {
		var (
			e       AuditEvent
			details string
		)
		if err := rows.Scan(&e.ID, &e.Time, &e.Type, &e.Pool, &e.UserID, &e.ClientID, &e.Actor, &e.IP, &e.UserAgent,
			&e.RequestID, &e.Reason, &details); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		e.Time = e.Time.UTC()
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil || e.Details == nil {
			e.Details = map[string]any{}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit events: %w", noteFault(ctx, mapErr(err)))
	}
	return out, nil
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func anys(v []string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}

// deleteOldAuditEvents is one bounded batch of retention: events that occurred before cutoff, oldest first, on
// the maintenance connection. It is the only way an audit row is ever deleted.
func (s *Store) deleteOldAuditEvents(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	q := s.deleteExpiredSQL(tableAudit, "occurred_at < ?")
	res, err := s.maintDB.ExecContext(ctx, s.bind(q), dbTime(cutoff), batch)
	if err != nil {
		return 0, fmt.Errorf("delete old audit events: %w", mapErr(s.translate(err)))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete old audit events: %w", err)
	}
	return n, nil
}
