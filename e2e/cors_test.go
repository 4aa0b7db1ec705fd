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

// The token API as a browser on a WeWeb origin calls it: each preflight asks for the route's method and the
// headers the plugin sends (Authorization, Content-Type, the custom token header, ww-retry on the retried call),
// and the answer allows exactly those, with a max age and never credentials; then the call itself carries
// Access-Control-Allow-Origin. Another origin's preflight is refused with no CORS header.
func TestCORSTokenAPIAsBrowsersSendIt(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env) // custom token header X-Auth-Token
		api := srv.URL + "/api/v1/auth"
		const app, evil = "https://my-app.weweb.io", "https://evil.example"
		code, _, signup := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": "ada@example.com",
			"password": "violet-tractor-47", "name": "Ada"}, map[string]string{"Origin": app})
		if code != 201 {
			t.Fatalf("signup: %d %v", code, signup)
		}
		at, _ := signup["access_token"].(string)
		sid, _ := signup["session_id"].(string)

		preflight := func(origin, method, path, headers string) *http.Response {
			t.Helper()
			req, _ := http.NewRequest(http.MethodOptions, api+path, nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", method)
			if headers != "" {
				req.Header.Set("Access-Control-Request-Headers", headers)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		for _, tc := range []struct {
			method, path, headers string
			methods, allowed      string
		}{
			{"PATCH", "/me", "authorization,content-type,ww-retry", "GET, PATCH", "authorization, content-type, ww-retry"},
			{"GET", "/me", "x-auth-token,ww-retry", "GET, PATCH", "x-auth-token, ww-retry"},
			{"DELETE", "/sessions", "authorization", "GET, DELETE", "authorization"},
			{"DELETE", "/sessions/" + sid, "authorization,ww-retry", "DELETE", "authorization, ww-retry"},
			{"POST", "/refresh", "content-type", "POST", "content-type"},
			{"POST", "/logout", "authorization,x-evil", "POST", "authorization"},
		} {
			resp := preflight(app, tc.method, tc.path, tc.headers)
			h := resp.Header
			if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != app ||
				h.Get("Access-Control-Allow-Methods") != tc.methods || h.Get("Access-Control-Allow-Headers") != tc.allowed ||
				h.Get("Access-Control-Max-Age") != "600" || h.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("preflight %s %s asking %q: %d %v", tc.method, tc.path, tc.headers, resp.StatusCode, h)
			}
			vary := strings.Join(h.Values("Vary"), ",")
			for _, v := range []string{"Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"} {
				if !strings.Contains(vary, v) {
					t.Errorf("preflight %s %s: Vary %q lacks %s", tc.method, tc.path, vary, v)
				}
			}
			if resp := preflight(evil, tc.method, tc.path, tc.headers); resp.StatusCode != http.StatusForbidden ||
				resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Methods") != "" ||
				resp.Header.Get("Access-Control-Allow-Headers") != "" {
				t.Errorf("preflight %s %s from a disallowed origin: %d %v", tc.method, tc.path, resp.StatusCode, resp.Header)
			}
		}

		// The calls the preflights were for, as WeWeb sends them.
		code, hdr, me := apiCall(t, "PATCH", api+"/me", map[string]any{"name": "Ada L."},
			map[string]string{"Origin": app, "Authorization": "Bearer " + at, "ww-retry": "true"})
		if code != 200 || me["name"] != "Ada L." || hdr.Get("Access-Control-Allow-Origin") != app {
			t.Fatalf("PATCH /me from the app: %d %v %v", code, me, hdr)
		}
		code, hdr, _ = apiCall(t, "GET", api+"/me", nil, map[string]string{"Origin": app, "X-Auth-Token": at})
		if code != 200 || hdr.Get("Access-Control-Allow-Origin") != app {
			t.Fatalf("GET /me with the custom header from the app: %d %v", code, hdr)
		}
		code, hdr, _ = apiCall(t, "GET", api+"/me", nil, map[string]string{"Origin": app, "Authorization": "Bearer not-a-token"})
		if code != 401 || hdr.Get("Access-Control-Allow-Origin") != app ||
			!strings.Contains(hdr.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
			t.Fatalf("a 401 must reach the app's interceptor: %d %v", code, hdr)
		}
		code, hdr, _ = apiCall(t, "GET", api+"/me", nil, map[string]string{"Origin": evil, "Authorization": "Bearer " + at})
		if hdr.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("a disallowed origin got CORS headers: %d %v", code, hdr)
		}
	})
}

// When the origins cannot be read (here: the table is gone behind the server's back), a token API preflight and a
// refresh from the app both get 503 temporarily_unavailable with Retry-After and a CORS header the app can read,
// and the refresh is not run: once the table is back, the same refresh token works (rotation is on, so a token
// spent during the outage would now be reuse).
func TestCORSOriginLookupFailureIs503(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		api := srv.URL + "/api/v1/auth"
		const app = "https://my-app.weweb.io"
		code, _, signup := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": "ada@example.com",
			"password": "violet-tractor-47", "name": "Ada"}, map[string]string{"Origin": app})
		rt, _ := signup["refresh_token"].(string)
		if code != 201 || rt == "" {
			t.Fatalf("signup: %d %v", code, signup)
		}

		execSQL(t, env, "ALTER TABLE client_origins RENAME TO client_origins_gone")
		for _, path := range []string{"/refresh", "/me"} {
			req, _ := http.NewRequest(http.MethodOptions, api+path, nil)
			req.Header.Set("Origin", app)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
			code, hdr, body := do(t, req)
			if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "5" || body["error"] != "temporarily_unavailable" ||
				hdr.Get("Access-Control-Allow-Origin") != app || hdr.Get("Access-Control-Allow-Methods") != "" {
				t.Errorf("preflight %s during the outage: %d %v %v", path, code, hdr, body)
			}
		}
		code, hdr, body := apiCall(t, "POST", api+"/refresh", map[string]any{"refresh_token": rt}, map[string]string{"Origin": app})
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "5" || body["error"] != "temporarily_unavailable" ||
			body["access_token"] != nil || hdr.Get("Access-Control-Allow-Origin") != app ||
			!strings.Contains(hdr.Get("Access-Control-Expose-Headers"), "Retry-After") {
			t.Fatalf("refresh during the outage: %d %v %v", code, hdr, body)
		}

		execSQL(t, env, "ALTER TABLE client_origins_gone RENAME TO client_origins")
		code, hdr, body = apiCall(t, "POST", api+"/refresh", map[string]any{"refresh_token": rt}, map[string]string{"Origin": app})
		if code != http.StatusOK || body["access_token"] == nil || hdr.Get("Access-Control-Allow-Origin") != app {
			t.Fatalf("the same refresh token after the outage: %d %v; it was spent while the origin check failed", code, body)
		}
	})
}
