// Package outbox delivers the messages of the durable outbox (models: OutboxMessage): a Worker on every node
// claims due messages with a lease, hands each to the Sender of its kind, and records the outcome: delivered,
// due again after an exponential backoff with jitter, or, past the attempt or age limit, dead (logged at WARN).
// Whoever enqueues never waits for delivery. Kinds: back-channel logout (Backchannel), mail (mailer.Sender),
// mail requests (MailRequests), webhooks (Webhook).
package outbox

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"github.com/latchkey/latchkey/models"
)

// Store is what the worker needs of the outbox table.
type Store interface {
	// ClaimOutbox claims due messages; kinds, when given, only of those kinds.
	ClaimOutbox(ctx context.Context, node string, now time.Time, lease time.Duration, limit int, kinds ...string) ([]models.OutboxMessage, error)
	OutboxDelivered(ctx context.Context, id, node string, now time.Time) error
	OutboxFailed(ctx context.Context, id, node, reason string, next time.Time, dead bool, now time.Time) error
}

// Sender delivers one message of its kind; an error means "try again later".
type Sender interface {
	Send(ctx context.Context, m models.OutboxMessage) error
}

// Defaults of Options.
const (
	DefaultPoll        = time.Second
	DefaultLease       = time.Minute // outlasts a batch's deliveries, each bounded by its sender's timeout
	DefaultBatch       = 16
	DefaultRetryBase   = 30 * time.Second
	DefaultRetryMax    = time.Hour
	DefaultMaxAttempts = 12
	DefaultMaxAge      = 24 * time.Hour
)

// Options tune a Worker; zero values take the defaults.
type Options struct {
	// Node names this worker in leases: unique per process.
	Node  string
	Poll  time.Duration // how often it looks for due messages when there were none
	Lease time.Duration
	Batch int
	// The n-th failed attempt is retried after about RetryBase·2^(n-1), at most RetryMax, jittered; after
	// MaxAttempts attempts, or once a message is MaxAge old, it is dead.
	RetryBase, RetryMax time.Duration
	MaxAttempts         int
	MaxAge              time.Duration
	Now                 func() time.Time
	Logger              *slog.Logger
}

// Worker delivers outbox messages.
type Worker struct {
	store   Store
	senders map[string]Sender
	opts    Options
}

// New returns a worker delivering the kinds senders names.
func New(store Store, senders map[string]Sender, opts Options) *Worker {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Poll, DefaultPoll)
	def(&opts.Lease, DefaultLease)
	def(&opts.RetryBase, DefaultRetryBase)
	def(&opts.RetryMax, DefaultRetryMax)
	def(&opts.MaxAge, DefaultMaxAge)
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Worker{store: store, senders: senders, opts: opts}
}

