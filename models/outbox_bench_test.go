package models_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/outbox"
)

type fixedLogoutToken struct{}

func (fixedLogoutToken) LogoutToken(context.Context, string, string, string, time.Time) (string, error) {
	return "header.payload.signature", nil
}

// BenchmarkOutboxRoundTrip is one back-channel logout through the outbox: enqueue, claim with a lease, POST to
// a receiver on loopback, record delivery (signing, the provider's part, is left out).
func BenchmarkOutboxRoundTrip(b *testing.B) {
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer rcv.Close()
	benchBackends(b, func(b *testing.B, s *models.Store) {
		ctx := context.Background()
		w := outbox.New(s, map[string]outbox.Sender{models.OutboxBackchannelLogout: &outbox.Backchannel{
			Tokens: fixedLogoutToken{}, Client: outbox.NewHTTPClient(0, true), Now: time.Now,
		}}, outbox.Options{Node: "bench", Batch: 1})
		msg := models.BackchannelLogout{ClientID: "app", Subject: "usr_x", SID: "ses_x"}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.EnqueueOutbox(ctx, models.OutboxBackchannelLogout, rcv.URL, msg, time.Now()); err != nil {
				b.Fatal(err)
			}
			if n, err := w.RunOnce(ctx); err != nil || n != 1 {
				b.Fatalf("RunOnce: %d, %v", n, err)
			}
		}
		if pending, dead, _ := s.OutboxCounts(ctx); pending != 0 || dead != 0 {
			b.Fatalf("pending %d dead %d after the run", pending, dead)
		}
	})
}
