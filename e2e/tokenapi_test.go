package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// Who may use what: the token API trusts only first-party tokens and their scopes, the admin API only admin
// clients (within their pools), introspection only clients, revocation only the token's own client.

// A third-party app's token, even one the user granted every scope, opens none of the token API: it cannot read
// the user, rename them, list or end their sessions, change their password or sign them out.
func TestTokenAPIRefusesThirdPartyTokens(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env) // "spa" is a third-party app
		b := newBrowser(t, spaCallback)
		openidOnly, claims := e.signedIn(t, b, "openid")
		everything, _ := e.signedIn(t, b)
		sid, _ := claims["sid"].(string)
		if sid == "" {
			t.Fatalf("ID token has no sid: %v", claims)
		}
		api := e.srv.URL + "/api/v1/auth"
		for _, tok := range []string{openidOnly.AccessToken, everything.AccessToken} {
			for _, tc := range []struct {
				method, path string
				body         any
			}{
				{"GET", "/me", nil},
				{"PATCH", "/me", map[string]any{"name": "Mallory"}},
				{"GET", "/sessions", nil},
				{"DELETE", "/sessions", nil},
				{"DELETE", "/sessions/" + sid, nil},
				{"POST", "/password", map[string]any{"current_password": adaPassword, "new_password": "a-much-better-passphrase"}},
				{"POST", "/logout", nil},
			} {
				code, hdr, body := apiCall(t, tc.method, api+tc.path, tc.body, bearerHeader(tok))
				if code != http.StatusUnauthorized || body["error"] != "invalid_token" ||
					hdr.Get("WWW-Authenticate") != `Bearer realm="latchkey", error="invalid_token"` {
					t.Errorf("%s %s with a third-party token: %d %v %q, want 401 invalid_token", tc.method, tc.path, code, body, hdr.Get("WWW-Authenticate"))
				}
			}
		}
		// Nothing changed: same name, the session and its tokens alive, the password as it was.
		code, _, ui := apiCall(t, "GET", e.srv.URL+"/userinfo", nil, bearerHeader(everything.AccessToken))
		if code != 200 || ui["name"] != "Ada Lovelace" {
			t.Fatalf("userinfo after the attempts: %d %v", code, ui)
		}
		out := env.cli(t, "sessions", "list", "--user", adaEmail, "--json")
		if !strings.Contains(out, sid) {
			t.Fatalf("the browser session is gone:\n%s", out)
		}

		// A first-party app's client_credentials token is not a user's either.
		svc := env.createClient(t, "--name", "own-backend", "--first-party", "--grant-types", "client_credentials", "--scopes", "openid")
		_, _, tb := postForm(t, e.srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc.ClientID, svc.ClientSecret)
		cc, _ := tb["access_token"].(string)
		if code, _, body := apiCall(t, "GET", api+"/me", nil, bearerHeader(cc)); code != 401 || body["error"] != "invalid_token" {
			t.Fatalf("/me with a client_credentials token: %d %v", code, body)
		}
	})
}

