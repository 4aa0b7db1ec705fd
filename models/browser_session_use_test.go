package models_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// UseBrowserSession is the activity a code exchange or refresh records: it moves the idle expiry (never past the
// absolute one), keeps the recorded IP, and refuses a session that has ended or expired.
func TestUseBrowserSession(t *testing.T) {
	backends := map[string]func(t *testing.T) *models.Store{"sqlite": func(t *testing.T) *models.Store { return newSQLiteStore(t) }}
	if base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL"); base != "" {
		backends["postgres"] = func(t *testing.T) *models.Store { return newPostgresStore(t, base) }
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			u, err := s.CreateUserWith(ctx, models.NewUser{Email: "use@example.com", Password: "use-password-1"})
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
			bs, _, err := s.CreateBrowserSession(ctx, u, "203.0.113.7", "ua", t0, time.Hour, 3*time.Hour)
			if err != nil {
				t.Fatal(err)
			}

			if err := s.UseBrowserSession(ctx, bs.ID, t0.Add(50*time.Minute), time.Hour); err != nil {
				t.Fatalf("use within the idle time: %v", err)
			}
			got, _ := s.BrowserSessionByID(ctx, bs.ID)
			if !got.IdleExpiresAt.Equal(t0.Add(110*time.Minute)) || !got.LastActiveAt.Equal(t0.Add(50*time.Minute)) || got.IP != "203.0.113.7" {
				t.Errorf("after a use: idle %v, last active %v, ip %q", got.IdleExpiresAt, got.LastActiveAt, got.IP)
			}
			// Within a minute of the last use it is only read.
			if err := s.UseBrowserSession(ctx, bs.ID, t0.Add(50*time.Minute+30*time.Second), time.Hour); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.BrowserSessionByID(ctx, bs.ID); !got.LastActiveAt.Equal(t0.Add(50 * time.Minute)) {
				t.Errorf("a use 30s after the last one wrote last_active_at %v", got.LastActiveAt)
			}
			for _, at := range []time.Duration{100 * time.Minute, 150 * time.Minute} {
				if err := s.UseBrowserSession(ctx, bs.ID, t0.Add(at), time.Hour); err != nil {
					t.Fatalf("use at +%v: %v", at, err)
				}
			}
			if got, _ := s.BrowserSessionByID(ctx, bs.ID); !got.IdleExpiresAt.Equal(t0.Add(3 * time.Hour)) {
				t.Errorf("idle expiry %v went past the absolute one %v", got.IdleExpiresAt, t0.Add(3*time.Hour))
			}

			for _, tc := range []struct {
				name string
				id   string
				at   time.Time
			}{
				{"past its absolute expiry", bs.ID, t0.Add(3 * time.Hour)},
				{"unknown", "ses_nope", t0},
			} {
				if err := s.UseBrowserSession(ctx, tc.id, tc.at, time.Hour); !errors.Is(err, models.ErrNotFound) {
					t.Errorf("%s: %v, want ErrNotFound", tc.name, err)
				}
			}
			idle, _, _ := s.CreateBrowserSession(ctx, u, "", "", t0, time.Hour, 3*time.Hour)
			if err := s.UseBrowserSession(ctx, idle.ID, t0.Add(time.Hour), time.Hour); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("idle-expired: %v, want ErrNotFound", err)
			}
			ended, _, _ := s.CreateBrowserSession(ctx, u, "", "", t0, time.Hour, 3*time.Hour)
			if err := s.EndBrowserSession(ctx, ended.ID, t0); err != nil {
				t.Fatal(err)
			}
			if err := s.UseBrowserSession(ctx, ended.ID, t0.Add(time.Minute), time.Hour); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("ended: %v, want ErrNotFound", err)
			}
		})
	}
}
