package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// registrationToken issues an initial access token through the CLI.
func registrationToken(t *testing.T, env testEnv, args ...string) string {
	t.Helper()
	out := env.cli(t, append([]string{"clients", "registration-token", "--json"}, args...)...)
	var v struct {
		Token     string `json:"initial_access_token"`
		ExpiresAt int64  `json:"expires_at"`
	}
	// expires_at only exists: a --ttl 1s token may be past it by the time a loaded machine reads it here.
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Token == "" || v.ExpiresAt == 0 {
		t.Fatalf("registration-token --json printed %q (%v)", out, err)
	}
	return v.Token
}

// regCall sends a registration or management request with a JSON body (nil: none) and a bearer token ("": none).
func regCall(t *testing.T, method, u, token string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

func webApp() map[string]any {
	return map[string]any{
		"client_name":    "Registered Web App",
		"redirect_uris":  []string{spaCallback},
		"grant_types":    []string{"authorization_code", "refresh_token", "client_credentials"},
		"response_types": []string{"code"},
		"scope":          "openid profile email offline_access",
		"logo_uri":       "https://app.example/logo.png", // ignored, not echoed
		"contacts":       []string{"ops@app.example"},
	}
}

func wantInvalidToken(t *testing.T, what string, code int, h http.Header, body map[string]any) {
	t.Helper()
	if code != http.StatusUnauthorized || body["error"] != "invalid_token" || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("%s: %d %v (WWW-Authenticate %q), want 401 invalid_token", what, code, body, h.Get("WWW-Authenticate"))
	}
}

