package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

const (
	fuzzAppID     = "fuzz-app"
	fuzzAppOrigin = "https://app.example"
	// fuzzMinter is the account the harness signs in as to get a live token; the corpus never names it, so
	// fuzzed wrong passwords do not throttle it.
	fuzzMinterEmail    = "minter@example.com"
	fuzzMinterPassword = "violet-tractor-47-minter"
	// validToken in a fuzzed token is replaced by a live access token of the minter.
	validToken = "$valid"
	// The fuzzed requests and the harness's own sign-ins come from different addresses, so the per-IP
	// throttle the fuzzer trips never blocks the harness.
	fuzzRemote    = "192.0.2.1:40000"
	harnessRemote = "198.51.100.9:40000"
)

// fuzzAPIRoutes are the token API's routes; the fuzzer picks one by index.
var fuzzAPIRoutes = []struct{ method, path string }{
	{"POST", "/signup"}, {"POST", "/login"}, {"POST", "/refresh"}, {"GET", "/me"}, {"PATCH", "/me"},
	{"POST", "/logout"}, {"POST", "/password"}, {"GET", "/sessions"}, {"DELETE", "/sessions"}, {"DELETE", "/sessions/"},
	{"PUT", "/me"},
}

// tokenAPIFixture is the setup the token API targets need: a pool with sign-up, a first-party app in it and an
// account to mint live tokens with.
func tokenAPIFixture(f *testing.F) http.Handler {
	return fuzzApp(f,
		[]string{"pools", "create", "--name", "customers", "--default-roles", "customer"},
		[]string{"clients", "create", "--id", fuzzAppID, "--name", "app", "--first-party", "--pool", "customers",
			"--allowed-origins", fuzzAppOrigin, "--scopes", "openid profile email roles offline_access"},
		[]string{"users", "create", "--pool", "customers", "--email", fuzzMinterEmail, "--password", fuzzMinterPassword},
	)
}

// liveToken keeps one live access token of the minter, signing in again when a fuzzed request ended it.
type liveToken struct {
	h   http.Handler
	tok string
}

