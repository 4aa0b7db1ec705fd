package models_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/latchkey/latchkey/models"
)

// BenchmarkWebhookEnqueue is what webhooks add to a change: a user's name set (user.updated) with no webhook
// (the one indexed read that finds none), and with three subscribed webhooks (three deliveries enqueued in the
// change's transaction).
func BenchmarkWebhookEnqueue(b *testing.B) {
	for _, hooks := range []int{0, 3} {
		b.Run(fmt.Sprintf("webhooks=%d", hooks), func(b *testing.B) {
			benchBackends(b, func(b *testing.B, s *models.Store) {
				ctx := context.Background()
				for i := range hooks {
					w := &models.Webhook{ID: fmt.Sprintf("whk_bench%d", i), URL: "https://backend.example/hook",
						Events: []string{models.WebhookUserUpdated}, SealedSecret: "sealed", Enabled: true}
					if err := s.CreateWebhook(ctx, w); err != nil {
						b.Fatal(err)
					}
				}
				u, err := s.CreateUserWith(ctx, models.NewUser{Email: "bench@example.com", Password: "violet-tractor-47"})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := s.SetName(ctx, u.ID, "Ada"); err != nil {
						b.Fatal(err)
					}
				}
				if pending, _, _ := s.OutboxCounts(ctx); hooks > 0 && pending < int64(hooks) {
					b.Fatalf("%d deliveries pending, want at least %d", pending, hooks)
				}
			})
		})
	}
}