// A client registered with an initial access token (the default mode) works in real flows, is managed with its
// registration access token (read, replace with rotation, delete with its tokens), and nothing else manages it.
func TestDynamicRegistration(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		base := e.srv.URL
		_, _, doc := get(t, base+"/.well-known/openid-configuration")
		if got := mustJSON(t, doc)["registration_endpoint"]; got != base+"/oauth2/register" {
			t.Errorf("registration_endpoint = %v", got)
		}
		code, h, body := regCall(t, "POST", base+"/oauth2/register", "", webApp())
		wantInvalidToken(t, "no initial access token", code, h, body)
		code, h, body = regCall(t, "POST", base+"/oauth2/register", "not-a-token", webApp())
		wantInvalidToken(t, "unknown initial access token", code, h, body)

		tok := registrationToken(t, env)
		var ttl struct {
			ExpiresAt int64 `json:"expires_at"`
		}
		if err := json.Unmarshal([]byte(env.cli(t, "clients", "registration-token", "--ttl", "2h", "--json")), &ttl); err != nil ||
			ttl.ExpiresAt < time.Now().Add(2*time.Hour-time.Minute).Unix() || ttl.ExpiresAt > time.Now().Add(2*time.Hour+time.Minute).Unix() {
			t.Errorf("--ttl 2h: expires_at %d (%v), want two hours from now", ttl.ExpiresAt, err)
		}
		code, _, reg := regCall(t, "POST", base+"/oauth2/register", tok, webApp())
		if code != http.StatusCreated {
			t.Fatalf("register: %d %v", code, reg)
		}
		id, _ := reg["client_id"].(string)
		secret, _ := reg["client_secret"].(string)
		regToken, _ := reg["registration_access_token"].(string)
		if id == "" || len(secret) < 32 || regToken == "" || reg["client_secret_expires_at"] != float64(0) ||
			reg["registration_client_uri"] != base+"/oauth2/register/"+id || reg["client_id_issued_at"] == nil ||
			reg["token_endpoint_auth_method"] != "client_secret_basic" || reg["client_name"] != "Registered Web App" ||
			reg["scope"] != "openid profile email offline_access" || reg["logo_uri"] != nil || reg["contacts"] != nil {
			t.Fatalf("registration response %v", reg)
		}
		code, h, body = regCall(t, "POST", base+"/oauth2/register", tok, webApp())
		wantInvalidToken(t, "the spent initial access token", code, h, body)

		// client_credentials with the issued secret.
		code, _, ccTok := postForm(t, base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}}, id, secret)
		if code != http.StatusOK || ccTok["access_token"] == nil {
			t.Fatalf("client_credentials: %d %v", code, ccTok)
		}
		// The authorization code flow, as a confidential client.
		conf := e.conf
		conf.ClientID, conf.ClientSecret, conf.Scopes = id, secret, []string{"openid", "profile", "email"}
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
		app := &edge{&oidcFixture{env: env, srv: e.srv, provider: e.provider, conf: conf,
			verifier: e.provider.Verifier(&oidc.Config{ClientID: id})}}
		if _, claims := app.signedIn(t, newBrowser(t, spaCallback)); claims["email"] != adaEmail {
			t.Errorf("ID token claims %v", claims)
		}

		// RFC 7592: read.
		regURI := reg["registration_client_uri"].(string)
		code, _, got := regCall(t, "GET", regURI, regToken, nil)
		if code != http.StatusOK || got["client_id"] != id || got["client_secret"] != nil || got["client_name"] != "Registered Web App" {
			t.Errorf("read: %d %v", code, got)
		}
		code, h, body = regCall(t, "GET", regURI, tok, nil)
		wantInvalidToken(t, "read with the initial access token", code, h, body)
		// The operator's client cannot be managed here, with any token.
		code, h, body = regCall(t, "GET", base+"/oauth2/register/spa", regToken, nil)
		wantInvalidToken(t, "read the CLI's client", code, h, body)
		code, h, body = regCall(t, "DELETE", base+"/oauth2/register/spa", regToken, nil)
		wantInvalidToken(t, "delete the CLI's client", code, h, body)

		// Replace: client_id must be sent; omitted fields take their defaults; the token is rotated.
		upd := map[string]any{"client_name": "Renamed", "redirect_uris": []string{spaCallback}}
		code, _, body = regCall(t, "PUT", regURI, regToken, upd)
		if code != http.StatusBadRequest || body["error"] != "invalid_client_metadata" || !strings.Contains(body["error_description"].(string), "client_id") {
			t.Errorf("update without client_id: %d %v", code, body)
		}
		upd["client_id"], upd["client_secret"] = id, "not-the-secret"
		code, _, body = regCall(t, "PUT", regURI, regToken, upd)
		if code != http.StatusBadRequest || !strings.Contains(body["error_description"].(string), "client_secret") {
			t.Errorf("update with a wrong client_secret: %d %v", code, body)
		}
		upd["client_secret"] = secret
		code, _, got = regCall(t, "PUT", regURI, regToken, upd)
		newToken, _ := got["registration_access_token"].(string)
		if code != http.StatusOK || got["client_name"] != "Renamed" || newToken == "" || newToken == regToken ||
			got["client_secret"] != nil || strings.Join(anyStrings(got["grant_types"]), " ") != "authorization_code" {
			t.Fatalf("update: %d %v", code, got)
		}
		code, h, body = regCall(t, "GET", regURI, regToken, nil)
		wantInvalidToken(t, "read with the rotated-out token", code, h, body)
		if code, _, got = regCall(t, "GET", regURI, newToken, nil); code != http.StatusOK || got["client_name"] != "Renamed" {
			t.Errorf("read with the new token: %d %v", code, got)
		}
		// The secret survived the update; the grant types it dropped no longer work.
		code, _, body = postForm(t, base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, id, secret)
		if code == http.StatusOK || body["error"] == nil {
			t.Errorf("client_credentials after it was dropped: %d %v", code, body)
		}

		// Delete: 204, the client and its tokens are gone.
		code, h, body = regCall(t, "DELETE", regURI, regToken, nil)
		wantInvalidToken(t, "delete with the old token", code, h, body)
		if code, _, body = regCall(t, "DELETE", regURI, newToken, nil); code != http.StatusNoContent {
			t.Fatalf("delete: %d %v", code, body)
		}
		code, h, body = regCall(t, "GET", regURI, newToken, nil)
		wantInvalidToken(t, "read after delete", code, h, body)
		if n := countRowsWhere(t, env, "oauth2_access", "client_id", id); n != 0 {
			t.Errorf("%d access tokens of the deleted client remain", n)
		}
	})
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range asSlice(v) {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func countRowsWhere(t *testing.T, env testEnv, table, column, value string) int {
	t.Helper()
	db, q := rawDB(t, env)
	var n int
	if err := db.QueryRow(q("SELECT COUNT(*) FROM "+table+" WHERE "+column+" = ?"), value).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Open registration takes no token; every refused metadata gets RFC 7591's code, naming the field; unknown
// fields are ignored; a public client gets no secret.
func TestRegistrationMetadataErrors(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv := env.startServer(t)
		endpoint := srv.URL + "/oauth2/register"
		token := registrationToken(t, env, "--max-uses", "10") // refusals spend no use
		with := func(k string, v any) map[string]any {
			m := webApp()
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
			return m
		}
		for _, tc := range []struct {
			name  string
			body  any
			code  string
			field string
		}{
			{"http redirect", with("redirect_uris", []string{"http://app.example/cb"}), "invalid_redirect_uri", "redirect_uris"},
			{"javascript redirect", with("redirect_uris", []string{"javascript:alert(1)"}), "invalid_redirect_uri", "redirect_uris"},
			{"fragment", with("redirect_uris", []string{"https://app.example/cb#x"}), "invalid_redirect_uri", "redirect_uris"},
			{"no redirect", with("redirect_uris", nil), "invalid_redirect_uri", "redirect_uris"},
			{"redirect not a list", with("redirect_uris", "https://app.example/cb"), "invalid_client_metadata", "redirect_uris"},
			{"password grant", with("grant_types", []string{"password"}), "invalid_client_metadata", "grant_types"},
			{"unknown grant", with("grant_types", []string{"urn:x"}), "invalid_client_metadata", "grant_types"},
			{"admin scope", with("scope", "openid latchkey.admin"), "invalid_client_metadata", "scope"},
			{"foreign scope", with("scope", "payments"), "invalid_client_metadata", "scope"},
			{"scope not a string", with("scope", []string{"openid"}), "invalid_client_metadata", "scope"},
			{"no name", with("client_name", nil), "invalid_client_metadata", "client_name"},
			{"name not a string", with("client_name", 7), "invalid_client_metadata", "client_name"},
			{"client_secret_jwt with a key alg", func() map[string]any {
				m := with("token_endpoint_auth_method", "client_secret_jwt")
				m["token_endpoint_auth_signing_alg"] = "ES256"
				return m
			}(), "invalid_client_metadata", "token_endpoint_auth_signing_alg"},
			{"public with client_credentials", with("token_endpoint_auth_method", "none"), "invalid_client_metadata", "token_endpoint_auth_method"},
			{"private_key_jwt without keys", with("token_endpoint_auth_method", "private_key_jwt"), "invalid_client_metadata", "jwks"},
			{"jwks not an object", with("jwks", "x"), "invalid_client_metadata", "jwks"},
			{"jwks_uri over http", with("jwks_uri", "http://app.example/jwks"), "invalid_client_metadata", "jwks_uri"},
			{"jwks and jwks_uri", func() map[string]any {
				m := with("jwks_uri", "https://app.example/jwks")
				m["jwks"] = map[string]any{"keys": []any{}}
				return m
			}(), "invalid_client_metadata", "jwks"},
			{"request objects required without keys", with("require_signed_request_object", true), "invalid_client_metadata", "require_signed_request_object"},
			{"request objects required not a boolean", with("require_signed_request_object", "yes"), "invalid_client_metadata", "require_signed_request_object"},
			{"request object alg none", with("request_object_signing_alg", "none"), "invalid_client_metadata", "request_object_signing_alg"},
			{"back-channel logout over http", with("backchannel_logout_uri", "http://app.example/logout"), "invalid_client_metadata", "backchannel_logout_uri"},
			{"back-channel session without a URI", with("backchannel_logout_session_required", true), "invalid_client_metadata", "backchannel_logout_session_required"},
			{"front-channel logout on another origin", with("frontchannel_logout_uri", "https://elsewhere.example/logout"), "invalid_client_metadata", "frontchannel_logout_uri"},
			{"encryption without a key", with("id_token_encrypted_response_alg", "RSA-OAEP-256"), "invalid_client_metadata", "id_token_encrypted_response_alg"},
			{"bad post-logout URI", with("post_logout_redirect_uris", []string{"http://app.example/bye"}), "invalid_client_metadata", "post_logout_redirect_uris"},
			{"not JSON", "{", "invalid_client_metadata", ""},
			{"an array", "[]", "invalid_client_metadata", ""},
			{"null", "null", "invalid_client_metadata", ""},
		} {
			code, _, body := regCall(t, "POST", endpoint, token, tc.body)
			desc, _ := body["error_description"].(string)
			if code != http.StatusBadRequest || body["error"] != tc.code || !strings.Contains(desc, tc.field) {
				t.Errorf("%s: %d %v, want 400 %s naming %s", tc.name, code, body, tc.code, tc.field)
			}
		}
		req, _ := http.NewRequest("POST", endpoint, strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Authorization", "Bearer "+token)
		if code, _, _ := do(t, req); code != http.StatusUnsupportedMediaType {
			t.Errorf("text/plain: %d", code)
		}
		big := with("client_name", strings.Repeat("a", 70<<10))
		if code, _, _ := regCall(t, "POST", endpoint, token, big); code != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized body: %d", code)
		}
		if n := countRows(t, env, "clients"); n != 0 {
			t.Errorf("%d clients stored by refused registrations", n)
		}
		// A client_secret_jwt backend: its secret is issued once, sealed, and it authenticates with HMAC assertions.
		code, _, body := regCall(t, "POST", endpoint, token, map[string]any{"client_name": "Reports", "grant_types": []string{"client_credentials"},
			"token_endpoint_auth_method": "client_secret_jwt", "token_endpoint_auth_signing_alg": "HS512", "scope": "profile"})
		id, _ := body["client_id"].(string)
		secret, _ := body["client_secret"].(string)
		if code != http.StatusCreated || len(secret) < 64 || body["token_endpoint_auth_method"] != "client_secret_jwt" {
			t.Fatalf("client_secret_jwt registration: %d %v", code, body)
		}
		cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}}
		if code, _, tok := postForm(t, srv.URL+"/oauth2/token", withAssertion(cc, hmacAssertion(t, jose.HS512, secret, id, srv.URL+"/oauth2/token")), "", ""); code != http.StatusOK {
			t.Errorf("the registered client_secret_jwt client's assertion: %d %v", code, tok)
		}
		if code, _, tok := postForm(t, srv.URL+"/oauth2/token", cc, id, secret); code != http.StatusUnauthorized {
			t.Errorf("its secret over HTTP Basic: %d %v, want 401", code, tok)
		}

		// Logout metadata is stored and echoed.
		logout := webApp()
		logout["backchannel_logout_uri"], logout["backchannel_logout_session_required"] = "https://app.example/bc-logout", true
		logout["frontchannel_logout_uri"] = "http://localhost:5173/fc-logout"
		code, _, body = regCall(t, "POST", endpoint, token, logout)
		if code != http.StatusCreated || body["backchannel_logout_uri"] != "https://app.example/bc-logout" ||
			body["backchannel_logout_session_required"] != true || body["frontchannel_logout_uri"] != "http://localhost:5173/fc-logout" {
			t.Errorf("logout metadata: %d %v", code, body)
		}

		// A native public client: loopback and private-use redirect URIs, no secret.
		native := map[string]any{"client_name": "CLI", "token_endpoint_auth_method": "none", "unknown_field": map[string]any{"a": 1},
			"redirect_uris": []string{"http://127.0.0.1:8400/cb", "com.example.cli:/cb"}, "grant_types": []string{"authorization_code", "refresh_token"}}
		code, _, body = regCall(t, "POST", endpoint, token, native)
		if code != http.StatusCreated || body["client_secret"] != nil || body["client_secret_expires_at"] != nil ||
			body["token_endpoint_auth_method"] != "none" || body["scope"] != "openid profile email roles offline_access" || body["unknown_field"] != nil {
			t.Errorf("native client: %d %v", code, body)
		}
	})
}

