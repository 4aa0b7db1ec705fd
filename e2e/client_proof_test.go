package e2e

import (
	"net/http"
	"net/url"
	"testing"
)

// A refresh token a confidential first-party app got by authenticating at the token endpoint refreshes at the token
// API only with the app's secret: the token API identifies apps by client_id alone, and without this a stolen
// refresh token would work there without the secret the token endpoint demands (RFC 6749 §6, RFC 9700 §4.14).
// Grants the token API issued to an app identified by client_id alone keep refreshing by client_id alone.
func TestAuthenticatedGrantsRefreshOnlyWithTheSecret(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newPasswordFixture(t, env)
		refreshURL := f.srv.URL + "/api/v1/auth/refresh"
		code, _, body := f.grant(t, f.bubble, "carol@example.com", pwCarolPassword, url.Values{"scope": {"openid offline_access"}})
		rt, _ := body["refresh_token"].(string)
		if code != http.StatusOK || rt == "" {
			t.Fatalf("password grant: %d %v", code, body)
		}
		for _, tc := range []struct {
			name string
			body map[string]any
		}{
			{"the token alone", map[string]any{"refresh_token": rt}},
			{"with client_id", map[string]any{"refresh_token": rt, "client_id": f.bubble.ClientID}},
		} {
			if code, _, body := apiCall(t, "POST", refreshURL, tc.body, nil); code != http.StatusUnauthorized || body["error"] != "invalid_client" {
				t.Errorf("%s at the token API: %d %v, want 401 invalid_client", tc.name, code, body)
			}
		}
		if code, _, body := apiCall(t, "POST", refreshURL, map[string]any{"refresh_token": rt, "client_id": f.bubble.ClientID,
			"client_secret": "wrong"}, nil); code != http.StatusUnauthorized {
			t.Errorf("a wrong secret at the token API: %d %v, want 401", code, body)
		}
		// The refusals spent nothing: with the secret, the token refreshes, and its successor is bound the same way.
		code, _, body = apiCall(t, "POST", refreshURL, map[string]any{"refresh_token": rt, "client_id": f.bubble.ClientID,
			"client_secret": f.bubble.ClientSecret}, nil)
		next, _ := body["refresh_token"].(string)
		if code != http.StatusOK || next == "" {
			t.Fatalf("refresh with the secret at the token API: %d %v", code, body)
		}
		if code, _, body := apiCall(t, "POST", refreshURL, map[string]any{"refresh_token": next}, nil); code != http.StatusUnauthorized {
			t.Errorf("the successor without the secret: %d %v, want 401", code, body)
		}
		// At the token endpoint nothing changed: the app authenticates as always.
		code, _, body = postForm(t, f.token(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next},
			"client_id": {f.bubble.ClientID}, "client_secret": {f.bubble.ClientSecret}}, "", "")
		if code != http.StatusOK {
			t.Errorf("refresh at the token endpoint: %d %v", code, body)
		}

		// A public app's grant is not bound: it has nothing to prove.
		code, _, body = f.grant(t, f.public, "carol@example.com", pwCarolPassword, url.Values{"scope": {"openid offline_access"}})
		prt, _ := body["refresh_token"].(string)
		if code != http.StatusOK || prt == "" {
			t.Fatalf("password grant of the public app: %d %v", code, body)
		}
		if code, _, body := apiCall(t, "POST", refreshURL, map[string]any{"refresh_token": prt}, nil); code != http.StatusOK {
			t.Errorf("the public app's refresh at the token API: %d %v, want 200", code, body)
		}
	})
}
