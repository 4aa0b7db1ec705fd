package e2e

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/provider"
)

func TestBadInputGetsOAuthErrors(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		svc := env.createClient(t, "--name", "svc", "--scopes", "read", "--audience", "https://api.example.com")
		rs := env.createClient(t, "--name", "rs")
		env.cli(t, "clients", "create", "--name", "spa", "--public", "--redirect-uris", "http://localhost:5173/cb", "--id", "spa")
		srv := env.startServer(t)
		token := srv.URL + "/oauth2/token"
		introspect := srv.URL + "/oauth2/introspect"
		revoke := srv.URL + "/oauth2/revoke"

		raw := func(method, endpoint, contentType, body string, user, pass string) *http.Request {
			req, _ := http.NewRequest(method, endpoint, strings.NewReader(body))
			if contentType != "" {
				req.Header.Set("Content-Type", contentType)
			}
			if user != "" {
				req.SetBasicAuth(user, pass)
			}
			return req
		}
		const form = "application/x-www-form-urlencoded"
		cc := "grant_type=client_credentials"
		for _, tc := range []struct {
			name      string
			req       *http.Request
			status    int
			errorCode string
			wwwAuth   bool
		}{
			{"wrong secret", raw("POST", token, form, cc, svc.ClientID, "wrong-secret-wrong-secret-wrong-secret"), 401, "invalid_client", true},
			{"unknown client", raw("POST", token, form, cc, "nobody", "whatever-whatever-whatever-whatever"), 401, "invalid_client", true},
			{"no client authentication", raw("POST", token, form, cc, "", ""), 401, "invalid_client", true},
			{"secret in both header and body", raw("POST", token, form, cc+"&client_id="+svc.ClientID+"&client_secret="+svc.ClientSecret, svc.ClientID, svc.ClientSecret), 400, "invalid_request", false},
			{"basic client using post", raw("POST", token, form, cc+"&client_id="+svc.ClientID+"&client_secret="+svc.ClientSecret, "", ""), 401, "invalid_client", true},
			{"unknown grant type", raw("POST", token, form, "grant_type=magic", svc.ClientID, svc.ClientSecret), 400, "unsupported_grant_type", false},
			{"the token API's internal sign-in grant is not the token endpoint's", raw("POST", token, form, "grant_type="+url.QueryEscape(provider.GrantTypeFirstPartySignIn)+"&scope=read", svc.ClientID, svc.ClientSecret), 400, "unsupported_grant_type", false},
			{"nor a public client's", raw("POST", token, form, "grant_type="+url.QueryEscape(provider.GrantTypeFirstPartySignIn)+"&client_id=spa", "", ""), 400, "unsupported_grant_type", false},
			{"the password grant from a client that is not first-party (and could not register it)", raw("POST", token, form, "grant_type=password&username=a&password=b", svc.ClientID, svc.ClientSecret), 400, "unauthorized_client", false},
			{"missing grant type", raw("POST", token, form, "scope=read", svc.ClientID, svc.ClientSecret), 400, "invalid_request", false},
			{"scope not registered", raw("POST", token, form, cc+"&scope=admin", svc.ClientID, svc.ClientSecret), 400, "invalid_scope", false},
			{"resource not registered", raw("POST", token, form, cc+"&resource=https://evil.example", svc.ClientID, svc.ClientSecret), 400, "invalid_target", false},
			{"audience not registered", raw("POST", token, form, cc+"&audience=other", svc.ClientID, svc.ClientSecret), 400, "invalid_target", false},
			{"repeated grant_type", raw("POST", token, form, cc+"&"+cc, svc.ClientID, svc.ClientSecret), 400, "invalid_request", false},
			{"GET", raw("GET", token+"?"+cc, "", "", svc.ClientID, svc.ClientSecret), 400, "invalid_request", false},
			{"JSON body", raw("POST", token, "application/json", `{"grant_type":"client_credentials"}`, svc.ClientID, svc.ClientSecret), 400, "invalid_request", false},
			{"malformed form encoding", raw("POST", token, form, "grant_type=%zz", svc.ClientID, svc.ClientSecret), 400, "invalid_request", false},
			{"empty body", raw("POST", token, form, "", svc.ClientID, svc.ClientSecret), 400, "invalid_request", false},
			{"oversized body", raw("POST", token, form, cc+"&scope="+strings.Repeat("a", 100<<10), svc.ClientID, svc.ClientSecret), 413, "invalid_request", false},
			{"public client asks for client_credentials", raw("POST", token, form, cc+"&client_id=spa", "", ""), 400, "invalid_grant", false},
			{"authorization code that was never issued", raw("POST", token, form, "grant_type=authorization_code&code=lk_ac_x.y&redirect_uri=http://localhost:5173/cb&client_id=spa&code_verifier="+strings.Repeat("v", 43), "", ""), 400, "invalid_grant", false},
			{"client not registered for refresh_token", raw("POST", token, form, "grant_type=refresh_token&refresh_token=lk_rt_x.y", svc.ClientID, svc.ClientSecret), 400, "unauthorized_client", false},
			{"basic auth header not base64", func() *http.Request {
				r := raw("POST", token, form, cc, "", "")
				r.Header.Set("Authorization", "Basic !!!")
				return r
			}(), 401, "invalid_client", true},

			{"introspect without authentication", raw("POST", introspect, form, "token=abc", "", ""), 401, "invalid_client", true},
			{"introspect with wrong secret", raw("POST", introspect, form, "token=abc", rs.ClientID, "wrong-wrong-wrong-wrong-wrong-wrong"), 401, "request_unauthorized", true},
			{"introspect with GET", raw("GET", introspect+"?token=abc", "", "", rs.ClientID, rs.ClientSecret), 400, "invalid_request", false},
			{"introspect empty body", raw("POST", introspect, form, "", rs.ClientID, rs.ClientSecret), 400, "invalid_request", false},

			{"revoke without authentication", raw("POST", revoke, form, "token=abc", "", ""), 401, "invalid_client", true},
			{"revoke with wrong secret", raw("POST", revoke, form, "token=abc", svc.ClientID, "wrong-wrong-wrong-wrong-wrong-wrong"), 401, "invalid_client", true},
			{"revoke with GET", raw("GET", revoke, "", "", svc.ClientID, svc.ClientSecret), 400, "invalid_request", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, hdr, body := do(t, tc.req)
				if code != tc.status || body["error"] != tc.errorCode {
					t.Fatalf("got %d %v, want %d %s", code, body, tc.status, tc.errorCode)
				}
				if got := hdr.Get("WWW-Authenticate") != ""; got != tc.wwwAuth {
					t.Errorf("WWW-Authenticate present = %v, want %v", got, tc.wwwAuth)
				}
				if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("Content-Type = %q", ct)
				}
			})
		}

		// Answers that are not errors by design (RFC 7662 §2.2, RFC 7009 §2.2).
		for _, tc := range []struct {
			name     string
			endpoint string
			body     url.Values
			user     string
			pass     string
			want     int
		}{
			{"introspect garbage token", introspect, url.Values{"token": {"garbage"}}, rs.ClientID, rs.ClientSecret, 200},
			{"introspect forged JWT", introspect, url.Values{"token": {"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}}, rs.ClientID, rs.ClientSecret, 200},
			{"introspect huge token", introspect, url.Values{"token": {strings.Repeat("x", 30000)}}, rs.ClientID, rs.ClientSecret, 200},
			{"revoke unknown token", revoke, url.Values{"token": {"lk_at_unknown.token"}}, svc.ClientID, svc.ClientSecret, 200},
			{"revoke unicode token", revoke, url.Values{"token": {"☃\x00'; DROP TABLE clients;--"}}, svc.ClientID, svc.ClientSecret, 200},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, body := postForm(t, tc.endpoint, tc.body, tc.user, tc.pass)
				if code != tc.want {
					t.Fatalf("got %d %v, want %d", code, body, tc.want)
				}
				if tc.endpoint == introspect && body["active"] != false {
					t.Errorf("introspection = %v, want active=false", body)
				}
			})
		}

		// After all that the server still issues tokens and nothing was half-written.
		code, _, body := postForm(t, token, url.Values{"grant_type": {"client_credentials"}}, svc.ClientID, svc.ClientSecret)
		if code != 200 || body["access_token"] == nil {
			t.Fatalf("server unhealthy after bad input: %d %v", code, body)
		}
	})
}