// A first-party token reads and changes only what its scopes grant; one with every scope sees the whole user as
// before (WeWeb maps all of it).
func TestTokenAPIScopesLimitTheUser(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		api := srv.URL + "/api/v1/auth"
		if code, _, b := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": "ada@example.com",
			"password": "violet-tractor-47", "name": "Ada"}, nil); code != 201 {
			t.Fatalf("signup: %d %v", code, b)
		}
		login := func(scope string) string {
			body := map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}
			if scope != "" {
				body["scope"] = scope
			}
			code, _, b := apiCall(t, "POST", api+"/login", body, nil)
			if code != 200 {
				t.Fatalf("login with scope %q: %d %v", scope, code, b)
			}
			return b["access_token"].(string)
		}
		keys := func(m map[string]any) []string {
			var k []string
			for key := range m {
				k = append(k, key)
			}
			sort.Strings(k)
			return k
		}
		for _, tc := range []struct {
			scope string
			want  []string
		}{
			{"openid", []string{"created_at", "id", "pool"}},
			{"openid email", []string{"created_at", "email", "email_verified", "id", "pool"}},
			{"openid roles", []string{"created_at", "id", "pool", "roles"}},
			{"openid profile", []string{"created_at", "extras", "id", "name", "pool", "updated_at"}},
			{"", []string{"created_at", "email", "email_verified", "extras", "id", "name", "pool", "roles", "updated_at"}},
		} {
			code, _, me := apiCall(t, "GET", api+"/me", nil, bearerHeader(login(tc.scope)))
			if code != 200 || !reflect.DeepEqual(keys(me), tc.want) {
				t.Errorf("/me with scope %q: %d %v, want exactly %v", tc.scope, code, keys(me), tc.want)
			}
			if tc.scope == "" && (me["email"] != "ada@example.com" || me["name"] != "Ada" || !reflect.DeepEqual(me["roles"], []any{"customer"})) {
				t.Errorf("/me with every scope = %v", me)
			}
		}

		// PATCH /me needs profile.
		noProfile := login("openid email roles")
		code, hdr, body := apiCall(t, "PATCH", api+"/me", map[string]any{"name": "Mallory"}, bearerHeader(noProfile))
		if code != http.StatusForbidden || body["error"] != "insufficient_scope" ||
			hdr.Get("WWW-Authenticate") != `Bearer realm="latchkey", error="insufficient_scope", scope="profile"` {
			t.Fatalf("PATCH /me without profile: %d %v %q", code, body, hdr.Get("WWW-Authenticate"))
		}
		if code, _, me := apiCall(t, "PATCH", api+"/me", map[string]any{"name": "Ada L."}, bearerHeader(login("openid profile"))); code != 200 || me["name"] != "Ada L." {
			t.Fatalf("PATCH /me with profile: %d %v", code, me)
		}
		// The session calls need no scope beyond being our app's token.
		if code, _, b := apiCall(t, "GET", api+"/sessions", nil, bearerHeader(noProfile)); code != 200 {
			t.Fatalf("GET /sessions with a narrow first-party token: %d %v", code, b)
		}
	})
}

