package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// BenchmarkGrantReread is what every code exchange and refresh adds to bring its tokens up to date
// (provider/fresh.go, wired in app/app.go): the user read again, and the browser session read and, when
// it was last used over a minute ago, its idle expiry moved.
func BenchmarkGrantReread(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *models.Store) {
		ctx := context.Background()
		u, err := s.CreateUserWith(ctx, models.NewUser{Email: "bench@example.com", Password: "bench-password-1", Roles: []string{"admin", "editor"}})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		bs, _, err := s.CreateBrowserSession(ctx, u, "127.0.0.1", "bench", start, 24*time.Hour, 1000*24*time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			step time.Duration // how far the clock moves between two refreshes
		}{{"session_used_recently", 0}, {"session_touched", 2 * time.Minute}} {
			b.Run(tc.name, func(b *testing.B) {
				now := start
				for b.Loop() {
					now = now.Add(tc.step)
					if _, err := s.UserByID(ctx, u.ID); err != nil {
						b.Fatal(err)
					}
					if err := s.UseBrowserSession(ctx, bs.ID, now, 24*time.Hour); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}
