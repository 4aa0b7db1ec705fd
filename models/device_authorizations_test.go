package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

func TestUserCodeGenerationAndNormalisation(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		c, err := models.NewUserCode()
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != models.UserCodeLength || strings.Trim(c, "BCDFGHJKLMNPQRSTVWXZ") != "" {
			t.Fatalf("user code %q is not 8 letters of the unambiguous alphabet", c)
		}
		seen[c] = true
		if n, ok := models.NormalizeUserCode(strings.ToLower(models.FormatUserCode(c))); !ok || n != c {
			t.Fatalf("normalising the lower-cased %s gave %q %v", models.FormatUserCode(c), n, ok)
		}
	}
	if len(seen) < 1990 {
		t.Errorf("2000 user codes had only %d distinct values", len(seen))
	}
	for typed, want := range map[string]string{
		"bcdf-ghjk": "BCDFGHJK", " BCDF GHJK ": "BCDFGHJK", "B-C-D-F-G-H-J-K": "BCDFGHJK", "bcdfghjk": "BCDFGHJK",
		"BCDF-GHJ": "", "BCDF-GHJKL": "", "ABCD-EFGH": "", "BCDF-GHJ0": "", "BCDF–GHJK": "", "": "", "ＢCDF-GHJK": "",
	} {
		got, ok := models.NormalizeUserCode(typed)
		if got != want || ok != (want != "") {
			t.Errorf("NormalizeUserCode(%q) = %q %v, want %q", typed, got, ok, want)
		}
	}
	if got := models.FormatUserCode("BCDFGHJK"); got != "BCDF-GHJK" {
		t.Errorf("FormatUserCode = %q", got)
	}
}

func TestDevicePolling(t *testing.T) {
	s := newSQLiteStore(t)
	ctx := context.Background()
	now := time.Now()
	dc, uc, err := s.CreateDeviceAuthorization(ctx, models.DeviceAuthorization{ClientID: "tv", Scopes: []string{"openid"}, Interval: 5 * time.Second, CreatedAt: now, ExpiresAt: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.PollDeviceAuthorization(ctx, dc, "tv", now)
	if err != nil || p.Outcome != models.DevicePending || p.SlowDown {
		t.Fatalf("first poll = %+v %v", p, err)
	}
	if p, _ = s.PollDeviceAuthorization(ctx, dc, "tv", now.Add(time.Second)); !p.SlowDown || p.Interval != 10*time.Second {
		t.Fatalf("early poll = %+v", p)
	}
	if p, _ = s.PollDeviceAuthorization(ctx, dc, "tv", now.Add(12*time.Second)); p.SlowDown {
		t.Fatalf("poll after the interval = %+v", p)
	}
	if _, err := s.PollDeviceAuthorization(ctx, dc, "other", now); err == nil {
		t.Fatal("another client's poll found the code")
	}
	if err := s.DecideDeviceAuthorization(ctx, uc, models.DeviceDecision{Approve: true, UserID: "u", Session: []byte("{}")}, now); err != nil {
		t.Fatal(err)
	}
	if p, _ = s.PollDeviceAuthorization(ctx, dc, "tv", now.Add(12*time.Second)); p.Outcome != models.DeviceApproved || string(p.Session) != "{}" {
		t.Fatalf("approved poll = %+v", p)
	}
	if p, _ = s.PollDeviceAuthorization(ctx, dc, "tv", now.Add(30*time.Second)); p.Outcome != models.DeviceRedeemed {
		t.Fatalf("poll after redemption = %+v", p)
	}
}

// BenchmarkDevicePollPending is the storage cost of a device's poll answered authorization_pending: the read and
// the compare-and-swap of the poll count (each poll comes after the interval).
func BenchmarkDevicePollPending(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *models.Store) {
		ctx := context.Background()
		now := time.Now()
		dc, _, err := s.CreateDeviceAuthorization(ctx, models.DeviceAuthorization{ClientID: "tv", Scopes: []string{"openid"}, Interval: time.Second, CreatedAt: now, ExpiresAt: now.Add(24 * 365 * time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := range b.N {
			p, err := s.PollDeviceAuthorization(ctx, dc, "tv", now.Add(time.Duration(i+1)*time.Second))
			if err != nil || p.Outcome != models.DevicePending || p.SlowDown {
				b.Fatalf("poll %d = %+v %v", i, p, err)
			}
		}
	})
}