// apiCall sends a JSON request to the token API and decodes the JSON answer.
func apiCall(t *testing.T, method, endpoint string, body any, headers map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	var rdr *bytes.Reader
	switch b := body.(type) {
	case nil:
		rdr = bytes.NewReader(nil)
	case string:
		rdr = bytes.NewReader([]byte(b))
	default:
		raw, _ := json.Marshal(b)
		rdr = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, endpoint, rdr)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func bearerHeader(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// noCodeFixture: a "customers" pool with sign-up and a default role, and a first-party app in it.
func noCodeFixture(t *testing.T, env testEnv) (*server, string) {
	t.Helper()
	return noCodeFixtureAt(t, env, nil)
}

// noCodeFixtureAt is noCodeFixture with the sign-in throttle on clock (nil: the real one). A test that expects a
// block to hold freezes the clock, so a slow machine cannot outlast the block between two requests.
func noCodeFixtureAt(t *testing.T, env testEnv, clock *testClock) (*server, string) {
	t.Helper()
	env["LATCHKEY_API_TOKEN_HEADER"] = "X-Auth-Token"
	env.cli(t, "pools", "create", "customers", "--default-roles", "customer")
	app := env.createClient(t, "--name", "my-weweb-app", "--first-party", "--pool", "customers",
		"--allowed-origins", "https://my-app.weweb.io", "--scopes", "openid profile email roles offline_access")
	if clock != nil {
		return startServerAt(t, env, clock, &testLogWriter{t: t}), app.ClientID
	}
	return env.startServer(t), app.ClientID
}

// The sequence a WeWeb (or Bubble) app runs: signup, me, refresh, me with the new token, the old refresh token
// refused, logout, me refused.
func TestTokenAPIWeWebSequence(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		api := srv.URL + "/api/v1/auth"

		code, _, signup := apiCall(t, "POST", api+"/signup", map[string]any{
			"client_id": clientID, "email": "Ada@Example.com", "password": "violet-tractor-47", "name": "Ada",
		}, map[string]string{"Origin": "https://my-app.weweb.io"})
		if code != 201 {
			t.Fatalf("signup: %d %v", code, signup)
		}
		at, _ := signup["access_token"].(string)
		rt, _ := signup["refresh_token"].(string)
		user, _ := signup["user"].(map[string]any)
		if at == "" || rt == "" || signup["token_type"] != "Bearer" || signup["expires_in"] == nil || user["pool"] != "customers" {
			t.Fatalf("signup response = %v", signup)
		}

		// /me answers with Bearer and with the custom header, in the shape WeWeb maps (roles array, pool, extras).
		for _, h := range []map[string]string{bearerHeader(at), {"X-Auth-Token": at}} {
			code, _, me := apiCall(t, "GET", api+"/me", nil, h)
			roles, _ := me["roles"].([]any)
			if code != 200 || me["email"] != "Ada@Example.com" || me["name"] != "Ada" || len(roles) != 1 || roles[0] != "customer" ||
				me["pool"] != "customers" || me["extras"] == nil {
				t.Fatalf("me via %v: %d %v", h, code, me)
			}
		}

		// The same tokens work at the OAuth endpoints: introspection and userinfo.
		rs := env.createClient(t, "--name", "xano-backend")
		if _, _, in := postForm(t, srv.URL+"/oauth2/introspect", url.Values{"token": {at}}, rs.ClientID, rs.ClientSecret); in["active"] != true || in["pool"] != "customers" {
			t.Fatalf("introspection of an API token: %v", in)
		}
		if code, _, ui := apiCall(t, "GET", srv.URL+"/userinfo", nil, bearerHeader(at)); code != 200 || ui["email"] != "Ada@Example.com" {
			t.Fatalf("userinfo with an API token: %d %v", code, ui)
		}

		code, _, ref := apiCall(t, "POST", api+"/refresh", map[string]any{"refresh_token": rt}, nil)
		at2, _ := ref["access_token"].(string)
		rt2, _ := ref["refresh_token"].(string)
		if code != 200 || at2 == "" || rt2 == "" || rt2 == rt {
			t.Fatalf("refresh: %d %v", code, ref)
		}
		if code, _, me := apiCall(t, "GET", api+"/me", nil, bearerHeader(at2)); code != 200 || me["email"] != "Ada@Example.com" {
			t.Fatalf("me with the refreshed token: %d %v", code, me)
		}
		if code, _, body := apiCall(t, "POST", api+"/refresh", map[string]any{"refresh_token": rt}, nil); code != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("old refresh token: %d %v, want 400 invalid_grant", code, body)
		}
		// Reuse revoked the whole grant, like the OAuth token endpoint does.
		if code, _, _ := apiCall(t, "GET", api+"/me", nil, bearerHeader(at2)); code != 401 {
			t.Fatalf("after refresh-token reuse the grant's access token still works: %d", code)
		}

		// Sign in again, then log out: the session ends and its tokens stop working.
		code, _, login := apiCall(t, "POST", api+"/login", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		if code != 200 {
			t.Fatalf("login: %d %v", code, login)
		}
		at3, _ := login["access_token"].(string)
		rt3, _ := login["refresh_token"].(string)
		if code, _, _ := apiCall(t, "POST", api+"/logout", nil, bearerHeader(at3)); code != 204 {
			t.Fatalf("logout: %d", code)
		}
		code, hdr, body := apiCall(t, "GET", api+"/me", nil, bearerHeader(at3))
		if code != 401 || body["error"] != "invalid_token" || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("me after logout: %d %v %v", code, body, hdr)
		}
		if code, _, _ := apiCall(t, "POST", api+"/refresh", map[string]any{"refresh_token": rt3}, nil); code == 200 {
			t.Fatal("refresh token still works after logout")
		}
	})
}

