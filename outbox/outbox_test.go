package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
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
