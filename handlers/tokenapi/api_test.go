package tokenapi

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// fakeOAuth is fosite's provider with only what a test calls; anything else panics.
type fakeOAuth struct {
	fosite.OAuth2Provider
	introspectErr error
	introspected  []string // the tokens asked about
}

func (f *fakeOAuth) IntrospectToken(ctx context.Context, token string, use fosite.TokenUse, s fosite.Session, scopes ...string) (fosite.TokenUse, fosite.AccessRequester, error) {
	f.introspected = append(f.introspected, token)
	return "", nil, f.introspectErr
}

type fakeIssuer struct {
	clientID   string
	refreshErr error
}

func (f *fakeIssuer) SignIn(context.Context, string, *provider.Session, []string) (provider.TokenSet, error) {
	panic("not called")
}

func (f *fakeIssuer) Refresh(context.Context, string, string, string) (provider.TokenSet, *provider.Session, error) {
	return provider.TokenSet{}, nil, f.refreshErr
}

func (f *fakeIssuer) RefreshTokenClient(context.Context, string) (string, error) {
	return f.clientID, nil
}

// fakeStore is the token API's store with only ClientByID; anything else panics.
type fakeStore struct {
	store
	clients map[string]*models.Client
}

func (f *fakeStore) ClientByID(_ context.Context, id string) (*models.Client, error) {
	if c, ok := f.clients[id]; ok {
		return c, nil
	}
	return nil, models.ErrNotFound
}