// Open registration needs no token, and is throttled per client address: 20 attempts, refused ones included,
// then 429 with Retry-After; a quiet hour starts afresh.
func TestOpenRegistrationIsThrottledPerAddress(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		env["LATCHKEY_REGISTRATION"] = "open"
		srv := env.startServer(t)
		endpoint := srv.URL + "/oauth2/register"
		bad := webApp()
		delete(bad, "client_name")
		for i := range 20 {
			body := webApp()
			if i%2 == 1 {
				body = bad
			}
			want := []int{http.StatusCreated, http.StatusBadRequest}[i%2]
			if code, _, resp := regCall(t, "POST", endpoint, "", body); code != want {
				t.Fatalf("open registration %d: %d %v, want %d", i+1, code, resp, want)
			}
		}
		code, hdr, body := regCall(t, "POST", endpoint, "", webApp())
		if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
			t.Fatalf("the 21st registration from one address: %d %v Retry-After=%q, want 429 with Retry-After", code, body, hdr.Get("Retry-After"))
		}
		if n := countRows(t, env, "clients"); n != 10 {
			t.Errorf("%d clients stored, want the 10 accepted", n)
		}
	})
}

// Off: no endpoint, nothing in discovery.
func TestRegistrationOff(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		env["LATCHKEY_REGISTRATION"] = "off"
		srv := env.startServer(t)
		if code, _, body := regCall(t, "POST", srv.URL+"/oauth2/register", "", webApp()); code != http.StatusNotFound {
			t.Errorf("register when off: %d %v", code, body)
		}
		if code, _, _ := regCall(t, "GET", srv.URL+"/oauth2/register/x", "t", nil); code != http.StatusNotFound {
			t.Errorf("configuration endpoint when off: %d", code)
		}
		for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
			_, _, doc := get(t, srv.URL+p)
			if _, ok := mustJSON(t, doc)["registration_endpoint"]; ok {
				t.Errorf("%s advertises registration when off", p)
			}
		}
		if _, stderr, code := env.cliCode(t, "", "serve", "--registration", "maybe"); code == 0 || !strings.Contains(stderr, "LATCHKEY_REGISTRATION") {
			t.Errorf("--registration maybe: exit %d, %s", code, stderr)
		}
	})
}

