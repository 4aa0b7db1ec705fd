package models

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// The outbox is the one durable queue of messages to other parties (back-channel logout, mail, webhooks): a
// message is enqueued in the transaction that causes it, so it exists exactly when its cause committed, and
// workers on any node deliver it (package outbox). A worker claims due rows with a lease: the claim is one
// statement, so two nodes never hold the same row at once; a node that dies mid-delivery leaves a lease that
// runs out, and the row is claimed again. Messages with the same order key (a webhook's deliveries about one
// user) go one at a time, in the order they were enqueued: a message is not claimed while an earlier one with
// its key is neither delivered nor dead. A dead message stops blocking its successors (it stays visible, and
// RequeueOutbox sends it again, after them).

// Outbox message kinds.
const (
	// OutboxBackchannelLogout: a logout token to POST to a client's backchannel_logout_uri (Target); the
	// payload is a BackchannelLogout.
	OutboxBackchannelLogout = "backchannel_logout"
)

// outboxRetention is how long a delivered or dead message is kept (for the record) before cleanup removes it.
const outboxRetention = 7 * 24 * time.Hour

// maxOutboxError bounds the last error recorded on a message.
const maxOutboxError = 500

// OutboxMessage is one message of the outbox.
type OutboxMessage struct {
	ID            string          `json:"id"` // "obx_" + 26 base32 characters
	Kind          string          `json:"kind"`
	Target        string          `json:"target"`  // where it goes (a URL for the HTTP kinds)
	Payload       json.RawMessage `json:"payload"` // what the kind's sender needs, as JSON
	Attempts      int             `json:"attempts"`
	NextAttemptAt time.Time       `json:"next_attempt_at"`
	LeaseUntil    *time.Time      `json:"lease_until,omitempty"`
	LeasedBy      string          `json:"leased_by,omitempty"`
	LastError     string          `json:"last_error,omitempty"`
	OrderKey      string          `json:"order_key,omitempty"` // "" for none
	Seq           int64           `json:"seq"`                 // enqueue order (PostgreSQL: seq; SQLite: rowid)
	CreatedAt     time.Time       `json:"created_at"`
	DeliveredAt   *time.Time      `json:"delivered_at,omitempty"`
	DeadAt        *time.Time      `json:"dead_at,omitempty"`
}

// BackchannelLogout is the payload of an OutboxBackchannelLogout message: whom the logout token is for and about.
type BackchannelLogout struct {
	ClientID string `json:"client_id"`
	Subject  string `json:"sub"`
	SID      string `json:"sid"`
}

type outboxRow struct {
	ID            string     `gorm:"column:id;primaryKey"`
	Kind          string     `gorm:"column:kind"`
	Target        string     `gorm:"column:target"`
	Payload       string     `gorm:"column:payload"`
	Attempts      int        `gorm:"column:attempts"`
	NextAttemptAt time.Time  `gorm:"column:next_attempt_at"`
	LeaseUntil    *time.Time `gorm:"column:lease_until"`
	LeasedBy      string     `gorm:"column:leased_by"`
	LastError     string     `gorm:"column:last_error"`
	OrderKey      string     `gorm:"column:order_key"`
	Seq           int64      `gorm:"column:seq;->"` // never written: the database numbers rows
	CreatedAt     time.Time  `gorm:"column:created_at"`
	DeliveredAt   *time.Time `gorm:"column:delivered_at"`
	DeadAt        *time.Time `gorm:"column:dead_at"`
}

func (outboxRow) TableName() string { return "outbox" }

func (r *outboxRow) message() OutboxMessage {
	return OutboxMessage{
		ID: r.ID, Kind: r.Kind, Target: r.Target, Payload: json.RawMessage(r.Payload), Attempts: r.Attempts,
		NextAttemptAt: r.NextAttemptAt.UTC(), LeaseUntil: utcPtr(r.LeaseUntil), LeasedBy: r.LeasedBy,
		LastError: r.LastError, OrderKey: r.OrderKey, Seq: r.Seq, CreatedAt: r.CreatedAt.UTC(), DeliveredAt: utcPtr(r.DeliveredAt), DeadAt: utcPtr(r.DeadAt),
	}
}

