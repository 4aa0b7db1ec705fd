package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/app"
)

const (
	fuzzClientID     = "fuzz-client"
	fuzzClientSecret = "fuzz-client-secret-0123456789-abcdefgh"
	fuzzRSID         = "fuzz-rs"
	fuzzRSSecret     = "fuzz-resource-server-secret-0123456789"
)

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// fuzzHandler opens one in-process Latchkey (SQLite in f's temp dir, the token endpoint's clients) and returns
// its HTTP handler.
func fuzzHandler(f *testing.F) http.Handler {
	f.Helper()
	return fuzzApp(f,
		[]string{"clients", "create", "--id", fuzzClientID, "--secret", fuzzClientSecret, "--name", "fuzz", "--scopes", "read write", "--audience", "https://api.example.com"},
		[]string{"clients", "create", "--id", fuzzRSID, "--secret", fuzzRSSecret, "--name", "rs"},
		[]string{"clients", "create", "--id", "fuzz-post", "--secret", fuzzClientSecret, "--name", "post", "--token-endpoint-auth-method", "client_secret_post"},
		[]string{"clients", "create", "--id", "fuzz-spa", "--public", "--name", "spa", "--redirect-uris", "http://localhost/cb"},
	)
}

// fuzzApp opens one in-process Latchkey on SQLite in f's temp dir, runs the setup commands against it and returns
// its HTTP handler: the real router with every middleware. The fuzz function's body runs once per fuzzing
// process, so every worker gets its own.
func fuzzApp(f *testing.F, setup ...[]string) http.Handler {
	f.Helper()
	env := testEnv{
		"LATCHKEY_DATABASE_URL":     "sqlite://" + filepath.Join(f.TempDir(), "fuzz.db"),
		"LATCHKEY_SECRET":           "fuzz-system-secret-0123456789abcdef-xyz",
		"LATCHKEY_LOG_LEVEL":        "error",
		"LATCHKEY_CLEANUP_INTERVAL": "0",
		"LATCHKEY_ISSUER":           "http://127.0.0.1:8080",
	}
	for _, args := range setup {
		var errOut bytes.Buffer
		if code := app.Run(context.Background(), args, strings.NewReader(""), io.Discard, &errOut, env.get); code != 0 {
			f.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
	}
	a, err := app.Open(context.Background(), nil, env.get, io.Discard)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { a.Close() })
	return a.Handler()
}

// validHeaderValue reports whether v could arrive in a real HTTP request header (RFC 9110 field-value).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == 0x7f || (c < 0x20 && c != '\t') {
			return false
		}
	}
	return v == strings.TrimSpace(v)
}

var endpointAllowedStatus = map[string][]int{
	// RFC 6749 §5.1 and §5.2, plus our 413 for an oversized body.
	"/oauth2/token": {200, 400, 401, 413},
	// RFC 7662 §2.2-2.3: 200 (active or not), 400/401 for a bad request or caller.
	"/oauth2/introspect": {200, 400, 401, 413},
	// RFC 7009 §2.2: 200, or an error response; 503 only for unsupported_token_type... which fosite answers with 400.
	"/oauth2/revoke": {200, 400, 401, 413},
}

func FuzzTokenEndpoint(f *testing.F) {
	cc := "grant_type=client_credentials"
	good := basic(fuzzClientID, fuzzClientSecret)
	rs := basic(fuzzRSID, fuzzRSSecret)
	const form = "application/x-www-form-urlencoded"
	for _, seed := range []struct {
		body, authz, contentType string
	}{
		// Valid requests.
		{cc, good, form},
		{cc + "&scope=read", good, form},
		{cc + "&scope=read+write&resource=https%3A%2F%2Fapi.example.com", good, form},
		{cc + "&audience=https://api.example.com", good, form},
		{cc + "&client_id=fuzz-post&client_secret=" + fuzzClientSecret, "", form},
		{"token=lk_at_AAAA.BBBB", rs, form},
		{"token=lk_rt_AAAA.BBBB&token_type_hint=refresh_token", rs, form},
		{"token=eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.e30.sig", good, form},
		// Invalid bodies.
		{"", good, form},
		{"grant_type=", good, form},
		{"grant_type=password&username=a&password=b", good, form},
		{"grant_type=authorization_code&code=lk_ac_x.y&redirect_uri=http://localhost/cb&client_id=fuzz-spa", "", form},
		{"grant_type=refresh_token&refresh_token=lk_rt_x.y", good, form},
		{cc + "&" + cc, good, form},
		{cc + "&scope=admin", good, form},
		{cc + "&resource=https://evil.example", good, form},
		{cc + "&scope=%zz", good, form},
		{"grant_type=%00%ff", good, form},
		{cc + ";scope=read", good, form},
		{strings.Repeat("a=b&", 500), good, form},
		{`{"grant_type":"client_credentials"}`, good, "application/json"},
		{cc, good, "multipart/form-data; boundary=x"},
		{cc, good, ""},
		{cc, good, "application/x-www-form-urlencoded; charset=utf-16"},
		{"token=&token=x", rs, form},
		{"token=" + strings.Repeat("A", 3000), rs, form},
		{cc + "&client_id=fuzz-spa", "", form},
		{cc + "&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=a.b.c", "", form},
		// Invalid Authorization headers.
		{cc, basic(fuzzClientID, "wrong"), form},
		{cc, basic("", ""), form},
		{cc, basic("%zz", "%zz"), form},
		{cc, basic("nobody", fuzzClientSecret), form},
		{cc, "Basic !!!notbase64!!!", form},
		{cc, "Basic " + base64.StdEncoding.EncodeToString([]byte("no-colon")), form},
		{cc, "Basic", form},
		{cc, "Bearer lk_at_AAAA.BBBB", form},
		{"token=lk_at_AAAA.BBBB", "Bearer lk_at_AAAA.BBBB", form},
		{cc, "Digest username=x", form},
		{cc + "&client_secret=" + fuzzClientSecret, good, form},
	} {
		f.Add(seed.body, seed.authz, seed.contentType)
	}

	h := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body, authz, contentType string) {
		if !validHeaderValue(authz) || !validHeaderValue(contentType) {
			t.Skip("not a header value a real HTTP request could carry")
		}
		for _, path := range []string{"/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"} {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			if contentType != "" {
				req.Header.Set("Content-Type", contentType)
			}
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			checkOAuthResponse(t, path, rec)
		}
	})
}