// A single-use initial access token registers exactly one client however many registrations race for it; an
// expired token registers none.
func TestRegistrationTokenSingleUseUnderConcurrency(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv := env.startServer(t)
		tok := registrationToken(t, env)
		var wg sync.WaitGroup
		codes := make([]int, 40)
		for i := range codes {
			wg.Go(func() {
				raw, _ := json.Marshal(webApp())
				req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/oauth2/register", bytes.NewReader(raw))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				codes[i] = resp.StatusCode
			})
		}
		wg.Wait()
		created, refused := 0, 0
		for _, c := range codes {
			switch c {
			case http.StatusCreated:
				created++
			case http.StatusUnauthorized:
				refused++
			}
		}
		if created != 1 || refused != 39 || countRows(t, env, "clients") != 1 {
			t.Errorf("40 registrations with a single-use token: %d created, %d refused, %d clients (codes %v)", created, refused, countRows(t, env, "clients"), codes)
		}
		multi := registrationToken(t, env, "--max-uses", "2")
		for i, want := range []int{201, 201, 401} {
			if code, _, body := regCall(t, "POST", srv.URL+"/oauth2/register", multi, webApp()); code != want {
				t.Errorf("registration %d with a 2-use token: %d %v", i+1, code, body)
			}
		}
		short := registrationToken(t, env, "--ttl", "1s")
		time.Sleep(1100 * time.Millisecond)
		code, h, body := regCall(t, "POST", srv.URL+"/oauth2/register", short, webApp())
		wantInvalidToken(t, "expired initial access token", code, h, body)
	})
}

// A registration while the database cannot serve is 503 with Retry-After, and spends nothing: the same single-use
// initial access token registers once the database is back.
func TestRegistrationOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	srv := env.startServer(t)
	token := registrationToken(t, env)
	endpoint := srv.URL + "/oauth2/register"

	db, _ := rawDB(t, env)
	ctx := context.Background()
	lock, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	code, hdr, body := regCall(t, "POST", endpoint, token, webApp())
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("while the database is locked: %d %v Retry-After=%q, want 503 with Retry-After", code, body, hdr.Get("Retry-After"))
	}
	if code, _, body := regCall(t, "POST", endpoint, token, webApp()); code != http.StatusCreated {
		t.Errorf("the same initial access token once the database is back: %d %v, want 201 (its use was not spent)", code, body)
	}
	if n := countRows(t, env, "clients"); n != 1 {
		t.Errorf("%d clients stored, want 1", n)
	}
}