func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	env["LATCHKEY_LOG_LEVEL"] = "debug"
	svc := env.createClient(t, "--name", "svc", "--scopes", "read")
	var logs bytes.Buffer
	srv := env.startServerLoggingTo(t, &logs)
	_, _, body := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, svc.ClientID, svc.ClientSecret)
	tok, _ := body["access_token"].(string)
	postForm(t, srv.URL+"/oauth2/token?client_secret=in-query", url.Values{"grant_type": {"client_credentials"}}, svc.ClientID, "wrong-"+svc.ClientSecret)
	postForm(t, srv.URL+"/oauth2/introspect", url.Values{"token": {tok}}, svc.ClientID, svc.ClientSecret)
	postForm(t, srv.URL+"/oauth2/revoke", url.Values{"token": {tok}}, svc.ClientID, svc.ClientSecret)
	srv.stop(t)
	out := logs.String()
	if !strings.Contains(out, "http request") {
		t.Fatalf("no access log written:\n%s", out)
	}
	for _, secret := range []string{svc.ClientSecret, tok, tok[len("lk_at_"):], "in-query", env["LATCHKEY_SECRET"]} {
		if secret != "" && strings.Contains(out, secret) {
			t.Errorf("log contains a secret or token %q:\n%s", secret, out)
		}
	}
}
