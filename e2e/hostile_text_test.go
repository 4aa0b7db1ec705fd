package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Text PostgreSQL cannot hold: a NUL byte, and bytes that are not UTF-8. SQLite stores both, so on SQLite these
// are merely unknown values; on PostgreSQL they used to reach the database and come back as 500s.
var hostileTexts = []struct{ name, text string }{
	{"NUL", "ada\x00@example.com"},
	{"bad UTF-8", "ada\xff\xfe@example.com"},
}

// rawRequest builds a request whose body and URL are sent byte for byte.
func rawRequest(t *testing.T, method, u, contentType, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every entry point that looks up or stores an email, a client id, a user id, a session id, a challenge or a
// token answers hostile text the way it answers any unknown value: a 4xx with an error, never a 500.
func TestHostileTextGets4xxNot500(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, appID := noCodeFixture(t, env)
		env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
		env.cli(t, "clients", "create", "--id", "spa", "--name", "SPA", "--public", "--redirect-uris", spaCallback,
			"--scopes", "openid profile", "--grant-types", "authorization_code,refresh_token")
		svc := env.createClient(t, "--name", "svc", "--scopes", "read")
		admin := env.createClient(t, "--name", "admin", "--admin")
		_, _, tok := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"latchkey.admin"}}, admin.ClientID, admin.ClientSecret)
		adminAT, _ := tok["access_token"].(string)
		_, _, signup := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": appID, "email": "dee@example.com", "password": "violet-tractor-47"}, nil)
		userAT, _ := signup["access_token"].(string)
		if adminAT == "" || userAT == "" {
			t.Fatalf("fixture: admin token %v, signup %v", tok, signup)
		}

		// A signed-in browser, for the CSRF-protected forms.
		b := newBrowser(t, spaCallback)
		loginPage := b.get(srv.URL + "/login")
		signedIn := b.submit(loginPage, map[string]string{"email": adaEmail, "password": adaPassword})
		if signedIn.url == nil || signedIn.url.Path != "/account/sessions" {
			t.Fatalf("browser sign-in ended at %v (%d)", signedIn.url, signedIn.status)
		}
		_, csrf := parseForm(t, signedIn.body)
		form := func(v url.Values) string {
			v.Set("csrf_token", csrf.Get("csrf_token"))
			return v.Encode()
		}

		const (
			formType = "application/x-www-form-urlencoded"
			jsonType = "application/json"
		)
		api := srv.URL + "/api/v1/auth"
		for _, h := range hostileTexts {
			x := h.text
			esc := url.PathEscape(x)
			for _, tc := range []struct {
				name      string
				req       *http.Request
				browser   bool   // send with the signed-in browser's cookies
				status    int    // the answer for any unknown value
				errorCode string // JSON error code, or "" for an HTML error page or a non-error answer
				bearer    string
				basic     [2]string
				origin    string
			}{
				{name: "api login email", req: rawRequest(t, "POST", api+"/login", jsonType, jsonBody(t, map[string]string{"client_id": appID, "email": x, "password": "violet-tractor-47"})), status: 401, errorCode: "invalid_grant"},
				{name: "api login client_id", req: rawRequest(t, "POST", api+"/login", jsonType, jsonBody(t, map[string]string{"client_id": x, "email": "dee@example.com", "password": "violet-tractor-47"})), status: 401, errorCode: "invalid_client"},
				{name: "api signup email", req: rawRequest(t, "POST", api+"/signup", jsonType, jsonBody(t, map[string]string{"client_id": appID, "email": "new" + x, "password": "violet-tractor-47"})), status: 400, errorCode: "invalid_request"},
				{name: "api signup client_id", req: rawRequest(t, "POST", api+"/signup", jsonType, jsonBody(t, map[string]string{"client_id": x, "email": "new@example.com", "password": "violet-tractor-47"})), status: 401, errorCode: "invalid_client"},
				{name: "api login origin", req: rawRequest(t, "POST", api+"/login", jsonType, jsonBody(t, map[string]string{"client_id": appID, "email": "dee@example.com", "password": "violet-tractor-47"})), origin: "https://my-app.weweb.io" + strings.ReplaceAll(x, "\x00", ""), status: 403, errorCode: "invalid_origin"},
				{name: "api refresh token", req: rawRequest(t, "POST", api+"/refresh", jsonType, jsonBody(t, map[string]string{"refresh_token": "lk_rt_" + x})), status: 400, errorCode: "invalid_grant"},
				{name: "api refresh client_id", req: rawRequest(t, "POST", api+"/refresh", jsonType, jsonBody(t, map[string]string{"refresh_token": "lk_rt_x.y", "client_id": x})), status: 401, errorCode: "invalid_client"},
				{name: "api end session id", req: rawRequest(t, "DELETE", api+"/sessions/"+esc, "", ""), bearer: userAT, status: 404, errorCode: "not_found"},

				{name: "admin lookup by email", req: rawRequest(t, "GET", srv.URL+"/api/v1/admin/users?"+url.Values{"email": {x}}.Encode(), "", ""), bearer: adminAT, status: 200},
				{name: "admin list of pool", req: rawRequest(t, "GET", srv.URL+"/api/v1/admin/users?"+url.Values{"pool": {x}}.Encode(), "", ""), bearer: adminAT, status: 404, errorCode: "not_found"},
				{name: "admin get user", req: rawRequest(t, "GET", srv.URL+"/api/v1/admin/users/usr_"+esc, "", ""), bearer: adminAT, status: 404, errorCode: "not_found"},
				{name: "admin patch user", req: rawRequest(t, "PATCH", srv.URL+"/api/v1/admin/users/usr_"+esc, jsonType, `{"name":"x"}`), bearer: adminAT, status: 404, errorCode: "not_found"},

				{name: "token client_id in form", req: rawRequest(t, "POST", srv.URL+"/oauth2/token", formType, url.Values{"grant_type": {"client_credentials"}, "client_id": {x}, "client_secret": {"s"}}.Encode()), status: 401, errorCode: "invalid_client"},
				{name: "token client_id in basic auth", req: rawRequest(t, "POST", srv.URL+"/oauth2/token", formType, "grant_type=client_credentials"), basic: [2]string{x, "s"}, status: 401, errorCode: "invalid_client"},
				{name: "token public client code grant", req: rawRequest(t, "POST", srv.URL+"/oauth2/token", formType, url.Values{"grant_type": {"authorization_code"}, "client_id": {x}, "code": {"lk_ac_x.y"}, "redirect_uri": {spaCallback}, "code_verifier": {strings.Repeat("v", 43)}}.Encode()), status: 401, errorCode: "invalid_client"},
				{name: "token refresh token", req: rawRequest(t, "POST", srv.URL+"/oauth2/token", formType, url.Values{"grant_type": {"refresh_token"}, "client_id": {"spa"}, "refresh_token": {"lk_rt_" + x}}.Encode()), status: 400, errorCode: "invalid_grant"},
				{name: "par client_id", req: rawRequest(t, "POST", srv.URL+"/oauth2/par", formType, url.Values{"response_type": {"code"}, "redirect_uri": {spaCallback}, "client_id": {x}}.Encode()), basic: [2]string{x, "s"}, status: 401, errorCode: "invalid_client"},
				{name: "introspection caller", req: rawRequest(t, "POST", srv.URL+"/oauth2/introspect", formType, "token=abc"), basic: [2]string{x, "s"}, status: 401, errorCode: "request_unauthorized"},
				{name: "introspection token", req: rawRequest(t, "POST", srv.URL+"/oauth2/introspect", formType, url.Values{"token": {x}}.Encode()), basic: [2]string{svc.ClientID, svc.ClientSecret}, status: 200},
				{name: "revocation caller", req: rawRequest(t, "POST", srv.URL+"/oauth2/revoke", formType, "token=abc"), basic: [2]string{x, "s"}, status: 401, errorCode: "invalid_client"},
				{name: "revocation token", req: rawRequest(t, "POST", srv.URL+"/oauth2/revoke", formType, url.Values{"token": {x}}.Encode()), basic: [2]string{svc.ClientID, svc.ClientSecret}, status: 200},
				{name: "authorization client_id", req: rawRequest(t, "GET", srv.URL+"/oauth2/auth?"+url.Values{"response_type": {"code"}, "client_id": {x}, "redirect_uri": {spaCallback}, "code_challenge": {strings.Repeat("c", 43)}, "code_challenge_method": {"S256"}}.Encode(), "", ""), status: 400},
				{name: "userinfo token", req: rawRequest(t, "GET", srv.URL+"/userinfo", "", ""), bearer: strings.ReplaceAll(x, "\x00", "") + "x", status: 401, errorCode: "invalid_token"},

				{name: "sign-in form email", req: rawRequest(t, "POST", srv.URL+"/login", formType, form(url.Values{"email": {x}, "password": {adaPassword}})), browser: true, status: 401},
				{name: "sign-in form challenge", req: rawRequest(t, "POST", srv.URL+"/login", formType, form(url.Values{"email": {adaEmail}, "password": {adaPassword}, "challenge": {x}})), browser: true, status: 400},
				{name: "consent form challenge", req: rawRequest(t, "POST", srv.URL+"/consent", formType, form(url.Values{"challenge": {x}, "decision": {"allow"}})), browser: true, status: 400},
				{name: "sessions form session_id", req: rawRequest(t, "POST", srv.URL+"/account/sessions", formType, form(url.Values{"session_id": {x}})), browser: true, status: 404},
				{name: "account form name", req: rawRequest(t, "POST", srv.URL+"/account/profile", formType, form(url.Values{"name": {x}})), browser: true, status: 400},
				{name: "account form factor_id", req: rawRequest(t, "POST", srv.URL+"/account/factors/remove", formType, form(url.Values{"factor_id": {x}})), browser: true, status: 404},
				{name: "account form provider", req: rawRequest(t, "POST", srv.URL+"/account/providers/unlink", formType, form(url.Values{"provider_id": {x}, "subject": {x}})), browser: true, status: 404},
				{name: "logout client_id", req: rawRequest(t, "GET", srv.URL+"/oauth2/logout?"+url.Values{"client_id": {x}}.Encode(), "", ""), status: 400},
				{name: "logout id_token_hint", req: rawRequest(t, "GET", srv.URL+"/oauth2/logout?"+url.Values{"id_token_hint": {x}}.Encode(), "", ""), status: 400},
				{name: "logout confirm client_id", req: rawRequest(t, "POST", srv.URL+"/oauth2/logout", formType, form(url.Values{"client_id": {x}, "decision": {"logout"}})), browser: true, status: 400},
			} {
				if tc.name == "api signup email" && !strings.Contains(x, "\x00") {
					// JSON cannot carry bytes that are not UTF-8: the decoder turns them into U+FFFD, which is text.
					continue
				}
				t.Run(h.name+"/"+tc.name, func(t *testing.T) {
					req := tc.req
					if tc.bearer != "" {
						req.Header.Set("Authorization", "Bearer "+tc.bearer)
					}
					if tc.origin != "" {
						req.Header.Set("Origin", tc.origin)
					}
					if tc.basic[0] != "" {
						req.SetBasicAuth(url.QueryEscape(tc.basic[0]), url.QueryEscape(tc.basic[1]))
					}
					c := noRedirects(nil)
					if tc.browser {
						c = noRedirects(b)
					}
					resp, err := c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					raw, _ := io.ReadAll(resp.Body)
					if resp.StatusCode != tc.status {
						t.Fatalf("got %d, want %d: %.300s", resp.StatusCode, tc.status, raw)
					}
					ct := resp.Header.Get("Content-Type")
					switch {
					case tc.errorCode != "":
						var m map[string]any
						if err := json.Unmarshal(raw, &m); err != nil || m["error"] != tc.errorCode || m["error_description"] == "" {
							t.Fatalf("body %q (%s), want error %q with a description", raw, ct, tc.errorCode)
						}
					case tc.status >= 400 && strings.HasPrefix(ct, "text/html"):
						if !strings.Contains(string(raw), "<h1>") && !strings.Contains(string(raw), `role="alert"`) {
							t.Fatalf("HTML answer without an error message:\n%s", raw)
						}
					case tc.status >= 400:
						var m map[string]any
						if err := json.Unmarshal(raw, &m); err != nil || m["error"] == nil {
							t.Fatalf("%d with body %q (%s), want an error", resp.StatusCode, raw, ct)
						}
					}
				})
			}
		}

		// Nothing was stored for the refused sign-ups, and the server still works.
		code, _, list := apiCall(t, "GET", srv.URL+"/api/v1/admin/users?pool=customers", nil, bearerHeader(adminAT))
		if users, _ := list["users"].([]any); code != 200 || len(users) != 1 {
			t.Fatalf("users after the refused sign-ups: %d %v", code, list)
		}
		if code, _, body := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc.ClientID, svc.ClientSecret); code != 200 {
			t.Fatalf("server unhealthy after hostile input: %d %v", code, body)
		}
	})
}