func TestTokenAPISessionsPasswordAndPools(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		api := srv.URL + "/api/v1/auth"
		// The same email in the default pool is a different user with a different password.
		env.cli(t, "users", "create", "--email", "ada@example.com", "--password", "staff-password-123")

		login := func(ua, password string) (int, map[string]any) {
			code, _, body := apiCall(t, "POST", api+"/login", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": password},
				map[string]string{"User-Agent": ua})
			return code, body
		}
		if code, _, b := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil); code != 201 {
			t.Fatalf("signup into customers while the email exists in default: %d %v", code, b)
		}
		if code, _ := login("curl/8", "staff-password-123"); code != 401 {
			t.Fatalf("the default pool's password worked in the customers pool: %d", code)
		}
		_, phone := login("Mozilla/5.0 (iPhone) Safari/605", "violet-tractor-47")
		_, laptop := login("Mozilla/5.0 (Windows NT 10.0) Firefox/140.0", "violet-tractor-47")
		phoneAT, laptopAT := phone["access_token"].(string), laptop["access_token"].(string)

		code, _, list := apiCall(t, "GET", api+"/sessions", nil, bearerHeader(laptopAT))
		sessions, _ := list["sessions"].([]any)
		if code != 200 || len(sessions) != 3 { // signup, phone, laptop
			t.Fatalf("sessions: %d %v", code, list)
		}
		var phoneSID string
		currents := 0
		for _, s := range sessions {
			m := s.(map[string]any)
			if m["current"] == true {
				currents++
			}
			if m["device"] == "Safari on iPhone" {
				phoneSID, _ = m["id"].(string)
			}
			if m["ip"] == "" || m["created_at"] == nil || m["last_active_at"] == nil {
				t.Errorf("session row lacks fields: %v", m)
			}
		}
		if currents != 1 || phoneSID == "" {
			t.Fatalf("sessions = %v", sessions)
		}
		if code, _, _ := apiCall(t, "DELETE", api+"/sessions/"+phoneSID, nil, bearerHeader(laptopAT)); code != 204 {
			t.Fatalf("end the phone session: %d", code)
		}
		if code, _, _ := apiCall(t, "GET", api+"/me", nil, bearerHeader(phoneAT)); code != 401 {
			t.Fatal("the ended session's token still works")
		}
		if code, _, _ := apiCall(t, "DELETE", api+"/sessions/ses_doesnotexist", nil, bearerHeader(laptopAT)); code != 404 {
			t.Fatalf("ending an unknown session: %d", code)
		}

		// Changing the password ends the other sessions and keeps this one.
		code, _, body := apiCall(t, "POST", api+"/password", map[string]any{"current_password": "violet-tractor-47", "new_password": "password123"}, bearerHeader(laptopAT))
		if code != 400 || body["error"] != "weak_password" {
			t.Fatalf("common new password: %d %v", code, body)
		}
		code, _, body = apiCall(t, "POST", api+"/password", map[string]any{"current_password": "violet-tractor-47", "new_password": "a-much-better-passphrase"}, bearerHeader(laptopAT))
		if code != 200 || body["sessions_ended"] != float64(1) {
			t.Fatalf("password change: %d %v", code, body)
		}
		if code, _, _ := apiCall(t, "GET", api+"/me", nil, bearerHeader(laptopAT)); code != 200 {
			t.Fatal("the session that changed the password was ended")
		}
		if code, _ := login("curl/8", "a-much-better-passphrase"); code != 200 {
			t.Fatal("new password does not work")
		}

		// PATCH /me changes the user's own profile.
		code, _, me := apiCall(t, "PATCH", api+"/me", map[string]any{"name": "Ada L."}, bearerHeader(laptopAT))
		if code != 200 || me["name"] != "Ada L." {
			t.Fatalf("patch me: %d %v", code, me)
		}
		if code, _, body := apiCall(t, "PATCH", api+"/me", map[string]any{"roles": []string{"admin"}}, bearerHeader(laptopAT)); code != 400 {
			t.Fatalf("a user set their own roles: %d %v", code, body)
		}
	})
}

