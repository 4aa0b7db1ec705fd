package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// What every authorization response carries: RFC 9207's iss, in every response mode, success and error; and
// state, echoed exactly when sent and optional when the request is bound by PKCE (RFC 9700 §2.1.1).

// authzResponse returns the parameters of an authorization response in the given mode ("" is the response
// type's default), asserting it went to the SPA's redirect URI the way the mode says.
func authzResponse(t *testing.T, mode string, resp *http.Response, body string) url.Values {
	t.Helper()
	switch mode {
	case "form_post":
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
			t.Fatalf("form_post answered %d Location %q:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		forms := formsOf(t, body)
		if len(forms) != 1 || forms[0].action != spaCallback {
			t.Fatalf("form_post forms = %+v, want one posting to %s", forms, spaCallback)
		}
		return forms[0].values
	case "fragment":
		loc, err := resp.Location()
		if resp.StatusCode != http.StatusSeeOther || err != nil {
			t.Fatalf("answered %d Location %q, want a redirect:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		return fragmentOf(t, loc)
	default:
		q := redirectedTo(t, resp, body, spaCallback+"?")
		if loc, _ := resp.Location(); loc.Fragment != "" {
			t.Errorf("query response has a fragment: %v", loc)
		}
		return q
	}
}

func TestEveryAuthorizationResponseCarriesIss(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env, implicitClientArgs...)
		iss := e.srv.URL

		for _, doc := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
			code, _, raw := get(t, iss+doc)
			if m := mustJSON(t, raw); code != http.StatusOK || m["authorization_response_iss_parameter_supported"] != true {
				t.Errorf("%s: %d authorization_response_iss_parameter_supported = %v, want true", doc, code, m["authorization_response_iss_parameter_supported"])
			}
		}

		// One browser signed in with consent for the scopes below; a fresh one for login_required.
		scopes := []string{"openid", "profile", "email", "roles"}
		conf := e.scoped(scopes...)
		signedIn := newBrowser(t, spaCallback)
		callback(t, e.walk(signedIn, e.authURL(conf, randomString(t), oauth2.GenerateVerifier())).page)

		codeURL := func(state, mode string, extra url.Values) string {
			opts := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "none")}
			if mode != "" {
				opts = append(opts, oauth2.SetAuthURLParam("response_mode", mode))
			}
			for k, v := range extra {
				opts = append(opts, oauth2.SetAuthURLParam(k, v[0]))
			}
			return e.authURL(conf, state, oauth2.GenerateVerifier(), opts...)
		}
		idTokenURL := func(state, mode string, extra url.Values) string {
			change := url.Values{"prompt": {"none"}, "response_mode": {mode}}
			for k, v := range extra {
				change[k] = v
			}
			if mode == "" {
				change["response_mode"] = []string{""}
			}
			return e.idTokenURL(state, randomString(t), change)
		}
		for _, tc := range []struct {
			name      string
			url       func(state, mode string, extra url.Values) string
			mode      string // as sent; "" for the response type's default
			readAs    string // how the response arrives
			extra     url.Values
			signedIn  bool
			wantError string // "" for success
		}{
			{"code, default mode", codeURL, "", "query", nil, true, ""},
			{"code, query", codeURL, "query", "query", nil, true, ""},
			{"code, form_post", codeURL, "form_post", "form_post", nil, true, ""},
			{"code, default mode, login_required", codeURL, "", "query", nil, false, "login_required"},
			{"code, query, login_required", codeURL, "query", "query", nil, false, "login_required"},
			{"code, form_post, login_required", codeURL, "form_post", "form_post", nil, false, "login_required"},
			{"code, fosite's own refusal (unknown scope)", codeURL, "", "query", url.Values{"scope": {"openid bogus"}}, true, "invalid_scope"},
			{"code, fosite's own refusal in form_post", codeURL, "form_post", "form_post", url.Values{"scope": {"openid bogus"}}, true, "invalid_scope"},
			{"code, our own refusal (bad prompt)", codeURL, "", "query", url.Values{"prompt": {"sometimes"}}, true, "invalid_request"},
			{"code, fragment", codeURL, "fragment", "fragment", nil, true, ""},
			{"code, fragment, login_required", codeURL, "fragment", "fragment", nil, false, "login_required"},
			{"code, fosite's own refusal in the fragment", codeURL, "fragment", "fragment", url.Values{"scope": {"openid bogus"}}, true, "invalid_scope"},
			{"id_token, default mode", idTokenURL, "", "fragment", nil, true, ""},
			{"id_token, fragment", idTokenURL, "fragment", "fragment", nil, true, ""},
			{"id_token, form_post", idTokenURL, "form_post", "form_post", nil, true, ""},
			{"id_token, default mode, login_required", idTokenURL, "", "fragment", nil, false, "login_required"},
			{"id_token, form_post, login_required", idTokenURL, "form_post", "form_post", nil, false, "login_required"},
			{"id_token, missing nonce", idTokenURL, "", "fragment", url.Values{"nonce": {""}}, true, "invalid_request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var b *browserClient
				if tc.signedIn {
					b = signedIn
				}
				state := randomString(t)
				resp, body := fetch(t, noRedirects(b), http.MethodGet, tc.url(state, tc.mode, tc.extra), nil)
				p := authzResponse(t, tc.readAs, resp, body)
				if len(p["iss"]) != 1 || p.Get("iss") != iss {
					t.Errorf("iss = %q, want exactly %q; response %v", p["iss"], iss, p)
				}
				if p.Get("state") != state {
					t.Errorf("state = %q, want %q", p.Get("state"), state)
				}
				if tc.wantError == "" {
					if p.Has("error") || (p.Get("code") == "" && p.Get("id_token") == "") {
						t.Errorf("response %v, want a code or an ID token", p)
					}
				} else if p.Get("error") != tc.wantError || p.Has("code") || p.Has("id_token") {
					t.Errorf("response %v, want error %s and nothing issued", p, tc.wantError)
				}
			})
		}

		t.Run("access_denied from the consent page", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			state := randomString(t)
			p := b.get(e.authURL(e.scoped("openid", "offline_access"), state, oauth2.GenerateVerifier()))
			p = b.submit(p, map[string]string{"email": adaEmail, "password": adaPassword})
			if !strings.Contains(p.body, `value="deny"`) {
				t.Fatalf("no consent page with a deny button:\n%s", p.body)
			}
			q := callback(t, b.submit(p, nil, "decision", "deny"))
			if q.Get("error") != "access_denied" || q.Get("iss") != iss || q.Get("state") != state {
				t.Errorf("denied: %v, want access_denied with iss and state", q)
			}
		})

		t.Run("our own error page carries nothing", func(t *testing.T) {
			u := e.authURL(conf, randomString(t), oauth2.GenerateVerifier())
			u = strings.Replace(u, url.QueryEscape(spaCallback), url.QueryEscape("https://evil.example/cb"), 1)
			resp, body := fetch(t, noRedirects(nil), http.MethodGet, u, nil)
			isOurErrorPage(t, resp, body, http.StatusBadRequest)
			if strings.Contains(body, `name="iss"`) || strings.Contains(body, "evil.example") {
				t.Errorf("error page carries response parameters:\n%s", body)
			}
		})
	})
}

