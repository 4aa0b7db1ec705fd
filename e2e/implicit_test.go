package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The ID-token-only front channel (OpenID Connect implicit with response_type=id_token), as the WeWeb OpenID
// plugin's oidc-client 1.x uses it: sign-in, silent renew with prompt=none, and everything it must refuse.

// implicitClientArgs register the SPA for the ID token alone beside the code flow.
var implicitClientArgs = []string{"--grant-types", "authorization_code,implicit,refresh_token", "--response-types", "code,id_token"}

// idTokenURL is an authorization request for an ID token alone, as oidc-client 1.x sends it; change overrides
// or (with "") removes parameters.
func (e *edge) idTokenURL(state, nonce string, change url.Values) string {
	q := url.Values{
		"response_type": {"id_token"}, "client_id": {"spa"}, "redirect_uri": {spaCallback},
		"scope": {"openid profile email roles"}, "state": {state}, "nonce": {nonce},
	}
	for k, v := range change {
		if v[0] == "" {
			delete(q, k)
		} else {
			q[k] = v
		}
	}
	return e.srv.URL + "/oauth2/auth?" + q.Encode()
}

// fragmentOf asserts u is the SPA's redirect URI and returns its fragment's parameters; the query must be empty.
func fragmentOf(t *testing.T, u *url.URL) url.Values {
	t.Helper()
	if u == nil || !strings.HasPrefix(u.String(), spaCallback) {
		t.Fatalf("did not reach the callback; at %v", u)
	}
	if u.RawQuery != "" {
		t.Errorf("callback has a query %q; the implicit flow answers in the fragment", u.RawQuery)
	}
	f, err := url.ParseQuery(u.EscapedFragment())
	if err != nil {
		t.Fatalf("callback fragment %q: %v", u.EscapedFragment(), err)
	}
	return f
}

// verifyIDToken checks an ID token from the front channel against the JWKS (go-oidc) and returns its claims.
// It carries the nonce, no access token hash, and the same claims as the code flow's.
func (e *edge) verifyIDToken(t *testing.T, raw, nonce string) map[string]any {
	t.Helper()
	idt, err := e.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("ID token does not verify against the JWKS: %v", err)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims["nonce"] != nonce {
		t.Errorf("nonce = %v, want %s", claims["nonce"], nonce)
	}
	if _, ok := claims["at_hash"]; ok {
		t.Errorf("at_hash in an ID token issued without an access token: %v", claims)
	}
	roles, _ := claims["roles"].([]any)
	if claims["sid"] == nil || claims["sid"] == "" || claims["auth_time"] == nil || claims["email"] != adaEmail ||
		claims["name"] != "Ada Lovelace" || len(roles) != 2 || fmt.Sprint(claims["aud"]) != "[spa]" {
		t.Errorf("ID token claims = %v, want sid, auth_time, email, name, both roles and aud spa", claims)
	}
	return claims
}

