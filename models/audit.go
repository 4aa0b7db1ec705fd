package models

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/reqmeta"
)

// The audit log's event types: a stable catalog (README, "Audit log"), also the names webhooks subscribe to.
const (
	EventSignedIn        = "user.signed_in"
	EventSignInFailed    = "user.sign_in_failed"
	EventUserCreated     = "user.created"
	EventUserUpdated     = "user.updated"
	EventUserDeleted     = "user.deleted"
	EventPasswordChanged = "user.password_changed"
	EventPasswordReset   = "user.password_reset"
	EventEmailVerified   = "user.email_verified"
	EventMFAEnrolled     = "mfa.enrolled"
	EventMFARemoved      = "mfa.removed"
	EventMFAReset        = "mfa.reset"
	EventTokenIssued     = "token.issued"
	EventTokenRefreshed  = "token.refreshed"
	EventTokenRevoked    = "token.revoked"
	EventSessionStarted  = "session.started"
	EventSessionEnded    = "session.ended"
	EventConsentGranted  = "consent.granted"
	EventClientCreated   = "client.created"
	EventClientUpdated   = "client.updated"
	EventClientDeleted   = "client.deleted"
	EventSecretRotated   = "client.secret_rotated"
	EventKeyRotated      = "key.rotated"
	EventPoolCreated     = "pool.created"
	EventPoolUpdated     = "pool.updated"
	EventWebhookCreated  = "webhook.created"
	EventWebhookUpdated  = "webhook.updated"
	EventWebhookDeleted  = "webhook.deleted"
	EventWebhookRotated  = "webhook.secret_rotated"
)

// EventTypes is the whole catalog, in the README's order.
var EventTypes = []string{
	EventSignedIn, EventSignInFailed, EventUserCreated, EventUserUpdated, EventUserDeleted, EventPasswordChanged,
	EventPasswordReset, EventEmailVerified, EventMFAEnrolled, EventMFARemoved, EventMFAReset, EventTokenIssued,
	EventTokenRefreshed, EventTokenRevoked, EventSessionStarted, EventSessionEnded, EventConsentGranted,
	EventClientCreated, EventClientUpdated, EventClientDeleted, EventSecretRotated, EventKeyRotated, EventPoolCreated,
	EventPoolUpdated, EventWebhookCreated, EventWebhookUpdated, EventWebhookDeleted, EventWebhookRotated,
}

// Sign-in failure reasons (Event.Reason of EventSignInFailed).
const (
	ReasonUnknownUser      = "unknown_user"
	ReasonWrongPassword    = "wrong_password"
	ReasonDisabled         = "disabled"
	ReasonEmailNotVerified = "email_not_verified"
	ReasonThrottled        = "throttled"
)

// Event is one auth event as a change records it. The request's metadata (IP, user agent, request id, actor)
// comes from the context (package reqmeta), the time from the store's clock. Details never hold a secret: no
// token, password, hash, sealed secret or key.
type Event struct {
	Type     string
	Pool     string // "": the user's pool, else the client's
	UserID   string
	ClientID string
	Reason   string
	Details  map[string]any
	// detailsJSON is Details already encoded (the token path's, from a cache), used instead when set.
	detailsJSON string
}

// AuditEvent is one stored audit row.
type AuditEvent struct {
	ID        int64          `json:"id"`
	Time      time.Time      `json:"time"`
	Type      string         `json:"type"`
	Pool      string         `json:"pool"`
	UserID    string         `json:"user_id"`
	ClientID  string         `json:"client_id"`
	Actor     string         `json:"actor"`
	IP        string         `json:"ip"`
	UserAgent string         `json:"user_agent"`
	RequestID string         `json:"request_id"`
	Reason    string         `json:"reason"`
	Details   map[string]any `json:"details"`
}

const tableAudit = "audit_events"

// auditColumns are the columns an event row is written with, in auditArgs's order (pool last: it may be a
// subquery).
const auditColumns = "occurred_at, type, user_id, client_id, actor, ip, user_agent, request_id, reason, details, pool"