func checkOAuthResponse(t *testing.T, path string, rec *httptest.ResponseRecorder) {
	t.Helper()
	status := rec.Code
	raw := rec.Body.Bytes()
	if status >= 500 {
		t.Fatalf("%s answered %d: %s", path, status, raw)
	}
	if !slices.Contains(endpointAllowedStatus[path], status) {
		t.Fatalf("%s answered %d, not a status its RFC allows: %s", path, status, raw)
	}
	if path == "/oauth2/revoke" && status == http.StatusOK && len(bytes.TrimSpace(raw)) == 0 {
		return // RFC 7009 §2.2: success has no content to speak of
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s answered %d with Content-Type %q: %s", path, status, ct, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s answered %d with a body that is not a JSON object: %v: %q", path, status, err, raw)
	}
	errCode, isErr := m["error"].(string)
	if isErr && (status == http.StatusOK || errCode == "") {
		t.Fatalf("%s: error %q with status %d", path, errCode, status)
	}
	if status == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" && path != "/oauth2/introspect" {
		t.Errorf("%s: 401 without WWW-Authenticate: %s", path, raw)
	}
	switch path {
	case "/oauth2/token":
		tok, hasToken := m["access_token"].(string)
		if hasToken == isErr {
			t.Fatalf("token endpoint answered %d with neither or both of access_token and error: %s", status, raw)
		}
		if hasToken && (status != http.StatusOK || !strings.HasPrefix(tok, "lk_at_") || m["token_type"] == nil) {
			t.Fatalf("token response %d: %s", status, raw)
		}
		if cc := rec.Header().Get("Cache-Control"); hasToken && cc != "no-store" {
			t.Errorf("token response Cache-Control = %q, want no-store", cc)
		}
	case "/oauth2/introspect":
		active, hasActive := m["active"].(bool)
		if hasActive == isErr {
			t.Fatalf("introspection answered %d with neither or both of active and error: %s", status, raw)
		}
		if hasActive && status != http.StatusOK {
			t.Fatalf("introspection answered active=%v with status %d", active, status)
		}
	case "/oauth2/revoke":
		if !isErr {
			t.Fatalf("revocation answered %d with a JSON body that is not an error: %s", status, raw)
		}
	}
}

// The fuzz seeds are also worth running against a real listener once: what goes over the wire may differ from
// what httptest.NewRequest builds (Content-Length, Host, header canonicalisation).
func TestFuzzSeedsOverHTTP(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	env.cli(t, "clients", "create", "--id", fuzzClientID, "--secret", fuzzClientSecret, "--name", "fuzz", "--scopes", "read write")
	env.cli(t, "clients", "create", "--id", fuzzRSID, "--secret", fuzzRSSecret, "--name", "rs")
	srv := env.startServer(t)
	for _, tc := range []struct{ body, authz string }{
		{"grant_type=client_credentials&scope=read", basic(fuzzClientID, fuzzClientSecret)},
		{"grant_type=client_credentials", "Basic !!!"},
		{"token=lk_at_AAAA.BBBB", basic(fuzzRSID, fuzzRSSecret)},
		{"grant_type=%zz", basic(fuzzClientID, fuzzClientSecret)},
	} {
		for _, path := range []string{"/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", tc.authz)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			for k, v := range resp.Header {
				rec.Header()[k] = v
			}
			rec.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(rec, resp.Body)
			resp.Body.Close()
			checkOAuthResponse(t, path, rec)
		}
	}
}
