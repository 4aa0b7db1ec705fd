package e2e

import (
	"net/http"
	"strings"
	"testing"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		tok, _ := e.signedIn(t, newBrowser(t, spaCallback), "openid")
		const allowed, evil = "http://localhost:5173", "https://evil.example"
		for _, tc := range []struct {
			name, method, path, origin string
			preflight                  bool
			bearer                     bool
			status                     int
			acao                       bool
		}{
			{"token preflight from a registered origin", http.MethodOptions, "/oauth2/token", allowed, true, false, http.StatusNoContent, true},
			{"token preflight from another origin", http.MethodOptions, "/oauth2/token", evil, true, false, http.StatusForbidden, false},
			{"userinfo preflight from a registered origin", http.MethodOptions, "/userinfo", allowed, true, false, http.StatusNoContent, true},
			{"userinfo from a registered origin", http.MethodGet, "/userinfo", allowed, false, true, http.StatusOK, true},
			{"userinfo error from a registered origin", http.MethodGet, "/userinfo", allowed, false, false, http.StatusUnauthorized, true},
			{"userinfo from another origin", http.MethodGet, "/userinfo", evil, false, true, http.StatusOK, false},
			{"revoke preflight from a registered origin", http.MethodOptions, "/oauth2/revoke", allowed, true, false, http.StatusNoContent, true},
			{"registered origin with a different port", http.MethodOptions, "/oauth2/token", "http://localhost:5174", true, false, http.StatusForbidden, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, nil)
				req.Header.Set("Origin", tc.origin)
				if tc.preflight {
					req.Header.Set("Access-Control-Request-Method", "POST")
					req.Header.Set("Access-Control-Request-Headers", "content-type")
				}
				if tc.bearer {
					req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Errorf("status = %d, want %d", resp.StatusCode, tc.status)
				}
				acao := resp.Header.Get("Access-Control-Allow-Origin")
				if tc.acao && acao != tc.origin || !tc.acao && acao != "" {
					t.Errorf("Access-Control-Allow-Origin = %q (want it: %v)", acao, tc.acao)
				}
				if v := resp.Header.Get("Access-Control-Allow-Credentials"); v != "" {
					t.Errorf("Access-Control-Allow-Credentials = %q; cookies must never be allowed", v)
				}
				if tc.preflight && tc.acao && !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
					t.Errorf("Access-Control-Allow-Methods = %q", resp.Header.Get("Access-Control-Allow-Methods"))
				}
				if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
					t.Error("response does not vary on Origin")
				}
			})
		}
	})
}