func TestTokenAPIThrottlesPasswordGuessing(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	srv, clientID := noCodeFixtureAt(t, env, &testClock{now: time.Now()})
	api := srv.URL + "/api/v1/auth"
	apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": "bob@example.com", "password": "violet-tractor-47"}, nil)
	var last int
	var hdr http.Header
	for i := 0; i < 7; i++ {
		last, hdr, _ = apiCall(t, "POST", api+"/login", map[string]any{"client_id": clientID, "email": "bob@example.com", "password": "wrong-guess"}, nil)
	}
	if last != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("after 7 wrong guesses: %d Retry-After=%q, want 429 with Retry-After", last, hdr.Get("Retry-After"))
	}
	// Even the right password waits out the back-off (it is short, and capped: never a permanent lock-out).
	if code, _, _ := apiCall(t, "POST", api+"/login", map[string]any{"client_id": clientID, "email": "bob@example.com", "password": "violet-tractor-47"}, nil); code != http.StatusTooManyRequests {
		t.Fatalf("right password during back-off: %d", code)
	}
}

func TestTokenAPIBadInput(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		api := srv.URL + "/api/v1/auth"
		third := env.createClient(t, "--name", "third-party", "--scopes", "openid")
		closed := env.createClient(t, "--name", "no-signup", "--first-party", "--pool", "customers", "--allow-signup=false")
		good := map[string]any{"client_id": clientID, "email": "carol@example.com", "password": "violet-tractor-47"}
		with := func(k string, v any) map[string]any {
			m := map[string]any{}
			for kk, vv := range good {
				m[kk] = vv
			}
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
			return m
		}
		for _, tc := range []struct {
			name    string
			method  string
			path    string
			body    any
			headers map[string]string
			status  int
			errCode string
		}{
			{"malformed JSON", "POST", "/signup", `{"client_id":`, nil, 400, "invalid_request"},
			{"two JSON objects", "POST", "/signup", `{} {}`, nil, 400, "invalid_request"},
			{"JSON array", "POST", "/signup", `[]`, nil, 400, "invalid_request"},
			{"wrong field type", "POST", "/signup", `{"client_id": 5}`, nil, 400, "invalid_request"},
			{"unknown field", "POST", "/signup", with("admin", true), nil, 400, "invalid_request"},
			{"form instead of JSON", "POST", "/login", nil, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "invalid_request"},
			{"missing email", "POST", "/signup", with("email", nil), nil, 400, "invalid_request"},
			{"missing client", "POST", "/login", with("client_id", nil), nil, 400, "invalid_request"},
			{"unknown client", "POST", "/login", with("client_id", "nope"), nil, 401, "invalid_client"},
			{"third-party client", "POST", "/login", with("client_id", third.ClientID), nil, 401, "invalid_client"},
			{"signup disabled for the client", "POST", "/signup", with("client_id", closed.ClientID), nil, 403, "signup_disabled"},
			{"weak password", "POST", "/signup", with("password", "123456"), nil, 400, "weak_password"},
			{"bad email", "POST", "/signup", with("email", "not-an-email"), nil, 400, "invalid_request"},
			{"oversized body", "POST", "/signup", with("name", strings.Repeat("x", 100<<10)), nil, 413, "invalid_request"},
			{"wrong origin", "POST", "/login", good, map[string]string{"Origin": "https://evil.example"}, 403, "invalid_origin"},
			{"GET login", "GET", "/login", nil, nil, 405, "invalid_request"},
			{"me without a token", "GET", "/me", nil, nil, 401, "invalid_token"},
			{"me with garbage", "GET", "/me", nil, bearerHeader("garbage"), 401, "invalid_token"},
			{"refresh without token", "POST", "/refresh", map[string]any{}, nil, 400, "invalid_request"},
			{"refresh with garbage", "POST", "/refresh", map[string]any{"refresh_token": "lk_rt_x.y"}, nil, 400, "invalid_grant"},
			{"sessions without a token", "GET", "/sessions", nil, nil, 401, "invalid_token"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, hdr, body := apiCall(t, tc.method, api+tc.path, tc.body, tc.headers)
				if code != tc.status || body["error"] != tc.errCode {
					t.Fatalf("got %d %v, want %d %s", code, body, tc.status, tc.errCode)
				}
				if !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
					t.Errorf("Content-Type = %q", hdr.Get("Content-Type"))
				}
			})
		}
		// None of the failed signups left a user behind.
		out := env.cli(t, "users", "list", "--pool", "customers", "--json")
		if strings.Contains(out, "carol@example.com") {
			t.Fatalf("a failed signup left a user row:\n%s", out)
		}

		// CORS preflight from the app's origin is answered; credentials are never allowed.
		req, _ := http.NewRequest(http.MethodOptions, api+"/login", nil)
		req.Header.Set("Origin", "https://my-app.weweb.io")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://my-app.weweb.io" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
	})
}

