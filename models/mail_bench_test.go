package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchkey/latchkey/mailer"
	"github.com/latchkey/latchkey/models"
)

// BenchmarkMailEnqueue is one password-reset mail requested: find the user, retire the older token, store the
// new one, render the mail (text + HTML, from the embedded templates) and queue it in the outbox, one
// transaction. Delivery (SMTP) is the worker's and left out.
func BenchmarkMailEnqueue(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *models.Store) {
		ctx := context.Background()
		c, err := mailer.NewComposer("Acme <no-reply@acme.example>", "https://id.acme.example", "", time.Now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.CreateUserWith(ctx, models.NewUser{Email: "ada@example.com", Password: "violet-tractor-47"}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := s.SendMailToken(ctx, "", "ada@example.com", models.MailResetPassword, time.Now(), c.Compose); err != nil {
				b.Fatal(err)
			}
		}
	})
}
