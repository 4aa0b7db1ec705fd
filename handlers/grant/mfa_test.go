package grant

import (
	"testing"
	"time"
)

func TestSignedInRecently(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		authTime time.Time
		want     bool
	}{
		{"just now", now, true},
		{"exactly 5 minutes ago", now.Add(-FreshSignIn), true},
		{"a second past 5 minutes", now.Add(-FreshSignIn - time.Second), false},
		{"never recorded", time.Time{}, false},
	} {
		if got := SignedInRecently(tc.authTime, now); got != tc.want {
			t.Errorf("%s: SignedInRecently = %v, want %v", tc.name, got, tc.want)
		}
	}
}
