package throttle

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestIPKeyGroupsAnIPv6SlashSixtyFour(t *testing.T) {
	key := func(peer string) string {
		r := httptest.NewRequest(http.MethodPost, "/login", nil)
		r.RemoteAddr = peer
		return ipKey(r)
	}
	tests := []struct {
		a, b string
		same bool
	}{
		{"[2001:db8:1:2::1]:5000", "[2001:db8:1:2:ffff::9]:6000", true},
		{"[2001:db8:1:2::1]:5000", "[2001:db8:1:3::1]:5000", false},
		{"203.0.113.9:5000", "203.0.113.10:5000", false},
		{"[::ffff:203.0.113.9]:5000", "203.0.113.9:6000", true},
	}
	for _, tt := range tests {
		if ka, kb := key(tt.a), key(tt.b); (ka == kb) != tt.same {
			t.Errorf("ipKey(%s) = %q, ipKey(%s) = %q; same = %v, want %v", tt.a, ka, tt.b, kb, ka == kb, tt.same)
		}
	}
}

func TestSecondsRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Second: "1", 1500 * time.Millisecond: "2", time.Millisecond: "1", 15 * time.Minute: "900"} {
		if got := Seconds(d); got != want {
			t.Errorf("Seconds(%v) = %s, want %s", d, got, want)
		}
	}
}