func (l *liveToken) get(t *testing.T) string {
	if l.tok != "" {
		rec := serve(l.h, httptest.NewRequest("GET", "/api/v1/auth/me", nil), "Bearer "+l.tok, harnessRemote)
		if rec.Code == http.StatusOK {
			return l.tok
		}
	}
	body := `{"client_id":"` + fuzzAppID + `","email":"` + fuzzMinterEmail + `","password":"` + fuzzMinterPassword + `"}`
	req := httptest.NewRequest("POST", "/api/v1/auth/login", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := serve(l.h, req, "", harnessRemote)
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	tok, _ := m["access_token"].(string)
	if rec.Code != http.StatusOK || tok == "" {
		t.Fatalf("harness sign-in: %d %s", rec.Code, rec.Body)
	}
	l.tok = tok
	return tok
}

func serve(h http.Handler, req *http.Request, authz, remote string) *httptest.ResponseRecorder {
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// FuzzTokenAPI sends arbitrary JSON bodies, path ids and tokens to every /api/v1/auth route. Whatever arrives, the
// answer is never a 5xx or a panic, an error is the API's JSON error shape, and a token is never sent cacheable.
func FuzzTokenAPI(f *testing.F) {
	for _, seed := range []struct {
		route       uint8
		body, token string
		origin      string
	}{
		{0, `{"client_id":"fuzz-app","email":"ada@example.com","password":"violet-tractor-47","name":"Ada"}`, "", ""},
		{0, `{"client_id":"fuzz-app","email":"ada@example.com","password":"x"}`, "", fuzzAppOrigin},
		{0, `{"client_id":"fuzz-app","email":"ada\u0000@example.com","password":"violet-tractor-47"}`, "", ""},
		{0, "{\"client_id\":\"fuzz-app\",\"email\":\"ad\xffa@example.com\",\"password\":\"violet-tractor-47\"}", "", ""},
		{0, `{"client_id":"fuzz-app","email":"` + strings.Repeat("a", 300) + `@example.com","password":"violet-tractor-47"}`, "", ""},
		{0, `{"client_id":"fuzz-app","email":"b@example.com","password":"violet-tractor-47","name":"` + strings.Repeat("n", 201) + `"}`, "", ""},
		{0, `{"client_id":"fuzz-app","email":"b@example.com","password":"violet-tractor-47","scope":"openid latchkey.admin"}`, "", ""},
		{1, `{"client_id":"fuzz-app","email":"ada@example.com","password":"violet-tractor-47"}`, "", ""},
		{1, `{"client_id":"fuzz-app\u0000","email":"ada@example.com","password":"p"}`, "", ""},
		{1, `{"client_id":"fuzz-app","email":"ada@example.com","password":"` + strings.Repeat("p", 2000) + `"}`, "", ""},
		{1, `{"client_id":"fuzz-app","email":"ada@example.com","password":"p","extra":1}`, "", ""},
		{1, `{"client_id":"fuzz-app","email":"ada@example.com","password":"p"}{}`, "", ""},
		{1, `{"client_id":"fuzz-app","email":"ada@example.com","password":"p"}`, "", "https://evil.example"},
		{1, `{"client_id":["fuzz-app"]}`, "", ""},
		{1, ``, "", ""},
		{1, `null`, "", ""},
		{2, `{"refresh_token":"lk_rt_AAAA.BBBB"}`, "", ""},
		{2, `{"refresh_token":"lk_rt_\u0000","client_id":"fuzz-app"}`, "", ""},
		{2, `{"refresh_token":"x","client_id":"fuzz-app","client_secret":"s"}`, "", ""},
		{3, ``, validToken, ""},
		{3, ``, "lk_at_AAAA.BBBB", ""},
		{3, ``, "\xff\xfe", ""},
		{4, `{"name":"Ada"}`, validToken, ""},
		{4, `{"name":"A\u0000da"}`, validToken, ""},
		{4, `{"name":null}`, validToken, ""},
		{5, ``, validToken, ""},
		{5, `{"refresh_token":"x"}`, validToken, ""},
		{6, `{"current_password":"wrong","new_password":"violet-tractor-48"}`, validToken, ""},
		{6, `{"current_password":"\u0000","new_password":"\u0000"}`, validToken, ""},
		{7, ``, validToken, ""},
		{8, ``, validToken, ""},
		{9, `ses_abc`, validToken, ""},
		{9, "ses_\x00", validToken, ""},
		{9, "\xff", validToken, ""},
		{10, `{}`, validToken, ""},
	} {
		f.Add(seed.route, seed.body, seed.token, seed.origin)
	}
	h := tokenAPIFixture(f)
	live := &liveToken{h: h}
	f.Fuzz(func(t *testing.T, route uint8, body, token, origin string) {
		token, origin = headerValue(token), headerValue(origin)
		rt := fuzzAPIRoutes[int(route)%len(fuzzAPIRoutes)]
		path := "/api/v1/auth" + rt.path
		if strings.HasSuffix(path, "/") {
			path += url.PathEscape(body) // the session id; the body goes too, as a client might send one
		}
		if strings.Contains(token, validToken) {
			token = strings.ReplaceAll(token, validToken, live.get(t))
		}
		req := httptest.NewRequest(rt.method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		authz := ""
		if token != "" {
			authz = "Bearer " + token
		}
		rec := serve(h, req, authz, fuzzRemote)
		checkAPIResponse(t, rt.method+" "+path, rec)
	})
}

// headerValue drops what a real HTTP request could not carry in a header value (control characters, surrounding
// space), keeping the rest of the fuzzed value instead of skipping the input.
func headerValue(v string) string {
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ { // bytewise: bytes that are not UTF-8 are allowed and kept
		if c := v[i]; c != 0x7f && (c >= 0x20 || c == '\t') {
			b = append(b, c)
		}
	}
	return strings.Trim(string(b), " \t")
}

func checkAPIResponse(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	status, raw := rec.Code, rec.Body.Bytes()
	if status >= 500 {
		t.Fatalf("%s answered %d: %s", what, status, raw)
	}
	allowed := []int{200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 429}
	if !slices.Contains(allowed, status) {
		t.Fatalf("%s answered %d: %s", what, status, raw)
	}
	if status == http.StatusNoContent {
		if len(raw) != 0 {
			t.Fatalf("%s answered 204 with a body: %q", what, raw)
		}
		return
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s answered %d with Content-Type %q: %q", what, status, ct, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s answered %d with a body that is not a JSON object: %v: %q", what, status, err, raw)
	}
	errCode, _ := m["error"].(string)
	desc, _ := m["error_description"].(string)
	if status >= 400 && (errCode == "" || desc == "") {
		t.Fatalf("%s answered %d without error and error_description: %s", what, status, raw)
	}
	if status < 400 && m["error"] != nil {
		t.Fatalf("%s answered %d with an error: %s", what, status, raw)
	}
	if m["access_token"] != nil && rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%s sent a token with Cache-Control %q", what, rec.Header().Get("Cache-Control"))
	}
	if bytes.Contains(raw, []byte(fuzzMinterPassword)) {
		t.Fatalf("%s echoed a password: %s", what, raw)
	}
}