// EnqueueOutbox adds a message, due at once, in the transaction in ctx if there is one: it is delivered only if
// that transaction commits.
func (s *Store) EnqueueOutbox(ctx context.Context, kind, target string, payload any, now time.Time) (string, error) {
	var id string
	err := s.inTx(ctx, func(tx *gorm.DB) (err error) {
		id, err = enqueueOutbox(tx, kind, target, payload, now)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("enqueue outbox: %w", err)
	}
	return id, nil
}

// EnqueueOutboxOrdered is EnqueueOutbox for a message that is delivered only after every message enqueued
// before it with the same orderKey is delivered or dead (one at a time, in order).
func (s *Store) EnqueueOutboxOrdered(ctx context.Context, kind, target, orderKey string, payload any, now time.Time) (string, error) {
	var id string
	err := s.inTx(ctx, func(tx *gorm.DB) (err error) {
		id, err = enqueueOutboxOrdered(tx, kind, target, orderKey, payload, now)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("enqueue outbox: %w", err)
	}
	return id, nil
}

func enqueueOutbox(tx *gorm.DB, kind, target string, payload any, now time.Time) (string, error) {
	return enqueueOutboxOrdered(tx, kind, target, "", payload, now)
}

// enqueueOutboxOrdered is enqueueOutbox for a message delivered only after every earlier message with the same
// orderKey ("" for none) is delivered or dead.
func enqueueOutboxOrdered(tx *gorm.DB, kind, target, orderKey string, payload any, now time.Time) (string, error) {
	if kind == "" {
		return "", fmt.Errorf("%w: no kind", ErrInvalid)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	id, err := newPublicID("obx_")
	if err != nil {
		return "", err
	}
	t := dbTime(now)
	row := outboxRow{ID: id, Kind: kind, Target: target, OrderKey: orderKey, Payload: string(body), NextAttemptAt: t, CreatedAt: t}
	if err := tx.Create(&row).Error; err != nil {
		return "", mapErr(err)
	}
	return id, nil
}

// outboxDue is the condition for a message a worker may claim at now.
const outboxDue = "delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)"

// ClaimOutbox leases up to limit due messages to node until now+lease, counting an attempt on each, oldest due
// first, and returns them. One statement does it: on PostgreSQL rows another node is claiming are skipped
// (SKIP LOCKED), on SQLite the single writer orders claims; either way no message is held by two nodes at once.
// The lease must outlast a delivery, or the message may be claimed again while it is being sent. A message with
// an order key is claimed only when no earlier one with its key is pending (leased, due or waiting to retry):
// at most one message per key is in flight, on all nodes together. kinds, when given, limits the claim to
// those kinds: a worker claims each kind apart, so a slow kind (a receiver that never answers) cannot hold up
// another's messages.
func (s *Store) ClaimOutbox(ctx context.Context, node string, now time.Time, lease time.Duration, limit int, kinds ...string) ([]OutboxMessage, error) {
	if node == "" || lease <= 0 || limit <= 0 {
		return nil, fmt.Errorf("claim outbox: %w: node, lease and limit are required", ErrInvalid)
	}
	t := dbTime(now)
	lock := ""
	if s.dialect == dialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	args := []any{dbTime(now.Add(lease)), node, t, t}
	ofKinds := ""
	if len(kinds) > 0 {
		ofKinds = " AND o.kind IN (" + placeholders(len(kinds)) + ")"
		args = append(args, anys(kinds)...)
	}
	seq := s.outboxSeq()
	q := "UPDATE outbox SET lease_until = ?, leased_by = ?, attempts = attempts + 1 WHERE id IN (SELECT o.id FROM outbox o WHERE " +
		outboxDue + ofKinds + " AND (o.order_key = '' OR NOT EXISTS (SELECT 1 FROM outbox p WHERE p.order_key = o.order_key" +
		" AND p.delivered_at IS NULL AND p.dead_at IS NULL AND p." + seq + " < o." + seq + "))" +
		" ORDER BY o.next_attempt_at LIMIT ?" + lock + ") RETURNING id, kind, target, payload, attempts, " +
		"next_attempt_at, lease_until, leased_by, last_error, created_at, order_key, " + seq
	rows, err := s.pool(ctx).QueryContext(ctx, s.bind(q), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", mapErr(s.translate(err)))
	}
	defer rows.Close()
	var out []OutboxMessage
	for rows.Next() {
		var r outboxRow
		var leaseUntil sql.NullTime
		if err := rows.Scan(&r.ID, &r.Kind, &r.Target, &r.Payload, &r.Attempts, &r.NextAttemptAt, &leaseUntil,
			&r.LeasedBy, &r.LastError, &r.CreatedAt, &r.OrderKey, &r.Seq); err != nil {
			return nil, fmt.Errorf("claim outbox: %w", err)
		}
		if leaseUntil.Valid {
			r.LeaseUntil = &leaseUntil.Time
		}
		out = append(out, r.message())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim outbox: %w", mapErr(err))
	}
	return out, nil
}

// ErrLeaseLost: the message is no longer leased to this node (its lease ran out and another node claimed it, or
// it was finished meanwhile); what the node learned about it is not recorded.
var ErrLeaseLost = errors.New("outbox lease lost")

// OutboxDelivered records that node delivered the message id at now.
func (s *Store) OutboxDelivered(ctx context.Context, id, node string, now time.Time) error {
	// A delivered mail's payload goes at once: it holds a live link and code (a mail request, an address), and
	// the record needs neither.
	err := s.finishOutbox(ctx, id, node, map[string]any{"delivered_at": dbTime(now), "lease_until": nil, "last_error": "",
		"payload": gorm.Expr("CASE WHEN kind IN (?, ?) THEN '{}' ELSE payload END", OutboxMail, OutboxMailRequest)})
	if err != nil {
		return fmt.Errorf("outbox delivered: %w", err)
	}
	return nil
}

// OutboxFailed records that node's attempt at the message failed with reason: it is due again at next, or, if
// dead, never again (dead_at = now).
func (s *Store) OutboxFailed(ctx context.Context, id, node, reason string, next time.Time, dead bool, now time.Time) error {
	if len(reason) > maxOutboxError {
		reason = reason[:maxOutboxError]
	}
	cols := map[string]any{"lease_until": nil, "last_error": clip(reason, maxOutboxError), "next_attempt_at": dbTime(next)}
	if dead {
		cols["dead_at"] = dbTime(now)
	}
	if err := s.finishOutbox(ctx, id, node, cols); err != nil {
		return fmt.Errorf("outbox failed: %w", err)
	}
	return nil
}

func (s *Store) finishOutbox(ctx context.Context, id, node string, cols map[string]any) error {
	cols["leased_by"] = ""
	res := s.conn(ctx).Model(&outboxRow{}).
		Where("id = ? AND leased_by = ? AND delivered_at IS NULL AND dead_at IS NULL", id, node).UpdateColumns(cols)
	if res.Error != nil {
		return mapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrLeaseLost
	}
	return nil
}

// outboxSeq is the column that numbers outbox rows in enqueue order: PostgreSQL's seq (a sequence), SQLite's
// rowid (its one writer inserts in commit order).
func (s *Store) outboxSeq() string {
	if s.dialect == dialectPostgres {
		return "seq"
	}
	return "rowid"
}

// outboxRows is a query of outbox rows that reads seq on both databases.
func (s *Store) outboxRows(ctx context.Context) *gorm.DB {
	q := s.conn(ctx).Model(&outboxRow{})
	if s.dialect != dialectPostgres {
		q = q.Select("*, rowid AS seq")
	}
	return q
}

// RequeueOutbox sends a finished (delivered or dead) message of kind again: a copy, due at once, enqueued now,
// so it goes after the messages of its order key already waiting (the original stays as the record of what
// happened). It returns the copy's id. ErrNotFound if there is no such message of that kind; ErrConflict if
// it is still pending (it will be sent anyway), or if its payload was dropped on delivery (a delivered mail).
func (s *Store) RequeueOutbox(ctx context.Context, kind, id string, now time.Time) (string, error) {
	var newID string
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var r outboxRow
		if err := tx.Where("id = ? AND kind = ?", id, kind).Take(&r).Error; err != nil {
			return mapErr(err)
		}
		if r.DeliveredAt == nil && r.DeadAt == nil {
			return fmt.Errorf("%w: message %s is still pending", ErrConflict, id)
		}
		if r.DeliveredAt != nil && (kind == OutboxMail || kind == OutboxMailRequest) {
			return fmt.Errorf("%w: a delivered mail keeps no payload to send again", ErrConflict)
		}
		var err error
		newID, err = enqueueOutboxOrdered(tx, r.Kind, r.Target, r.OrderKey, json.RawMessage(r.Payload), now)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("requeue outbox: %w", err)
	}
	return newID, nil
}

// OutboxMessages returns the messages of kind ("" for every kind), oldest first, at most limit: for operators
// and tests.
func (s *Store) OutboxMessages(ctx context.Context, kind string, limit int) ([]OutboxMessage, error) {
	q := s.outboxRows(ctx).Order("created_at, id").Limit(limit)
	if kind != "" {
		q = q.Where("kind = ?", kind)
	}
	var rows []outboxRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list outbox: %w", mapErr(err))
	}
	out := make([]OutboxMessage, len(rows))
	for i := range rows {
		out[i] = rows[i].message()
	}
	return out, nil
}

// OutboxCounts is how many messages are waiting (not delivered, not dead) and how many are dead.
func (s *Store) OutboxCounts(ctx context.Context) (pending, dead int64, err error) {
	db := s.conn(ctx)
	if err := db.Model(&outboxRow{}).Where("delivered_at IS NULL AND dead_at IS NULL").Count(&pending).Error; err != nil {
		return 0, 0, fmt.Errorf("count outbox: %w", mapErr(err))
	}
	if err := db.Model(&outboxRow{}).Where("dead_at IS NOT NULL").Count(&dead).Error; err != nil {
		return 0, 0, fmt.Errorf("count outbox: %w", mapErr(err))
	}
	return pending, dead, nil
}