// WeWeb's Token-Based Auth plugin with auth type Basic sends "Authorization: Basic <access token>", the raw token.
// Every authenticated call takes it as it takes a bearer token; garbage, or the token base64-encoded, is 401
// invalid_token with the bearer challenge; no token reaches the log.
func TestTokenAPIBasicRawToken(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env["LATCHKEY_LOG_LEVEL"] = "debug"
		env.cli(t, "pools", "create", "customers")
		app := env.createClient(t, "--name", "weweb-basic", "--first-party", "--pool", "customers",
			"--allowed-origins", "https://my-app.weweb.io", "--scopes", "openid profile email roles offline_access")
		logs := &lockedBuffer{}
		srv := env.startServerLoggingTo(t, logs)
		api := srv.URL + "/api/v1/auth"
		basic := func(tok string) map[string]string {
			return map[string]string{"Authorization": "Basic " + tok, "Origin": "https://my-app.weweb.io"}
		}
		signIn := func() (string, string) {
			code, _, b := apiCall(t, "POST", api+"/login", map[string]any{"client_id": app.ClientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
			if code != 200 {
				t.Fatalf("login: %d %v", code, b)
			}
			at, _ := b["access_token"].(string)
			sid, _ := b["session_id"].(string)
			return at, sid
		}
		code, _, b := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": app.ClientID, "email": "ada@example.com", "password": "violet-tractor-47", "name": "Ada"}, nil)
		if code != 201 {
			t.Fatalf("signup: %d %v", code, b)
		}
		at, _ := b["access_token"].(string)
		other, otherSID := signIn()

		if code, hdr, me := apiCall(t, "GET", api+"/me", nil, basic(at)); code != 200 || me["email"] != "ada@example.com" ||
			hdr.Get("Access-Control-Allow-Origin") != "https://my-app.weweb.io" {
			t.Fatalf("GET /me with Basic: %d %v", code, me)
		}
		if code, _, me := apiCall(t, "PATCH", api+"/me", map[string]any{"name": "Ada L."}, basic(at)); code != 200 || me["name"] != "Ada L." {
			t.Fatalf("PATCH /me with Basic: %d %v", code, me)
		}
		if code, _, l := apiCall(t, "GET", api+"/sessions", nil, basic(at)); code != 200 || len(l["sessions"].([]any)) != 2 {
			t.Fatalf("GET /sessions with Basic: %d %v", code, l)
		}
		if code, _, _ := apiCall(t, "DELETE", api+"/sessions/"+otherSID, nil, basic(at)); code != 204 {
			t.Fatalf("DELETE /sessions/{id} with Basic: %d", code)
		}
		if code, _, _ := apiCall(t, "GET", api+"/me", nil, basic(other)); code != 401 {
			t.Fatalf("the ended session's token still works: %d", code)
		}
		third, _ := signIn()
		if code, _, r := apiCall(t, "DELETE", api+"/sessions", nil, basic(at)); code != 200 || r["sessions_ended"] != float64(1) {
			t.Fatalf("DELETE /sessions with Basic: %d %v", code, r)
		}
		if code, _, r := apiCall(t, "POST", api+"/password", map[string]any{"current_password": "violet-tractor-47", "new_password": "a-much-better-passphrase"}, basic(at)); code != 200 {
			t.Fatalf("POST /password with Basic: %d %v", code, r)
		}

		// Bad input: the same 401 and challenge as a bad bearer token.
		encoded := base64.StdEncoding.EncodeToString([]byte(at))
		for _, bad := range []string{"garbage", "!!%%$$", encoded, base64.StdEncoding.EncodeToString([]byte("ada@example.com:" + at)), third} {
			for _, path := range []string{"/me", "/sessions"} {
				code, hdr, body := apiCall(t, "GET", api+path, nil, basic(bad))
				if code != 401 || body["error"] != "invalid_token" || hdr.Get("WWW-Authenticate") != `Bearer realm="latchkey", error="invalid_token"` {
					t.Errorf("GET %s with Basic %.12s…: %d %v %q", path, bad, code, body, hdr.Get("WWW-Authenticate"))
				}
			}
		}
		if code, _, _ := apiCall(t, "POST", api+"/logout", nil, basic(at)); code != 204 {
			t.Fatalf("POST /logout with Basic: %d", code)
		}
		if code, _, _ := apiCall(t, "GET", api+"/me", nil, basic(at)); code != 401 {
			t.Fatalf("the token works after logout: %d", code)
		}
		log := logs.String()
		for _, secret := range []string{at, other, third, encoded, "!!%%$$"} {
			if strings.Contains(log, secret) {
				t.Errorf("a token reached the log: %.12s…", secret)
			}
		}
	})
}