func TestIDTokenOnlyFrontChannel(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env, implicitClientArgs...)

		t.Run("sign-in in the fragment, then silent renew with prompt=none", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			state, nonce := randomString(t), randomString(t)
			w := e.walk(b, e.idTokenURL(state, nonce, nil))
			if !w.sawLogin || !w.sawConsent {
				t.Errorf("sign-in page %v, consent page %v; want both on a first sign-in", w.sawLogin, w.sawConsent)
			}
			f := fragmentOf(t, w.url)
			if f.Get("state") != state || f.Has("access_token") || f.Has("code") || f.Has("refresh_token") {
				t.Fatalf("fragment = %v, want the state and an ID token only", f)
			}
			first := e.verifyIDToken(t, f.Get("id_token"), nonce)

			// Silent renew (oidc-client's hidden iframe): the same browser session, no page, a new ID token.
			state, nonce = randomString(t), randomString(t)
			resp, body := fetch(t, noRedirects(b), http.MethodGet, e.idTokenURL(state, nonce, url.Values{"prompt": {"none"}}), nil)
			loc, err := resp.Location()
			if resp.StatusCode != http.StatusSeeOther || err != nil {
				t.Fatalf("silent renew answered %d Location %q:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			f = fragmentOf(t, loc)
			if f.Get("state") != state || f.Has("access_token") {
				t.Fatalf("silent renew fragment = %v", f)
			}
			renewed := e.verifyIDToken(t, f.Get("id_token"), nonce)
			if renewed["sid"] != first["sid"] || renewed["auth_time"] != first["auth_time"] || renewed["sub"] != first["sub"] {
				t.Errorf("renewed ID token sid %v auth_time %v sub %v, want the session's %v %v %v",
					renewed["sid"], renewed["auth_time"], renewed["sub"], first["sid"], first["auth_time"], first["sub"])
			}

			// A scope not consented to yet cannot be granted silently.
			state = randomString(t)
			resp, _ = fetch(t, noRedirects(b), http.MethodGet, e.idTokenURL(state, randomString(t),
				url.Values{"prompt": {"none"}, "scope": {"openid profile email roles offline_access"}}), nil)
			loc, _ = resp.Location()
			if f := fragmentOf(t, loc); f.Get("error") != "consent_required" || f.Get("state") != state || f.Has("id_token") {
				t.Errorf("prompt=none with a new scope: fragment = %v, want consent_required", f)
			}
		})

		t.Run("form_post", func(t *testing.T) {
			for _, tc := range []string{"after sign-in and consent", "already signed in"} {
				b := newBrowser(t, spaCallback)
				if tc == "already signed in" {
					e.walk(b, e.idTokenURL(randomString(t), randomString(t), nil))
				}
				state, nonce := randomString(t), randomString(t)
				w := e.walk(b, e.idTokenURL(state, nonce, url.Values{"response_mode": {"form_post"}}))
				if w.status != http.StatusOK {
					t.Fatalf("%s: form_post answered %d at %v:\n%s", tc, w.status, w.url, w.body)
				}
				forms := formsOf(t, w.body)
				if len(forms) != 1 || forms[0].action != spaCallback {
					t.Fatalf("%s: form_post forms = %+v, want one posting to %s", tc, forms, spaCallback)
				}
				v := forms[0].values
				if v.Get("state") != state || v.Has("access_token") || v.Has("code") {
					t.Fatalf("%s: form_post fields = %v", tc, v)
				}
				e.verifyIDToken(t, v.Get("id_token"), nonce)
			}
		})

		t.Run("explicit response_mode=fragment", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			state, nonce := randomString(t), randomString(t)
			f := fragmentOf(t, e.walk(b, e.idTokenURL(state, nonce, url.Values{"response_mode": {"fragment"}})).url)
			e.verifyIDToken(t, f.Get("id_token"), nonce)
		})

		t.Run("without a session prompt=none answers login_required", func(t *testing.T) {
			state := randomString(t)
			resp, body := fetch(t, noRedirects(newBrowser(t, spaCallback)), http.MethodGet,
				e.idTokenURL(state, randomString(t), url.Values{"prompt": {"none"}}), nil)
			loc, err := resp.Location()
			if resp.StatusCode != http.StatusSeeOther || err != nil {
				t.Fatalf("answered %d:\n%s", resp.StatusCode, body)
			}
			if f := fragmentOf(t, loc); f.Get("error") != "login_required" || f.Get("state") != state || f.Has("id_token") {
				t.Errorf("fragment = %v, want login_required with the state", f)
			}
		})

		// Refusals reach the client's (validated) redirect URI before anyone signs in; no token is ever issued.
		signedIn := newBrowser(t, spaCallback)
		e.walk(signedIn, e.idTokenURL(randomString(t), randomString(t), nil))
		for _, tc := range []struct {
			name     string
			change   url.Values
			wantErr  string
			fragment bool // the error comes in the fragment (else in the query, as fosite answers before it knows the mode)
		}{
			{"no nonce", url.Values{"nonce": {""}}, "invalid_request", true},
			{"a nonce too short to be unguessable", url.Values{"nonce": {"1234567"}}, "insufficient_entropy", true},
			{"no openid scope", url.Values{"scope": {"profile"}}, "invalid_request", true},
			{"ID token and access token", url.Values{"response_type": {"id_token token"}}, "unsupported_response_type", false},
			{"access token alone", url.Values{"response_type": {"token"}}, "unsupported_response_type", false},
			{"code and ID token (hybrid)", url.Values{"response_type": {"code id_token"}}, "unsupported_response_type", false},
			{"ID token in the query", url.Values{"response_mode": {"query"}}, "unsupported_response_mode", false},
		} {
			for _, who := range []struct {
				name string
				b    *browserClient
			}{{"anonymous", newBrowser(t, spaCallback)}, {"signed in", signedIn}} {
				t.Run(tc.name+", "+who.name, func(t *testing.T) {
					state := randomString(t)
					resp, body := fetch(t, noRedirects(who.b), http.MethodGet, e.idTokenURL(state, randomString(t), tc.change), nil)
					loc, err := resp.Location()
					if err != nil || !strings.HasPrefix(loc.String(), spaCallback) {
						t.Fatalf("answered %d Location %q, want a redirect to the client:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
					}
					params := loc.Query()
					if tc.fragment {
						params = fragmentOf(t, loc)
					} else if loc.Fragment != "" {
						t.Errorf("error in the fragment %q, want it in the query", loc.Fragment)
					}
					if params.Get("error") != tc.wantErr || params.Get("state") != state {
						t.Errorf("callback parameters = %v, want error=%s with the state", params, tc.wantErr)
					}
					if strings.Contains(loc.String(), "id_token=") || strings.Contains(loc.String(), "access_token=") {
						t.Errorf("a token was issued: %s", loc)
					}
				})
			}
		}

		t.Run("a loopback redirect URI on another port gets our page", func(t *testing.T) {
			resp, body := fetch(t, noRedirects(signedIn), http.MethodGet,
				e.idTokenURL(randomString(t), randomString(t), url.Values{"redirect_uri": {"http://localhost:5999/callback"}}), nil)
			isOurErrorPage(t, resp, body, http.StatusBadRequest)
		})

		t.Run("a client not registered for it gets unsupported_response_type", func(t *testing.T) {
			env.cli(t, "clients", "create", "--id", "code-only", "--name", "Code only", "--public",
				"--grant-types", "authorization_code,refresh_token", "--redirect-uris", spaCallback, "--scopes", "openid profile")
			state := randomString(t)
			resp, body := fetch(t, noRedirects(signedIn), http.MethodGet,
				e.idTokenURL(state, randomString(t), url.Values{"client_id": {"code-only"}, "scope": {"openid"}}), nil)
			q := redirectedTo(t, resp, body, spaCallback)
			if q.Get("error") != "unsupported_response_type" || q.Get("state") != state || strings.Contains(resp.Header.Get("Location"), "id_token=") {
				t.Errorf("callback = %s, want unsupported_response_type", resp.Header.Get("Location"))
			}
		})
	})
}

