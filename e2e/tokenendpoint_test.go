package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func TestClientCredentialsIntrospectRevoke(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		billing := env.createClient(t, "--name", "billing-svc", "--scopes", "read write", "--audience", "https://api.example.com")
		rs := env.createClient(t, "--name", "resource-server")
		postClient := env.createClient(t, "--name", "poster", "--scopes", "read", "--token-endpoint-auth-method", "client_secret_post")
		srv := env.startServer(t)
		ctx := context.Background()

		for _, tc := range []struct {
			name   string
			client createdClient
			style  oauth2.AuthStyle
			params url.Values
			scopes []string
			aud    []string
		}{
			{"client_secret_basic with resource indicator", billing, oauth2.AuthStyleInHeader,
				url.Values{"resource": {"https://api.example.com"}}, []string{"read"}, []string{"https://api.example.com"}},
			{"client_secret_basic with two scopes", billing, oauth2.AuthStyleInHeader, nil, []string{"read", "write"}, nil},
			{"client_secret_post", postClient, oauth2.AuthStyleInParams, nil, []string{"read"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cc := clientcredentials.Config{
					ClientID: tc.client.ClientID, ClientSecret: tc.client.ClientSecret,
					TokenURL: srv.URL + "/oauth2/token", Scopes: tc.scopes, AuthStyle: tc.style, EndpointParams: tc.params,
				}
				tok, err := cc.Token(ctx)
				if err != nil {
					t.Fatalf("client credentials grant: %v", err)
				}
				if !strings.HasPrefix(tok.AccessToken, "lk_at_") || tok.TokenType != "bearer" && tok.TokenType != "Bearer" {
					t.Errorf("token = %q type %q, want an lk_at_ bearer token", tok.AccessToken, tok.TokenType)
				}
				if tok.RefreshToken != "" {
					t.Error("client_credentials must not issue a refresh token")
				}
				if d := time.Until(tok.Expiry); d < 50*time.Minute || d > 61*time.Minute {
					t.Errorf("expires in %v, want about 1h", d)
				}

				code, _, in := postForm(t, srv.URL+"/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, rs.ClientID, rs.ClientSecret)
				if code != 200 || in["active"] != true {
					t.Fatalf("introspect: %d %v", code, in)
				}
				if in["client_id"] != tc.client.ClientID || in["sub"] != tc.client.ClientID || in["scope"] != strings.Join(tc.scopes, " ") || !strings.EqualFold(in["token_type"].(string), "bearer") {
					t.Errorf("introspection = %v", in)
				}
				if tc.aud != nil {
					if aud, _ := in["aud"].([]any); len(aud) != 1 || aud[0] != tc.aud[0] {
						t.Errorf("aud = %v, want %v", in["aud"], tc.aud)
					}
				}

				revoke := url.Values{"token": {tok.AccessToken}}
				user, pass := tc.client.ClientID, tc.client.ClientSecret
				if tc.style == oauth2.AuthStyleInParams {
					revoke.Set("client_id", user)
					revoke.Set("client_secret", pass)
					user, pass = "", ""
				}
				if code, _, body := postForm(t, srv.URL+"/oauth2/revoke", revoke, user, pass); code != 200 {
					t.Fatalf("revoke: %d %v", code, body)
				}
				_, _, in = postForm(t, srv.URL+"/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, rs.ClientID, rs.ClientSecret)
				if in["active"] != false || len(in) != 1 {
					t.Errorf("after revocation introspection = %v, want only active=false", in)
				}
			})
		}
	})
}

// An access token is never a credential for introspection, however the request is shaped: a multipart body whose
// query string does not parse used to skip the check, and fosite then took the token as the caller.
func TestIntrospectionRefusesTokensInOddlyShapedRequests(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		svc := env.createClient(t, "--name", "svc", "--grant-types", "client_credentials", "--scopes", "read")
		srv := env.startServer(t)
		code, _, body := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, svc.ClientID, svc.ClientSecret)
		if code != http.StatusOK {
			t.Fatalf("token: %d %v", code, body)
		}
		token := body["access_token"].(string)
		multipartBody := func(fields map[string]string) (*bytes.Buffer, string) {
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			for k, v := range fields {
				_ = mw.WriteField(k, v)
			}
			_ = mw.Close()
			return &b, mw.FormDataContentType()
		}
		for _, tc := range []struct {
			name   string
			query  string
			fields map[string]string
			bearer bool
		}{
			{"access_token in a multipart body, unparsable query", "?x=%zz", map[string]string{"token": token, "access_token": token}, false},
			{"bearer header, multipart body, unparsable query", "?%", map[string]string{"token": token}, true},
			{"access_token in the query", "?access_token=" + url.QueryEscape(token), map[string]string{"token": token}, false},
			{"no credentials at all", "", map[string]string{"token": token}, false},
		} {
			b, ct := multipartBody(tc.fields)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth2/introspect"+tc.query, b)
			req.Header.Set("Content-Type", ct)
			if tc.bearer {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			code, _, body := do(t, req)
			if code == http.StatusOK || body["active"] != nil {
				t.Errorf("%s: %d %v, want a refusal", tc.name, code, body)
			}
		}
	})
}