// Run delivers until ctx ends. Webhooks are one lane, every other kind another, each with up to Batch deliveries
// in flight; a claim asks only for the kinds of lanes with a free slot, and no more than the fullest of them has
// free. So a receiver that never answers holds only its own lane's slots, for its sender's timeout, and never the
// mail or back-channel logouts queued behind its deliveries. One claim at a time, as one lane would: on SQLite a
// claim is a write on the one connection, which requests need too.
func (w *Worker) Run(ctx context.Context) {
	var hooks, rest lane
	for kind := range w.senders {
		if kind == models.OutboxWebhook {
			hooks.kinds = append(hooks.kinds, kind)
		} else {
			rest.kinds = append(rest.kinds, kind)
		}
	}
	lanes := []*lane{&hooks, &rest}
	for _, l := range lanes {
		l.slots = make(chan struct{}, w.opts.Batch)
	}
	freed := make(chan struct{}, 1) // a slot came free
	var wg sync.WaitGroup
	defer wg.Wait()
	failures := 0
	for {
		var kinds []string
		limit := w.opts.Batch
		for _, l := range lanes {
			if free := cap(l.slots) - len(l.slots); free > 0 && len(l.kinds) > 0 {
				kinds = append(kinds, l.kinds...)
				limit = min(limit, free)
			}
		}
		wait := w.opts.Poll
		var msgs []models.OutboxMessage
		if len(kinds) > 0 {
			var err error
			msgs, err = w.store.ClaimOutbox(ctx, w.opts.Node, w.opts.Now(), w.opts.Lease, limit, kinds...)
			switch {
			case err != nil && ctx.Err() == nil:
				w.opts.Logger.Warn("outbox claim failed", "err", err)
				failures++ // back off: on SQLite a claim waiting on a lock holds the connection requests need
				wait = min(w.opts.Poll<<min(failures, 10), max(maxClaimBackoff, w.opts.Poll))
			case err == nil:
				failures = 0
			}
		}
		for _, m := range msgs {
			l := &rest
			if m.Kind == models.OutboxWebhook {
				l = &hooks
			}
			l.slots <- struct{}{} // never blocks: the claim took at most what each lane had free
			wg.Go(func() {
				defer func() {
					<-l.slots
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
				w.deliver(ctx, m)
			})
		}
		if len(kinds) > 0 && len(msgs) == limit {
			continue // perhaps more are due
		}
		var woken <-chan struct{} // every lane full: claim again as soon as a slot frees up
		if len(kinds) == 0 {
			woken = freed
		}
		select {
		case <-ctx.Done():
			return
		case <-woken:
		case <-time.After(wait):
		}
	}
}

// lane is a share of the worker's deliveries: its kinds, and a token per delivery in flight.
type lane struct {
	kinds []string
	slots chan struct{}
}

// maxClaimBackoff bounds how long the worker waits after failed claims (the database down or locked).
const maxClaimBackoff = 30 * time.Second

// RunOnce claims one batch of due messages, delivers them concurrently and records each outcome; it returns
// how many it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	msgs, err := w.store.ClaimOutbox(ctx, w.opts.Node, w.opts.Now(), w.opts.Lease, w.opts.Batch)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, m := range msgs {
		wg.Go(func() { w.deliver(ctx, m) })
	}
	wg.Wait()
	return len(msgs), nil
}

func (w *Worker) deliver(ctx context.Context, m models.OutboxMessage) {
	log := w.opts.Logger.With("outbox_id", m.ID, "kind", m.Kind, "target", redacted(m.Target), "attempt", m.Attempts)
	var err error
	if s, ok := w.senders[m.Kind]; ok {
		err = s.Send(ctx, m)
	} else {
		err = errors.New("no sender for this kind on this node")
	}
	// The outcome is recorded even as the server stops: a delivered message must not be sent again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	now := w.opts.Now()
	if err == nil {
		if rerr := w.store.OutboxDelivered(rctx, m.ID, w.opts.Node, now); rerr != nil {
			log.Warn("outbox delivery not recorded", "err", rerr)
			return
		}
		log.Debug("outbox message delivered")
		return
	}
	dead := m.Attempts >= w.opts.MaxAttempts || now.Sub(m.CreatedAt) >= w.opts.MaxAge
	next := now.Add(w.Backoff(m.Attempts))
	if rerr := w.store.OutboxFailed(rctx, m.ID, w.opts.Node, err.Error(), next, dead, now); rerr != nil {
		log.Warn("outbox failure not recorded", "err", rerr, "delivery_err", err)
		return
	}
	if dead {
		log.Warn("outbox message dead: giving up", "err", err, "age", now.Sub(m.CreatedAt).Round(time.Second))
		return
	}
	log.Info("outbox delivery failed; will retry", "err", err, "next_attempt_at", next)
}

// Backoff is the wait after the attempts-th failed attempt: RetryBase·2^(attempts-1), at most RetryMax, of
// which a random half is taken off ("equal jitter"), so the nodes' retries after an outage spread out.
func (w *Worker) Backoff(attempts int) time.Duration {
	d := w.opts.RetryBase
	for i := 1; i < attempts && d < w.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.opts.RetryMax)
	return d/2 + rand.N(d/2+1)
}

// redacted is a target fit for the log: scheme, host and path, without a query that may carry a secret.
func redacted(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "(unparsable)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}
