package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/outbox"
)

type failing struct{ calls int }

func (f *failing) Send(context.Context, models.OutboxMessage) error {
	f.calls++
	return errors.New("HTTP 503")
}

func TestWorkerRetriesWithBackoffThenGivesUp(t *testing.T) {
	ctx := context.Background()
	s, err := models.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "o.db"), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var logs bytes.Buffer
	snd := &failing{}
	w := outbox.New(s, map[string]outbox.Sender{"test": snd}, outbox.Options{
		Node: "n", RetryBase: time.Second, RetryMax: 4 * time.Second, MaxAttempts: 4,
		Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	for n, want := range []time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 4 * time.Second} {
		if want == 0 {
			continue
		}
		if b := w.Backoff(n); b < want/2 || b > want {
			t.Errorf("Backoff(%d) = %v, want between %v and %v", n, b, want/2, want)
		}
	}
	if _, err := s.EnqueueOutbox(ctx, "test", "https://rp.example/bc?secret=x", nil, now); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		now = now.Add(5 * time.Second) // past any backoff of at most RetryMax
	}
	if snd.calls != 4 {
		t.Errorf("%d attempts, want MaxAttempts = 4", snd.calls)
	}
	msgs, _ := s.OutboxMessages(ctx, "test", 10)
	if len(msgs) != 1 || msgs[0].DeadAt == nil || msgs[0].LastError != "HTTP 503" || msgs[0].Attempts != 4 {
		t.Fatalf("message %+v, want dead after 4 attempts", msgs)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"outbox message dead") || strings.Contains(logs.String(), "secret=x") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// recording delivers what it is told to and fails the rest.
type recording struct {
	mu   sync.Mutex      // a batch is delivered concurrently
	fail map[string]bool // by target
	sent []string
}

func (r *recording) Send(_ context.Context, m models.OutboxMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[m.Target] {
		return errors.New("HTTP 503")
	}
	r.sent = append(r.sent, m.Target)
	return nil
}

// Messages with one order key go one at a time in enqueue order: a failed one holds the later ones back until
// it is delivered, or dead; a requeued dead one goes after those waiting. Unkeyed messages and other keys pass.
func TestOrderedMessagesWaitForEarlierOnes(t *testing.T) {
	for _, db := range testStores(t) {
		t.Run(db.name, func(t *testing.T) {
			ctx := context.Background()
			s := db.store
			now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			snd := &recording{fail: map[string]bool{"k1": true}}
			w := outbox.New(s, map[string]outbox.Sender{"test": snd}, outbox.Options{
				Node: "n", RetryBase: time.Second, RetryMax: time.Second, MaxAttempts: 2, Now: func() time.Time { return now },
			})
			for _, m := range []struct{ target, key string }{{"k1", "a"}, {"k2", "a"}, {"other", "b"}, {"free", ""}, {"k3", "a"}} {
				if _, err := s.EnqueueOutboxOrdered(ctx, "test", m.target, m.key, nil, now); err != nil {
					t.Fatal(err)
				}
			}
			step := func(want ...string) {
				t.Helper()
				snd.sent = nil
				if _, err := w.RunOnce(ctx); err != nil {
					t.Fatal(err)
				}
				slices.Sort(snd.sent)
				if !slices.Equal(snd.sent, want) {
					t.Errorf("delivered %v, want %v", snd.sent, want)
				}
				now = now.Add(2 * time.Second) // past the backoff
			}
			step("free", "other") // k1 failed; k2 and k3 wait behind it
			step()                // k1 failed again: dead after 2 attempts
			step("k2")            // the dead one no longer holds the key
			step("k3")
			msgs, _ := s.OutboxMessages(ctx, "test", 10)
			var dead models.OutboxMessage
			for _, m := range msgs {
				if m.DeadAt != nil {
					dead = m
				}
			}
			if dead.Target != "k1" || dead.Attempts != 2 {
				t.Fatalf("dead message %+v", dead)
			}
			if _, err := s.RequeueOutbox(ctx, "test", "obx_none", now); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("requeue of nothing: %v", err)
			}
			k4, err := s.EnqueueOutboxOrdered(ctx, "test", "k4", "a", nil, now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.RequeueOutbox(ctx, "test", k4, now); !errors.Is(err, models.ErrConflict) {
				t.Errorf("requeue of a pending message: %v", err)
			}
			if _, err := s.RequeueOutbox(ctx, "test", dead.ID, now); err != nil {
				t.Fatal(err)
			}
			delete(snd.fail, "k1")
			step("k4") // the requeued k1 waits behind k4, enqueued before it
			step("k1")
			if pending, deadN, _ := s.OutboxCounts(ctx); pending != 0 || deadN != 1 {
				t.Errorf("pending %d, dead %d; want 0 and the one dead record", pending, deadN)
			}
		})
	}
}
