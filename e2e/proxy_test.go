package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// Behind a load balancer listed in LATCHKEY_TRUSTED_PROXIES, the client is the address the balancer appended to
// X-Forwarded-For: the sessions list shows it. Without the setting the header is ignored, whatever it says.
func TestTrustedProxiesNameTheClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, trusted, xff, wantIP string
	}{
		{"no proxies trusted: the TCP peer", "", "203.0.113.7", "127.0.0.1"},
		{"loopback trusted: the address it appended", "127.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"},
		{"two trusted hops", "127.0.0.0/8, 203.0.113.0/24", "198.51.100.1, 203.0.113.7", "198.51.100.1"},
		{"trusted, no header: the proxy itself", "127.0.0.1", "", "127.0.0.1"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, databases()[0].url(t))
			env["LATCHKEY_TRUSTED_PROXIES"] = tt.trusted
			srv, clientID := noCodeFixture(t, env)
			api := srv.URL + "/api/v1/auth"
			hdr := map[string]string{}
			if tt.xff != "" {
				hdr["X-Forwarded-For"] = tt.xff
			}
			code, _, signup := apiCall(t, "POST", api+"/signup", map[string]any{
				"client_id": clientID, "email": fmt.Sprintf("u%d@example.com", i), "password": "violet-tractor-47",
			}, hdr)
			if code != http.StatusCreated {
				t.Fatalf("signup: %d %v", code, signup)
			}
			at, _ := signup["access_token"].(string)
			code, _, list := apiCall(t, "GET", api+"/sessions", nil, bearerHeader(at))
			sessions, _ := list["sessions"].([]any)
			if code != http.StatusOK || len(sessions) != 1 {
				t.Fatalf("sessions: %d %v", code, list)
			}
			if ip := sessions[0].(map[string]any)["ip"]; ip != tt.wantIP {
				t.Fatalf("session ip = %v, want %s", ip, tt.wantIP)
			}
		})
	}
}

// Sign-in throttling by IP keys on the forwarded client, so one address's failures behind the balancer do not
// slow everyone else's sign-ins, and a client cannot dodge its own limit by writing X-Forwarded-For itself.
func TestTrustedProxiesThrottleByForwardedClient(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	env["LATCHKEY_TRUSTED_PROXIES"] = "127.0.0.1"
	srv, clientID := noCodeFixtureAt(t, env, &testClock{now: time.Now()})
	api := srv.URL + "/api/v1/auth"
	login := func(n int, xff string) int {
		code, _, _ := apiCall(t, "POST", api+"/login", map[string]any{
			"client_id": clientID, "email": fmt.Sprintf("nobody%d@example.com", n), "password": "wrong-guess-123",
		}, map[string]string{"X-Forwarded-For": xff})
		return code
	}
	// Different accounts each time, so only the IP limit (30 free failures) can bite.
	last := 0
	for n := 0; n < 40 && last != http.StatusTooManyRequests; n++ {
		last = login(n, fmt.Sprintf("10.%d.0.1, 198.51.100.1", n)) // the client's own entry varies; it is not believed
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("40 failures from one forwarded client: last answer %d, want 429", last)
	}
	if code := login(100, "203.0.113.9"); code != http.StatusUnauthorized {
		t.Fatalf("another forwarded client after the first was throttled: %d, want 401", code)
	}
}

// A peer that is not a trusted proxy cannot dodge the IP limit by sending a new X-Forwarded-For each time.
func TestUntrustedPeerCannotDodgeTheIPLimit(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	env["LATCHKEY_TRUSTED_PROXIES"] = "10.0.0.0/8" // not the test's loopback peer
	srv, clientID := noCodeFixtureAt(t, env, &testClock{now: time.Now()})
	api := srv.URL + "/api/v1/auth"
	last := 0
	for n := 0; n < 40 && last != http.StatusTooManyRequests; n++ {
		last, _, _ = apiCall(t, "POST", api+"/login", map[string]any{
			"client_id": clientID, "email": fmt.Sprintf("nobody%d@example.com", n), "password": "wrong-guess-123",
		}, map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", n)})
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("40 failures from one untrusted peer with a new X-Forwarded-For each: last answer %d, want 429", last)
	}
}