// What a mobile builder stores from a sign-in (FlutterFlow: authentication token, refresh token, token expiry time,
// user id): signup, login and refresh carry expires_at, the access token's absolute expiry in Unix seconds, beside
// expires_in; signup and login carry user.id, the id /me and the token's sub name.
func TestTokenAPIExpiresAtAndUserID(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		api := srv.URL + "/api/v1/auth"
		check := func(what string, body map[string]any) {
			t.Helper()
			in, okIn := body["expires_in"].(float64)
			at, okAt := body["expires_at"].(float64)
			now := float64(time.Now().Unix())
			if !okIn || !okAt || in <= 0 || at < now+in-5 || at > now+in+5 {
				t.Errorf("%s: expires_in %v, expires_at %v; now %v", what, body["expires_in"], body["expires_at"], now)
			}
		}
		creds := map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}
		code, _, signup := apiCall(t, "POST", api+"/signup", creds, nil)
		if code != 201 {
			t.Fatalf("signup: %d %v", code, signup)
		}
		check("signup", signup)
		code, _, login := apiCall(t, "POST", api+"/login", creds, nil)
		if code != 200 {
			t.Fatalf("login: %d %v", code, login)
		}
		check("login", login)
		at, _ := login["access_token"].(string)
		_, _, me := apiCall(t, "GET", api+"/me", nil, bearerHeader(at))
		id, _ := me["id"].(string)
		for what, body := range map[string]map[string]any{"signup": signup, "login": login} {
			if u, _ := body["user"].(map[string]any); id == "" || u["id"] != id {
				t.Errorf("%s user = %v, want id %q", what, body["user"], id)
			}
		}
		rt, _ := login["refresh_token"].(string)
		code, _, refreshed := apiCall(t, "POST", api+"/refresh", map[string]any{"refresh_token": rt}, nil)
		if code != 200 {
			t.Fatalf("refresh: %d %v", code, refreshed)
		}
		check("refresh", refreshed)
		// The ID token, when there is one, names the same user.
		if idt, _ := login["id_token"].(string); idt != "" {
			parts := strings.Split(idt, ".")
			raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
			var claims map[string]any
			_ = json.Unmarshal(raw, &claims)
			if claims["sub"] != id {
				t.Errorf("id_token sub %v, user.id %q", claims["sub"], id)
			}
		}
	})
}