// auditArgs are the values of ev's row, in auditColumns's order, and the SQL of its pool: a placeholder for the
// given pool, or the user's (else the client's) as stored.
func auditArgs(ctx context.Context, ev Event, now time.Time) (args []any, poolSQL string) {
	m := reqmeta.From(ctx)
	if m == (reqmeta.Meta{}) {
		m.Actor = "system" // no request, no command: a background job (key rotation, say)
	}
	details := ev.detailsJSON
	if details == "" {
		details = "{}"
		if len(ev.Details) > 0 {
			if b, err := json.Marshal(ev.Details); err == nil {
				details = string(b)
			}
		}
	}
	args = []any{dbTime(now), ev.Type, ev.UserID, ev.ClientID, auditText(m.Actor, 200), auditText(m.IP, maxIPBytes),
		auditText(m.UserAgent, maxUserAgentBytes), auditText(m.RequestID, 100), ev.Reason, auditText(details, 64<<10)}
	switch {
	case ev.Pool != "" || (ev.UserID == "" && ev.ClientID == ""):
		return append(args, ev.Pool), "?"
	case ev.UserID != "":
		return append(args, ev.UserID), "COALESCE((SELECT pool FROM users WHERE id = ?), '')"
	default:
		return append(args, ev.ClientID), "COALESCE((SELECT pool FROM clients WHERE id = ?), '')"
	}
}

// auditInsertSQL is the statement recordEvent writes an event with.
func auditInsertSQL(poolSQL string) string {
	return "INSERT INTO " + tableAudit + " (" + auditColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " + poolSQL + ")"
}

// auditText makes request-supplied text storable (a user agent is whatever the client sent): valid UTF-8
// without NUL bytes, at most max bytes. An event is never refused for its metadata.
func auditText(s string, max int) string {
	if !storableText(s) {
		s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	}
	return clip(s, max)
}

// recordEvent writes ev in tx, the transaction that makes the change it records, so the event and its change
// commit or roll back together. It is the one way an event is written, but for access tokens: insertRowEvent
// writes their event, built by the same auditArgs, in the token's own statement (PostgreSQL) or transaction
// (SQLite), to keep a token one round trip. An event without a change (a failed sign-in) passes the pool as tx.
// An event webhooks may subscribe to is also fanned out to them here (webhookFor), in the same transaction.
func recordEvent(ctx context.Context, tx *gorm.DB, ev Event) error {
	now := tx.Config.NowFunc()
	args, poolSQL := auditArgs(ctx, ev, now)
	if _, err := tx.Statement.ConnPool.ExecContext(ctx, bindSQL(tx.Dialector.Name(), auditInsertSQL(poolSQL)), args...); err != nil {
		return fmt.Errorf("record %s event: %w", ev.Type, mapErr(err))
	}
	if wh, ok := webhookFor(ev, now); ok {
		return fanOutWebhooks(tx, wh, now)
	}
	return nil
}

// recordEvents writes one event per entry of evs in tx.
func recordEvents(ctx context.Context, tx *gorm.DB, evs []Event) error {
	for _, ev := range evs {
		if err := recordEvent(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}

// txContext is the context a transaction was started with, for the functions that receive only tx.
func txContext(tx *gorm.DB) context.Context {
	if tx.Statement != nil && tx.Statement.Context != nil {
		return tx.Statement.Context
	}
	return context.Background()
}

// RecordSignInRefused records a sign-in attempt refused before any password was checked (the throttle's
// refusal, ReasonThrottled): a standalone event, since nothing changed for it to ride on.
func (s *Store) RecordSignInRefused(ctx context.Context, pool, email, reason string) error {
	return recordEvent(ctx, s.conn(ctx), Event{Type: EventSignInFailed, Pool: poolOrDefault(pool), Reason: reason,
		Details: map[string]any{"email": normalizeEmail(email)}})
}

// signInFailed records a checked sign-in attempt that failed, standalone (there is no change to ride on), and
// answers failure: the attempt's own error, or the recording's, so a failure is never silently unrecorded.
func (s *Store) signInFailed(ctx context.Context, pool, email, userID, reason string, failure error) error {
	ev := Event{Type: EventSignInFailed, Pool: poolOrDefault(pool), UserID: userID, Reason: reason,
		Details: map[string]any{"email": normalizeEmail(email)}}
	if err := recordEvent(ctx, s.conn(ctx), ev); err != nil {
		return fmt.Errorf("authenticate: %w", noteFault(ctx, err))
	}
	return failure
}