// Registering for the front channel: the id_token response type and the implicit grant go together, and never
// an access token response type; discovery lists what a registered client may use.
func TestIDTokenOnlyRegistrationAndDiscovery(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	for _, tc := range []struct {
		name    string
		args    []string
		mention string
	}{
		{"id_token without the implicit grant", []string{"--grant-types", "authorization_code", "--response-types", "code,id_token"}, "implicit grant"},
		{"implicit without the id_token response type", []string{"--grant-types", "authorization_code,implicit", "--response-types", "code"}, "id_token response type"},
		// The CLI splits "id_token token" into two response types; the access token one is refused.
		{"ID token with an access token", []string{"--grant-types", "implicit", "--response-types", "id_token token"}, `"token"`},
		{"access token alone", []string{"--grant-types", "implicit", "--response-types", "token"}, `"token"`},
		{"plain http redirect URI", []string{"--grant-types", "implicit", "--response-types", "id_token", "--redirect-uris", "http://app.example/cb"}, "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"clients", "create", "--name", "x", "--public", "--redirect-uris", "https://app.example/cb"}
			_, stderr, code := env.cliCode(t, "", append(args, tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.mention) {
				t.Errorf("exit %d, stderr %q; want a refusal mentioning %s", code, stderr, tc.mention)
			}
		})
	}
	env.createClient(t, "--name", "WeWeb", "--public", "--redirect-uris", "https://app.example/cb", "--scopes", "openid profile email",
		"--grant-types", "authorization_code,implicit,refresh_token", "--response-types", "code,id_token")

	srv := env.startServer(t)
	_, _, body := get(t, srv.URL+"/.well-known/openid-configuration")
	m := mustJSON(t, body)
	for key, want := range map[string]string{
		"response_types_supported": "code id_token", "response_modes_supported": "query fragment form_post",
		"grant_types_supported": "implicit",
	} {
		list, _ := m[key].([]any)
		var got []string
		for _, v := range list {
			s, _ := v.(string)
			got = append(got, s)
		}
		for _, w := range strings.Fields(want) {
			if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+w+" ") {
				t.Errorf("%s = %v, want %s among them", key, got, w)
			}
		}
		if key == "response_types_supported" && len(got) != 2 {
			t.Errorf("response_types_supported = %v, want exactly code and id_token (never token)", got)
		}
	}
}
