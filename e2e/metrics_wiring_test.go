package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/provider"
)

// TestMetricsCountWhatTheRouterServes drives the real router and reads the app's registry: requests by route
// template (never the raw path), unmatched paths under not_found, token issuance by grant at the token endpoint
// and the token API, and throttle refusals by the limit that refused.
func TestMetricsCountWhatTheRouterServes(t *testing.T) {
	env := newTestEnv(t, "sqlite://"+t.TempDir()+"/latchkey.db")
	svc := env.createClient(t, "--name", "svc", "--grant-types", "client_credentials", "--scopes", "read")
	spa := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid profile offline_access")
	env.cli(t, "users", "create", "--email", "bob@example.com", "--password", bobPassword)
	srv := env.startServer(t)
	metrics := httptest.NewServer(srv.app.Metrics().Handler())
	t.Cleanup(metrics.Close)

	if code, _, body := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}},
		svc.ClientID, svc.ClientSecret); code != http.StatusOK {
		t.Fatalf("client_credentials: %d %v", code, body)
	}
	if code, _, body := apiCall(t, "POST", srv.URL+"/api/v1/auth/login",
		map[string]any{"client_id": spa.ClientID, "email": "bob@example.com", "password": bobPassword, "scope": "openid offline_access"}, nil); code != http.StatusOK {
		t.Fatalf("token API login: %d %v", code, body)
	} else if code, _, body := apiCall(t, "POST", srv.URL+"/api/v1/auth/refresh", map[string]any{"refresh_token": body["refresh_token"]}, nil); code != http.StatusOK {
		t.Fatalf("token API refresh: %d %v", code, body)
	}
	for range 3 {
		if code, _, _ := get(t, srv.URL+"/oauth2/sessions/no-such-id-at-all"); code != http.StatusNotFound {
			t.Fatalf("unknown path: %d", code)
		}
	}
	// The account's free attempts, then one more: refused by the account's limit.
	wrong := map[string]any{"client_id": spa.ClientID, "email": "bob@example.com", "password": "not-bobs-password"}
	var refused int
	for range 6 {
		if code, _, _ := apiCall(t, "POST", srv.URL+"/api/v1/auth/login", wrong, nil); code == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("%d of 6 wrong passwords refused by the throttle, want 1", refused)
	}

	samples := scrapeMetrics(t, metrics.URL)
	for name, want := range map[string]float64{
		`latchkey_tokens_issued_total{grant_type="client_credentials"}`:                            1,
		`latchkey_tokens_issued_total{grant_type="` + provider.GrantTypeFirstPartySignIn + `"}`:    1,
		`latchkey_tokens_issued_total{grant_type="refresh_token"}`:                                 1,
		`latchkey_throttle_rejections_total{kind="account"}`:                                       1,
		`latchkey_throttle_rejections_total{kind="ip"}`:                                            0,
		`latchkey_http_requests_total{method="POST",route="/oauth2/token",status="200"}`:           1,
		`latchkey_http_requests_total{method="POST",route="/api/v1/auth/login",status="401"}`:      5,
		`latchkey_http_requests_total{method="POST",route="/api/v1/auth/login",status="429"}`:      1,
		`latchkey_http_requests_total{method="GET",route="not_found",status="404"}`:                3,
		`latchkey_http_request_duration_seconds_count{method="POST",route="/api/v1/auth/refresh"}`: 1,
	} {
		if got, ok := samples[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	for name := range samples {
		if strings.Contains(name, "no-such-id-at-all") {
			t.Errorf("a raw path reached a label: %s", name)
		}
	}
}