func newServer(t *testing.T, oauth *fakeOAuth, refreshErr error) *httptest.Server {
	t.Helper()
	h := &API{OAuth: oauth, Issuer: &fakeIssuer{clientID: "app", refreshErr: refreshErr},
		Store: &fakeStore{clients: map[string]*models.Client{"app": {ID: "app", FirstParty: true}, "third": {ID: "third"}}},
		Now:   func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }}
	r := mux.NewRouter()
	h.Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path, body string, header map[string]string) (*http.Response, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+Prefix+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func TestTokenAPIErrors(t *testing.T) {
	dbDown := fmt.Errorf("get client: %w", driver.ErrBadConn)
	for _, tc := range []struct {
		name           string
		oauth          fakeOAuth
		refreshErr     error
		method, path   string
		body           string
		header         map[string]string
		status         int
		code           string
		wantHeader     [2]string
		wantRetryAfter bool
	}{
		{name: "wrong method names the allowed ones", method: "GET", path: "/login",
			status: 405, code: "invalid_request", wantHeader: [2]string{"Allow", "POST"}},
		{name: "login without a client", method: "POST", path: "/login", body: `{"email":"a@example.com","password":"x"}`,
			status: 400, code: "invalid_request"},
		{name: "login for a third-party client", method: "POST", path: "/login", body: `{"client_id":"third","email":"a@example.com","password":"x"}`,
			status: 401, code: "invalid_client"},
		{name: "refresh without a token", method: "POST", path: "/refresh", body: `{}`, status: 400, code: "invalid_request"},
		{name: "refresh refused by fosite keeps its code", refreshErr: fosite.ErrInvalidGrant,
			method: "POST", path: "/refresh", body: `{"refresh_token":"lk_rt_x"}`, status: 400, code: "invalid_grant"},
		{name: "refresh whose client lookup hit a database error is 503, not 401 invalid_client",
			refreshErr: fosite.ErrInvalidClient.WithWrap(dbDown).WithDebug(dbDown.Error()),
			method:     "POST", path: "/refresh", body: `{"refresh_token":"lk_rt_x"}`, status: 503, code: "temporarily_unavailable", wantRetryAfter: true},
		{name: "me without a token: a bare challenge", method: "GET", path: "/me",
			status: 401, code: "invalid_token", wantHeader: [2]string{"WWW-Authenticate", `Bearer realm="latchkey"`}},
		{name: "me with a token the store could not look up is 503, not 401",
			oauth:  fakeOAuth{introspectErr: fosite.ErrRequestUnauthorized.WithWrap(dbDown)},
			method: "GET", path: "/me", header: map[string]string{"Authorization": "Bearer lk_at_x"}, status: 503, code: "temporarily_unavailable", wantRetryAfter: true},
		{name: "me with an unknown token", oauth: fakeOAuth{introspectErr: fosite.ErrRequestUnauthorized.WithWrap(fosite.ErrNotFound)},
			method: "GET", path: "/me", header: map[string]string{"Authorization": "Bearer lk_at_x"},
			status: 401, code: "invalid_token", wantHeader: [2]string{"WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`}},
		{name: "me with Basic and garbage: the same answer and challenge as a bad bearer token",
			oauth:  fakeOAuth{introspectErr: fosite.ErrRequestUnauthorized.WithWrap(fosite.ErrNotFound)},
			method: "GET", path: "/me", header: map[string]string{"Authorization": "Basic !!garbage%%"},
			status: 401, code: "invalid_token", wantHeader: [2]string{"WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`}},
		{name: "logout with Basic and an unknown token", oauth: fakeOAuth{introspectErr: fosite.ErrRequestUnauthorized.WithWrap(fosite.ErrNotFound)},
			method: "POST", path: "/logout", header: map[string]string{"Authorization": "Basic lk_at_x"},
			status: 401, code: "invalid_token", wantHeader: [2]string{"WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`}},
		{name: "Basic without a token: a bare challenge, like no token", method: "GET", path: "/sessions",
			header: map[string]string{"Authorization": "Basic   "},
			status: 401, code: "invalid_token", wantHeader: [2]string{"WWW-Authenticate", `Bearer realm="latchkey"`}},
		{name: "another scheme carries no token", method: "POST", path: "/password",
			header: map[string]string{"Authorization": "Digest lk_at_x"},
			status: 401, code: "invalid_token", wantHeader: [2]string{"WWW-Authenticate", `Bearer realm="latchkey"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, &tc.oauth, tc.refreshErr)
			resp, body := call(t, srv, tc.method, tc.path, tc.body, tc.header)
			if resp.StatusCode != tc.status || body["error"] != tc.code {
				t.Fatalf("%s %s: %d %v, want %d %s", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.code)
			}
			if tc.wantHeader[0] != "" && resp.Header.Get(tc.wantHeader[0]) != tc.wantHeader[1] {
				t.Errorf("%s = %q, want %q", tc.wantHeader[0], resp.Header.Get(tc.wantHeader[0]), tc.wantHeader[1])
			}
			if got := resp.Header.Get("Retry-After") != ""; got != tc.wantRetryAfter {
				t.Errorf("Retry-After %q, want one: %v", resp.Header.Get("Retry-After"), tc.wantRetryAfter)
			}
			if strings.Contains(body["error_description"], "bad connection") {
				t.Errorf("the cause reached the client: %v", body)
			}
		})
	}
}

// WeWeb's Basic auth type sends the raw access token after "Basic ": it is looked up as it is, never base64-decoded,
// as a bearer token is; the custom header takes a bare token or a Bearer one.
func TestAccessTokenSchemes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   string
	}{
		{"bearer", map[string]string{"Authorization": "Bearer lk_at_abc.def"}, "lk_at_abc.def"},
		{"basic with the raw token", map[string]string{"Authorization": "Basic lk_at_abc.def"}, "lk_at_abc.def"},
		{"basic, any case, extra spaces", map[string]string{"Authorization": "basic   lk_at_abc.def "}, "lk_at_abc.def"},
		{"basic with base64 is not decoded", map[string]string{"Authorization": "Basic bGtfYXRfYWJjLmRlZg=="}, "bGtfYXRfYWJjLmRlZg=="},
		{"custom header, bare", map[string]string{"X-Auth-Token": "lk_at_abc.def"}, "lk_at_abc.def"},
		{"custom header with Bearer", map[string]string{"X-Auth-Token": "Bearer lk_at_abc.def"}, "lk_at_abc.def"},
		{"Authorization first", map[string]string{"Authorization": "Basic lk_at_one", "X-Auth-Token": "lk_at_two"}, "lk_at_one"},
		{"an unknown scheme falls back to the custom header", map[string]string{"Authorization": "Token lk_at_one", "X-Auth-Token": "lk_at_two"}, "lk_at_two"},
		{"an unknown scheme alone", map[string]string{"Authorization": "Token lk_at_one"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, Prefix+"/me", nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			h := &API{TokenHeader: "X-Auth-Token"}
			if got := h.accessToken(r); got != tc.want {
				t.Errorf("accessToken = %q, want %q", got, tc.want)
			}
		})
	}

	// Through the router: the raw token after Basic is what is looked up.
	oauth := &fakeOAuth{introspectErr: fosite.ErrRequestUnauthorized.WithWrap(fosite.ErrNotFound)}
	srv := newServer(t, oauth, nil)
	call(t, srv, http.MethodGet, "/me", "", map[string]string{"Authorization": "Basic lk_at_raw.token"})
	if len(oauth.introspected) != 1 || oauth.introspected[0] != "lk_at_raw.token" {
		t.Fatalf("introspected %q, want the raw token", oauth.introspected)
	}
}

func TestExpiresAt(t *testing.T) {
	issued := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	recorded := provider.NewSession()
	recorded.SetExpiresAt(fosite.AccessToken, issued.Add(59*time.Minute+59*time.Second))
	if got, want := expiresAt(recorded, issued, time.Hour), issued.Add(59*time.Minute+59*time.Second).Unix(); got != want {
		t.Errorf("with the session's expiry: %d, want %d", got, want)
	}
	if got, want := expiresAt(provider.NewSession(), issued, time.Hour), issued.Add(time.Hour).Unix(); got != want {
		t.Errorf("without one: %d, want %d", got, want)
	}
	if got, want := expiresAt(nil, issued, time.Hour), issued.Add(time.Hour).Unix(); got != want {
		t.Errorf("nil session: %d, want %d", got, want)
	}
}