// TestCachedClientsNeverOutliveTheirSecret drives the client cache through its dangerous moments on a node that
// has every client cached: a secret rotated by another process (the CLI), a client deleted by it, a wrong
// secret, and the same through a second node. Each must answer exactly as a server without a cache would.
func TestCachedClientsNeverOutliveTheirSecret(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		svc := env.createClient(t, "--name", "svc", "--grant-types", "client_credentials", "--scopes", "read")
		rs := env.createClient(t, "--name", "rs")
		nodeA, nodeB := env.startServer(t), env.startServer(t)

		token := func(t *testing.T, base string, c createdClient) (int, string) {
			t.Helper()
			code, _, body := postForm(t, base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, c.ClientID, c.ClientSecret)
			tok, _ := body["access_token"].(string)
			if code != http.StatusOK && body["error"] != "invalid_client" {
				t.Errorf("token endpoint: %d %v, want 200 or invalid_client", code, body)
			}
			return code, tok
		}
		introspect := func(t *testing.T, base string, caller createdClient, tok string) (int, map[string]any) {
			t.Helper()
			code, _, body := postForm(t, base+"/oauth2/introspect", url.Values{"token": {tok}}, caller.ClientID, caller.ClientSecret)
			return code, body
		}
		revoke := func(t *testing.T, base string, c createdClient, tok string) int {
			t.Helper()
			code, _, _ := postForm(t, base+"/oauth2/revoke", url.Values{"token": {tok}}, c.ClientID, c.ClientSecret)
			return code
		}
		rotate := func(t *testing.T, c createdClient) createdClient {
			t.Helper()
			var out createdClient
			if err := json.Unmarshal([]byte(env.cli(t, "clients", "rotate-secret", c.ClientID, "--json")), &out); err != nil || out.ClientSecret == "" {
				t.Fatalf("rotate-secret printed no secret: %v", err)
			}
			return out
		}

		// Warm both nodes' caches with every client, through every endpoint that may use them.
		var tok string
		for _, n := range []*server{nodeA, nodeB} {
			for range 3 {
				var code int
				if code, tok = token(t, n.URL, svc); code != http.StatusOK {
					t.Fatalf("warm-up token: %d", code)
				}
				if code, in := introspect(t, n.URL, rs, tok); code != http.StatusOK || in["active"] != true {
					t.Fatalf("warm-up introspection: %d %v", code, in)
				}
			}
		}
		if code := revoke(t, nodeB.URL, svc, tok); code != http.StatusOK {
			t.Fatalf("warm-up revocation: %d", code)
		}

		// A wrong secret is refused even though the client is cached.
		wrong := createdClient{ClientID: svc.ClientID, ClientSecret: svc.ClientSecret + "x"}
		if code, _ := token(t, nodeB.URL, wrong); code != http.StatusUnauthorized {
			t.Errorf("wrong secret against a cached client: %d, want 401", code)
		}

		// Another process rotates both secrets. On both nodes, at once: old secrets refused everywhere, new
		// ones accepted everywhere.
		_, live := token(t, nodeA.URL, svc)
		oldSvc, oldRS := svc, rs
		svc, rs = rotate(t, svc), rotate(t, rs)
		for _, n := range []*server{nodeA, nodeB} {
			if code, _ := token(t, n.URL, oldSvc); code != http.StatusUnauthorized {
				t.Errorf("%s: token with the rotated-out secret: %d, want 401", n.URL, code)
			}
			if code, in := introspect(t, n.URL, oldRS, live); code != http.StatusUnauthorized || in["active"] == true {
				t.Errorf("%s: introspection with the rotated-out secret: %d %v, want 401", n.URL, code, in)
			}
			if code := revoke(t, n.URL, oldSvc, live); code != http.StatusUnauthorized {
				t.Errorf("%s: revocation with the rotated-out secret: %d, want 401", n.URL, code)
			}
			if code, in := introspect(t, n.URL, rs, live); code != http.StatusOK || in["active"] != true {
				t.Errorf("%s: a refused revocation revoked the token anyway, or the new secret failed: %d %v", n.URL, code, in)
			}
			if code, _ := token(t, n.URL, svc); code != http.StatusOK {
				t.Errorf("%s: token with the new secret: %d, want 200", n.URL, code)
			}
		}
		if code := revoke(t, nodeB.URL, svc, live); code != http.StatusOK {
			t.Errorf("revocation with the new secret: %d", code)
		}
		if _, in := introspect(t, nodeA.URL, rs, live); in["active"] != false {
			t.Errorf("revoked token still active: %v", in)
		}

		// Deleted by another process while cached: refused at once, and no token row written for it.
		for _, n := range []*server{nodeA, nodeB} {
			token(t, n.URL, svc)
		}
		env.cli(t, "clients", "delete", svc.ClientID)
		for _, n := range []*server{nodeA, nodeB} {
			if code, tok := token(t, n.URL, svc); code != http.StatusUnauthorized || tok != "" {
				t.Errorf("%s: token for a deleted client: %d %q, want 401", n.URL, code, tok)
			}
		}
	})
}

