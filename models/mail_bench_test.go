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

// BenchmarkOTPVerify is the storage part of a passwordless sign-in by code (POST /api/v1/auth/otp/verify): find
// the live code of the address, count the guess, compare, use the token and mark the email verified. Issuing
// the code (between iterations, untimed), the throttle, the session and the tokens are left out.
func BenchmarkOTPVerify(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *models.Store) {
		ctx := context.Background()
		if _, err := s.CreateUserWith(ctx, models.NewUser{Email: "ada@example.com", Password: "violet-tractor-47"}); err != nil {
			b.Fatal(err)
		}
		var code string
		keep := func(_, to, _, c string) (models.MailMessage, error) {
			code = c
			return models.MailMessage{From: "no-reply@acme.example", To: to, Message: "x"}, nil
		}
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			if err := s.SendMailToken(ctx, "", "ada@example.com", models.MailSignIn, time.Now(), keep); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := s.SignInWithMailToken(ctx, models.MailTokenRef{Email: "ada@example.com", Code: code}, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
