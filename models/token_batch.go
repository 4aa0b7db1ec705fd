package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"gorm.io/gorm"
)

// On SQLite an access token outside a caller's transaction (a client_credentials token) and its event are
// written by group commit: the token requests waiting for the single writer connection share one transaction.
// Each commit writes one WAL frame per page changed, and one token with its event changes about eight pages, of
// which only the token's signature and request id index entries are its own: the tables' last leaves and the
// client, time and expiry index leaves are the same for every token of a batch, and the batch's events go in one
// multi-row INSERT. A transaction per token made the event cost +41% server CPU per client_credentials token,
// shared ones +6% (docs/PERFORMANCE.md, "Audit log cost").
//
// No goroutine of its own: the first request to arrive leads, writing every waiting request's rows (its own
// among them) in one transaction, then hands the lead to the next waiting request, if any. Requests that arrive
// while a batch runs wait for the next one, so a batch is what queued behind the writer anyway and a lone
// request is never delayed. Each token's event is written only if its token row was (a duplicate signature or
// a changed cached client writes neither); a failure after a token row was written (the event's INSERT, the
// COMMIT) fails every request of the batch, so no token is kept without its event.

// maxTokenBatch bounds a batch, and so how long its first request waits for the last.
const maxTokenBatch = 64

// tokenWrite is one request's token INSERT and event row, and, once its batch has run, the outcome.
type tokenWrite struct {
	ctx         context.Context
	token       string // with ? placeholders
	tokenArgs   []any
	poolSQL     string // the event row's pool (auditArgs)
	eventArgs   []any
	conditional bool // the token INSERT is conditional on a cached client: inserted tells
	inserted    bool
	err         error
	done        chan bool // true: the batch ran (inserted, err set); false: lead the next batch
}

// tokenBatcher queues the token writes waiting for a batch.
type tokenBatcher struct {
	mu      sync.Mutex
	queue   []*tokenWrite
	leading bool // a batch is running or about to
}

// writeTokenBatched writes w in a batch with whatever else waits, and answers when that batch has committed or
// failed.
func (s *Store) writeTokenBatched(w *tokenWrite) {
	b := &s.tokenBatch
	w.done = make(chan bool, 1)
	b.mu.Lock()
	b.queue = append(b.queue, w)
	lead := !b.leading
	b.leading = true
	b.mu.Unlock()
	if !lead && <-w.done {
		return
	}
	// Leading: w is first in the queue (the lead passes to the first waiting request), so in this batch.
	b.mu.Lock()
	n := min(len(b.queue), maxTokenBatch)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()
	s.runTokenBatch(batch)
	for _, bw := range batch[1:] {
		bw.done <- true
	}
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.leading = false
	} else {
		b.queue[0].done <- false
	}
	b.mu.Unlock()
}

// runTokenBatch writes batch's rows in one transaction and sets each write's outcome.
func (s *Store) runTokenBatch(batch []*tokenWrite) {
	fail := func(err error) {
		for _, w := range batch {
			w.inserted, w.err = false, noteFault(w.ctx, err)
		}
	}
	// A panic here must not leave the batch's other requests, and every later token, waiting for a lead that
	// never comes: it fails this batch like an error, and the lead passes on.
	var tx *sql.Tx
	defer func() {
		if r := recover(); r != nil {
			if tx != nil {
				_ = tx.Rollback() // the writer connection goes back to the pool, not held in a transaction
			}
			fail(fmt.Errorf("token batch: panic: %v", r))
		}
	}()
	// The batch runs for all its requests: one request's cancellation must not cut the others' rows.
	ctx := context.WithoutCancel(batch[0].ctx)
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		fail(mapErr(err))
		return
	}
	var events strings.Builder
	events.WriteString("INSERT INTO " + tableAudit + " (" + auditColumns + ") VALUES ")
	var eventArgs []any
	sep := ""
	for _, w := range batch {
		res, err := tx.ExecContext(ctx, w.token, w.tokenArgs...)
		if err != nil {
			err = s.translate(err)
			if !errors.Is(err, gorm.ErrDuplicatedKey) {
				// SQLite may have rolled the whole transaction back (a full disk, an I/O error): the statements
				// after it would run, and commit, on their own.
				_ = tx.Rollback()
				fail(mapErr(err))
				return
			}
			// A single-row INSERT refused for a duplicate key leaves the transaction as it was.
			w.err = insertError(err)
			continue
		}
		w.inserted = true
		if w.conditional {
			n, err := res.RowsAffected()
			if err != nil {
				_ = tx.Rollback()
				fail(fmt.Errorf("insert token: %w", err))
				return
			}
			w.inserted = n == 1
		}
		if w.inserted {
			events.WriteString(sep + "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " + w.poolSQL + ")")
			eventArgs, sep = append(eventArgs, w.eventArgs...), ", "
		}
	}
	// The events in one INSERT: the driver compiles each statement on every call, one per token cost more.
	if len(eventArgs) > 0 {
		if _, err := tx.ExecContext(ctx, events.String(), eventArgs...); err != nil {
			_ = tx.Rollback()
			fail(fmt.Errorf("record token events: %w", mapErr(err)))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(mapErr(err))
	}
}

// insertWithEventSQLite stores a token row (stmt, args: insertRowEvent's) and its event on SQLite for a caller
// without a transaction (a client_credentials token), by group commit (above). It answers whether the row was
// inserted (false: a cached client changed).
func (s *Store) insertWithEventSQLite(ctx context.Context, stmt string, args []any, check *ClientCheck, ev *Event) (bool, error) {
	evArgs, poolSQL := auditArgs(ctx, *ev, s.now())
	if unstorableArgs(args) {
		return false, errUnstorableText
	}
	w := &tokenWrite{ctx: ctx, token: stmt, tokenArgs: args, poolSQL: poolSQL, eventArgs: evArgs,
		conditional: check != nil}
	s.writeTokenBatched(w)
	return w.inserted, w.err
}