// Only clients introspect (RFC 7662 §2.1): a user's access token is not a credential, wherever it is sent.
func TestIntrospectionCallersAreClients(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		rs := env.createClient(t, "--name", "resource-server")
		signup := func(email string) string {
			code, _, b := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": clientID, "email": email, "password": "violet-tractor-47"}, nil)
			if code != 201 {
				t.Fatalf("signup: %d %v", code, b)
			}
			return b["access_token"].(string)
		}
		mallory, victim := signup("mallory@example.com"), signup("victim@example.com")
		introspect := srv.URL + "/oauth2/introspect"
		send := func(target string, form url.Values, hdr map[string]string) (int, http.Header, map[string]any) {
			req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			return do(t, req)
		}
		for name, tc := range map[string]struct {
			target string
			form   url.Values
			hdr    map[string]string
		}{
			"Authorization: Bearer":  {introspect, url.Values{"token": {victim}}, bearerHeader(mallory)},
			"access_token in body":   {introspect, url.Values{"token": {victim}, "access_token": {mallory}}, nil},
			"access_token in query":  {introspect + "?access_token=" + url.QueryEscape(mallory), url.Values{"token": {victim}}, nil},
			"a client's own token":   {introspect, url.Values{"token": {victim}}, bearerHeader(ccToken(t, srv, rs))},
			"bearer and token alike": {introspect, url.Values{"token": {mallory}}, bearerHeader(mallory)},
		} {
			code, hdr, body := send(tc.target, tc.form, tc.hdr)
			if code != http.StatusUnauthorized || body["error"] != "invalid_client" || body["active"] != nil ||
				!strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("%s: %d %v %q, want 401 invalid_client", name, code, body, hdr.Get("WWW-Authenticate"))
			}
		}
		// Clients authenticate with client_secret_basic or client_secret_post (or private_key_jwt, #15: see
		// client_assertion_test.go), not two at once.
		if _, _, in := postForm(t, introspect, url.Values{"token": {victim}}, rs.ClientID, rs.ClientSecret); in["active"] != true {
			t.Errorf("client_secret_basic: %v", in)
		}
		if code, _, in := postForm(t, introspect, url.Values{"token": {victim}, "client_id": {rs.ClientID}, "client_secret": {rs.ClientSecret}}, "", ""); code != 200 || in["active"] != true {
			t.Errorf("client_secret_post: %d %v", code, in)
		}
		if code, _, in := postForm(t, introspect, url.Values{"token": {victim}, "client_id": {rs.ClientID}, "client_secret": {"wrong-wrong-wrong-wrong-wrong-wrong"}}, "", ""); code != 401 || in["active"] == true {
			t.Errorf("client_secret_post with a wrong secret: %d %v", code, in)
		}
		if code, _, in := postForm(t, introspect, url.Values{"token": {victim}, "client_secret": {rs.ClientSecret}}, rs.ClientID, rs.ClientSecret); code != 400 || in["error"] != "invalid_request" {
			t.Errorf("Basic and client_secret together: %d %v", code, in)
		}
		code, _, disco := get(t, srv.URL+"/.well-known/openid-configuration")
		if m := mustJSON(t, disco); code != 200 || !reflect.DeepEqual(m["introspection_endpoint_auth_methods_supported"], []any{"client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt"}) {
			t.Errorf("discovery introspection auth methods = %v", m["introspection_endpoint_auth_methods_supported"])
		}
	})
}

func ccToken(t *testing.T, srv *server, c createdClient) string {
	t.Helper()
	code, _, b := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.ClientSecret)
	if code != 200 {
		t.Fatalf("client_credentials: %d %v", code, b)
	}
	return b["access_token"].(string)
}