func TestStateIsOptionalWithPKCE(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		iss := e.srv.URL
		conf := e.scoped("openid")
		b := newBrowser(t, spaCallback)

		t.Run("no state with S256 PKCE: a code, no state parameter, the exchange succeeds", func(t *testing.T) {
			verifier := oauth2.GenerateVerifier()
			u := e.authURL(conf, "", verifier)
			if strings.Contains(u, "state=") {
				t.Fatalf("request sends a state: %s", u)
			}
			q := callback(t, e.walk(b, u).page)
			if q.Has("state") || q.Get("code") == "" || q.Get("iss") != iss {
				t.Fatalf("callback query = %v, want a code and iss, and no state at all", q)
			}
			tok, claims := e.exchange(t, conf, q.Get("code"), verifier)
			if tok.AccessToken == "" || claims["sub"] == nil {
				t.Errorf("exchange gave %v %v", tok, claims)
			}
		})
		for _, state := range []string{"x", "short", "a b&c=d/é+%25;#", strings.Repeat("s", 300)} {
			t.Run("state echoed exactly with PKCE: "+state[:min(len(state), 12)], func(t *testing.T) {
				verifier := oauth2.GenerateVerifier()
				q := callback(t, e.walk(b, e.authURL(conf, state, verifier)).page)
				if len(q["state"]) != 1 || q.Get("state") != state || q.Get("code") == "" {
					t.Fatalf("callback query = %v, want the code and state %q exactly", q, state)
				}
				e.exchange(t, conf, q.Get("code"), verifier)
			})
		}

		// Without an S256 challenge the old rule stands: a state of at least 8 characters.
		for _, tc := range []struct {
			name, state string
			pkce        url.Values
		}{
			{"no PKCE, no state", "", nil},
			{"no PKCE, a short state", "short", nil},
			{"a plain challenge, no state", "", url.Values{"code_challenge": {oauth2.GenerateVerifier()}, "code_challenge_method": {"plain"}}},
		} {
			t.Run(tc.name+" is refused", func(t *testing.T) {
				opts := []oauth2.AuthCodeOption{oidc.Nonce(randomString(t))}
				for k, v := range tc.pkce {
					opts = append(opts, oauth2.SetAuthURLParam(k, v[0]))
				}
				resp, body := fetch(t, noRedirects(b), http.MethodGet, conf.AuthCodeURL(tc.state, opts...), nil)
				q := redirectedTo(t, resp, body, spaCallback+"?")
				if q.Get("error") != "invalid_state" || q.Has("code") || q.Get("iss") != iss || q.Get("state") != tc.state {
					t.Errorf("callback query = %v, want invalid_state with iss and the state as sent", q)
				}
				if tc.state == "" && q.Has("state") {
					t.Errorf("an empty state parameter was sent back: %v", q)
				}
			})
		}

		t.Run("a pushed request with S256 PKCE and no state", func(t *testing.T) {
			cl := env.createClient(t, "--name", "Web App", "--grant-types", "authorization_code",
				"--redirect-uris", spaCallback, "--scopes", "openid")
			verifier := oauth2.GenerateVerifier()
			params := url.Values{
				"response_type": {"code"}, "client_id": {cl.ClientID}, "redirect_uri": {spaCallback}, "scope": {"openid"},
				"nonce": {randomString(t)}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
			}
			code, _, body := postForm(t, iss+"/oauth2/par", params, cl.ClientID, cl.ClientSecret)
			requestURI, _ := body["request_uri"].(string)
			if code != http.StatusCreated || requestURI == "" {
				t.Fatalf("PAR without state: %d %v, want 201", code, body)
			}
			noPKCE := url.Values{"response_type": {"code"}, "client_id": {cl.ClientID}, "redirect_uri": {spaCallback}, "scope": {"openid"}}
			if code, _, body := postForm(t, iss+"/oauth2/par", noPKCE, cl.ClientID, cl.ClientSecret); code != http.StatusBadRequest || body["error"] != "invalid_state" {
				t.Errorf("PAR without PKCE or state: %d %v, want 400 invalid_state", code, body)
			}
			authorize := iss + "/oauth2/auth?" + url.Values{"client_id": {cl.ClientID}, "request_uri": {requestURI}}.Encode()
			q := callback(t, e.walk(b, authorize).page)
			if q.Has("state") || q.Get("code") == "" || q.Get("iss") != iss {
				t.Fatalf("callback query = %v, want a code and iss, and no state", q)
			}
			code, _, tok := postForm(t, iss+"/oauth2/token", url.Values{"grant_type": {"authorization_code"},
				"code": {q.Get("code")}, "redirect_uri": {spaCallback}, "code_verifier": {verifier}}, cl.ClientID, cl.ClientSecret)
			if code != http.StatusOK || tok["access_token"] == nil {
				t.Fatalf("exchange: %d %v", code, tok)
			}
		})
	})
}