// RFC 7009 §2.1: a client naming another client's token is refused and told so; the token stays active.
func TestRevocationOfAnotherClientsToken(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		owner := env.createClient(t, "--name", "owner", "--scopes", "read")
		other := env.createClient(t, "--name", "other", "--scopes", "read")
		rs := env.createClient(t, "--name", "resource-server")
		_, _, signup := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		userAT, userRT := signup["access_token"].(string), signup["refresh_token"].(string)
		ownersAT := ccToken(t, srv, owner)
		revoke, introspect := srv.URL+"/oauth2/revoke", srv.URL+"/oauth2/introspect"
		active := func(tok string) bool {
			_, _, in := postForm(t, introspect, url.Values{"token": {tok}}, rs.ClientID, rs.ClientSecret)
			return in["active"] == true
		}
		for name, form := range map[string]url.Values{
			"a client_credentials access token": {"token": {ownersAT}},
			"a user's access token":             {"token": {userAT}, "token_type_hint": {"access_token"}},
			"a user's refresh token":            {"token": {userRT}, "token_type_hint": {"refresh_token"}},
		} {
			code, _, body := postForm(t, revoke, form, other.ClientID, other.ClientSecret)
			if code != http.StatusBadRequest || body["error"] != "unauthorized_client" {
				t.Errorf("%s revoked by another client: %d %v, want 400 unauthorized_client", name, code, body)
			}
		}
		if !active(ownersAT) || !active(userAT) || !active(userRT) {
			t.Fatal("a refused revocation revoked the token")
		}
		if code, _, body := postForm(t, revoke, url.Values{"token": {"lk_at_unknown.token"}}, other.ClientID, other.ClientSecret); code != 200 {
			t.Errorf("unknown token: %d %v, want 200", code, body)
		}
		if code, _, _ := postForm(t, revoke, url.Values{"token": {ownersAT}}, owner.ClientID, owner.ClientSecret); code != 200 || active(ownersAT) {
			t.Errorf("the owner's own revocation: %d, still active %v", code, active(ownersAT))
		}
	})
}

// When the token store fails, the token API, the admin API and revocation say it is our fault (5xx) instead of
// calling a good token invalid (which would sign the app's user out) or claiming a revocation that did not happen;
// and the cause is logged at ERROR. A table that is gone is a broken store, not an outage, so 500 is the honest
// answer here (revocation, where fosite calls every store error temporary, says 503); a database that cannot be
// reached answers 503 with Retry-After everywhere (TestFaultsNeverBecomeWrongAnswers).
func TestTokenStoreFailureIsAServerError(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		app := env.createClient(t, "--name", "app", "--first-party", "--pool", "customers", "--scopes", "openid profile email roles offline_access")
		admin := env.createClient(t, "--name", "ops", "--admin")
		var logs lockedBuffer
		srv := env.startServerLoggingTo(t, &logs)
		_, _, signup := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": app.ClientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		userAT := signup["access_token"].(string)
		code, _, tb := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"latchkey.admin"}}, admin.ClientID, admin.ClientSecret)
		if code != 200 {
			t.Fatalf("admin token: %d %v", code, tb)
		}
		adminAT := tb["access_token"].(string)

		execSQL(t, env, "ALTER TABLE oauth2_access RENAME TO oauth2_access_away")
		for name, call := range map[string]func() (int, http.Header, map[string]any){
			"/me": func() (int, http.Header, map[string]any) {
				return apiCall(t, "GET", srv.URL+"/api/v1/auth/me", nil, bearerHeader(userAT))
			},
			"admin GET user": func() (int, http.Header, map[string]any) {
				return apiCall(t, "GET", srv.URL+"/api/v1/admin/users", nil, bearerHeader(adminAT))
			},
			"revoke": func() (int, http.Header, map[string]any) {
				return postForm(t, srv.URL+"/oauth2/revoke", url.Values{"token": {adminAT}}, admin.ClientID, admin.ClientSecret)
			},
		} {
			code, hdr, body := call()
			ok := (code == http.StatusInternalServerError && body["error"] == "server_error") ||
				(code == http.StatusServiceUnavailable && body["error"] == "temporarily_unavailable" && hdr.Get("Retry-After") != "")
			if !ok {
				t.Errorf("%s while the token table is gone: %d %v Retry-After=%q, want 500 server_error or 503 with Retry-After", name, code, body, hdr.Get("Retry-After"))
			}
		}
		execSQL(t, env, "ALTER TABLE oauth2_access_away RENAME TO oauth2_access")
		if code, _, body := apiCall(t, "GET", srv.URL+"/api/v1/auth/me", nil, bearerHeader(userAT)); code != 200 {
			t.Fatalf("/me once the store is back: %d %v", code, body)
		}
		if code, _, body := apiCall(t, "GET", srv.URL+"/api/v1/admin/users", nil, bearerHeader(adminAT)); code != 200 {
			t.Fatalf("the admin token after the failed revocation: %d %v", code, body)
		}
		out := logs.String()
		for _, want := range []string{"api: look up access token", "admin api: look up access token"} {
			if !strings.Contains(out, want) || !strings.Contains(out, `"level":"ERROR"`) {
				t.Errorf("no ERROR log %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, userAT) || strings.Contains(out, adminAT) {
			t.Errorf("a token reached the log:\n%s", out)
		}
	})
}
