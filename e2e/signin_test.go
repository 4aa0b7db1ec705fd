package e2e

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestPromptNone(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		conf := e.scoped("openid", "profile")

		t.Run("without a session the client gets login_required", func(t *testing.T) {
			state := randomString(t)
			resp, body := fetch(t, noRedirects(newBrowser(t, spaCallback)), http.MethodGet,
				e.authURL(conf, state, oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("prompt", "none")), nil)
			q := redirectedTo(t, resp, body, spaCallback)
			if q.Get("error") != "login_required" || q.Get("state") != state || q.Has("code") {
				t.Errorf("callback query = %v, want error=login_required and the state", q)
			}
		})

		t.Run("with a session and remembered consent the code comes at once", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			_, first := e.signedIn(t, b, conf.Scopes...)
			state, verifier := randomString(t), oauth2.GenerateVerifier()
			resp, body := fetch(t, noRedirects(b), http.MethodGet, e.authURL(conf, state, verifier, oauth2.SetAuthURLParam("prompt", "none")), nil)
			q := redirectedTo(t, resp, body, spaCallback)
			if q.Get("code") == "" || q.Get("state") != state {
				t.Fatalf("callback query = %v, want a code", q)
			}
			_, claims := e.exchange(t, conf, q.Get("code"), verifier)
			if claims["sid"] != first["sid"] || claims["auth_time"] != first["auth_time"] {
				t.Errorf("prompt=none grant: sid %v auth_time %v, want the session's %v %v", claims["sid"], claims["auth_time"], first["sid"], first["auth_time"])
			}

			// A scope not consented to yet cannot be asked about silently.
			state = randomString(t)
			resp, body = fetch(t, noRedirects(b), http.MethodGet,
				e.authURL(e.scoped("openid", "profile", "email"), state, verifier, oauth2.SetAuthURLParam("prompt", "none")), nil)
			if q := redirectedTo(t, resp, body, spaCallback); q.Get("error") != "consent_required" || q.Get("state") != state {
				t.Errorf("new scope with prompt=none: callback query = %v, want consent_required", q)
			}
		})
	})
}

func TestPromptLoginAndMaxAgeForceSignIn(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		conf := e.scoped("openid", "email")
		for _, tc := range []struct {
			name  string
			param oauth2.AuthCodeOption
		}{
			{"prompt=login", oauth2.SetAuthURLParam("prompt", "login")},
			{"max_age=0", oauth2.SetAuthURLParam("max_age", "0")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := newBrowser(t, spaCallback)
				_, first := e.signedIn(t, b, conf.Scopes...)

				start := time.Now()
				state, verifier := randomString(t), oauth2.GenerateVerifier()
				p := b.get(e.authURL(conf, state, verifier, tc.param))
				if !strings.Contains(p.body, `name="password"`) {
					t.Fatalf("signed-in user was not asked to sign in again (%d at %v):\n%s", p.status, p.url, p.body)
				}
				if !strings.Contains(p.body, `value="`+adaEmail+`"`) {
					t.Error("re-authentication form does not prefill the signed-in user's email")
				}
				p = b.submit(p, map[string]string{"email": adaEmail, "password": adaPassword})
				if strings.Contains(p.body, `value="allow"`) {
					t.Error("consent was asked again although it is remembered")
					p = b.submit(p, nil, "decision", "allow")
				}
				q := callback(t, p)
				if q.Get("state") != state || q.Get("code") == "" {
					t.Fatalf("callback query = %v", q)
				}
				_, claims := e.exchange(t, conf, q.Get("code"), verifier)
				authTime, _ := claims["auth_time"].(float64)
				if int64(authTime) < start.Unix() {
					t.Errorf("auth_time = %d, before the request started (%d)", int64(authTime), start.Unix())
				}
				if claims["sid"] != first["sid"] {
					t.Errorf("re-authentication replaced the session: sid %v, was %v", claims["sid"], first["sid"])
				}
			})
		}
	})
}

func TestConsent(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		env.cli(t, "users", "create", "--email", "grace@example.com", "--password", "another good password")
		env.cli(t, "clients", "create", "--id", "first", "--name", "Our Own App", "--public", "--first-party",
			"--redirect-uris", spaCallback, "--scopes", "openid profile email")
		b := newBrowser(t, spaCallback)

		steps := []struct {
			name        string
			conf        oauth2.Config
			creds       []string
			wantLogin   bool
			wantConsent bool
		}{
			{"first request asks", e.scoped("openid", "profile"), nil, true, true},
			{"same scopes are remembered", e.scoped("openid", "profile"), nil, false, false},
			{"a subset is remembered", e.scoped("openid"), nil, false, false},
			{"a new scope asks again", e.scoped("openid", "profile", "email"), nil, false, true},
			{"the union is remembered", e.scoped("openid", "email"), nil, false, false},
		}
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				state, verifier := randomString(t), oauth2.GenerateVerifier()
				w := e.walk(b, e.authURL(s.conf, state, verifier), s.creds...)
				if w.sawLogin != s.wantLogin || w.sawConsent != s.wantConsent {
					t.Errorf("asked to sign in %v (want %v), asked for consent %v (want %v)", w.sawLogin, s.wantLogin, w.sawConsent, s.wantConsent)
				}
				q := callback(t, w.page)
				if q.Get("code") == "" || q.Get("state") != state {
					t.Fatalf("callback query = %v", q)
				}
			})
		}

		t.Run("consent is per user", func(t *testing.T) {
			w := e.walk(newBrowser(t, spaCallback), e.authURL(e.scoped("openid"), randomString(t), oauth2.GenerateVerifier()),
				"grace@example.com", "another good password")
			if !w.sawConsent {
				t.Error("another user inherited ada's consent")
			}
			callback(t, w.page)
		})

		t.Run("consent page names the new scope", func(t *testing.T) {
			p := b.get(e.authURL(e.scoped("openid", "roles"), randomString(t), oauth2.GenerateVerifier()))
			if !strings.Contains(p.body, `value="deny"`) || !strings.Contains(p.body, ">roles<") || !strings.Contains(p.body, "Example SPA") {
				t.Fatalf("consent page:\n%s", p.body)
			}
		})

		t.Run("deny returns access_denied with the state", func(t *testing.T) {
			state := randomString(t)
			p := b.get(e.authURL(e.scoped("openid", "roles"), state, oauth2.GenerateVerifier()))
			q := callback(t, b.submit(p, nil, "decision", "deny"))
			if q.Get("error") != "access_denied" || q.Get("state") != state || q.Has("code") {
				t.Errorf("callback query = %v, want error=access_denied with the state", q)
			}
			// Denying remembers nothing.
			w := e.walk(b, e.authURL(e.scoped("openid", "roles"), randomString(t), oauth2.GenerateVerifier()))
			if !w.sawConsent {
				t.Error("after deny, the denied scope was granted without asking")
			}
		})

		t.Run("consent given in one browser does not carry to another user's browser", func(t *testing.T) {
			// grace approves a request and keeps the URL that resumes it instead of following it...
			g := newBrowser(t, spaCallback)
			state, verifier := randomString(t), oauth2.GenerateVerifier()
			// offline_access: a scope ada has never granted, whatever the earlier subtests did.
			p := g.get(e.authURL(e.scoped("openid", "profile", "email", "roles", "offline_access"), state, verifier))
			p = g.submit(p, map[string]string{"email": "grace@example.com", "password": "another good password"})
			action, values := parseForm(t, p.body, "decision", "allow")
			resp, _ := fetch(t, noRedirects(g), http.MethodPost, p.url.ResolveReference(&url.URL{Path: action}).String(), values)
			resume := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resume, "lk_challenge=") {
				t.Fatalf("consent: %d Location=%q", resp.StatusCode, resume)
			}
			// ...and gets ada, signed in elsewhere but never asked about offline_access, to open it.
			victim := newBrowser(t, spaCallback)
			e.signedIn(t, victim, "openid")
			got := victim.get(e.srv.URL + resume)
			if got.url != nil && strings.HasPrefix(got.url.String(), spaCallback) && got.url.Query().Get("code") != "" {
				_, claims := e.exchange(t, e.scoped("openid", "profile", "email", "roles", "offline_access"), got.url.Query().Get("code"), verifier)
				t.Fatalf("grace's approval issued a code for %v with scopes ada never granted: consent given in one browser "+
					"must not carry to another user's session", claims["email"])
			}
			if !strings.Contains(got.body, `value="allow"`) && !strings.Contains(got.body, `name="password"`) {
				t.Errorf("opening someone else's resume URL: %d at %v\n%s", got.status, got.url, got.body)
			}
		})

		t.Run("a first-party client never asks", func(t *testing.T) {
			fp := e.scoped("openid", "profile", "email")
			fp.ClientID = "first"
			for i, br := range []*browserClient{newBrowser(t, spaCallback), b} {
				state, verifier := randomString(t), oauth2.GenerateVerifier()
				w := e.walk(br, e.authURL(fp, state, verifier))
				if w.sawConsent {
					t.Errorf("browser %d: first-party client showed a consent page", i)
				}
				if q := callback(t, w.page); q.Get("code") == "" || q.Get("state") != state {
					t.Errorf("browser %d: callback query = %v", i, q)
				}
			}
		})
	})
}

func TestLoginFormRejectsBadSubmissions(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		b := newBrowser(t, spaCallback)
		p := b.get(e.srv.URL + "/login")
		f := formsOf(t, p.body)[0]
		csrf := f.values.Get("csrf_token")
		alert := func(body string) string {
			_, rest, ok := strings.Cut(body, `role="alert">`)
			if !ok {
				return ""
			}
			msg, _, _ := strings.Cut(rest, "<")
			return msg
		}
		send := func(raw string) page {
			req, _ := http.NewRequest(http.MethodPost, p.url.ResolveReference(&url.URL{Path: f.action}).String(), strings.NewReader(raw))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return b.do(req)
		}
		form := func(email, password, token string) string {
			return url.Values{"email": {email}, "password": {password}, "csrf_token": {token}}.Encode()
		}

		wrong := send(form(adaEmail, "not the password", csrf))
		unknown := send(form("nobody@example.com", "not the password", csrf))
		for _, tc := range []struct {
			name   string
			got    page
			status int
		}{
			{"wrong password", wrong, http.StatusUnauthorized},
			{"unknown email", unknown, http.StatusUnauthorized},
			{"tampered csrf_token", send(form(adaEmail, adaPassword, csrf[:len(csrf)-2]+"xx")), http.StatusForbidden},
			{"missing csrf_token", send(url.Values{"email": {adaEmail}, "password": {adaPassword}}.Encode()), http.StatusForbidden},
			{"repeated field", send(form(adaEmail, adaPassword, csrf) + "&email=" + url.QueryEscape("eve@example.com")), http.StatusBadRequest},
			{"oversized email", send(form(strings.Repeat("a", 20000)+"@example.com", "x", csrf)), http.StatusUnauthorized},
			{"oversized password", send(form(adaEmail, strings.Repeat("p", 5000), csrf)), http.StatusUnauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.got.status != tc.status {
					t.Errorf("status = %d, want %d:\n%s", tc.got.status, tc.status, tc.got.body)
				}
				if tc.got.url.Path != "/login" {
					t.Errorf("ended at %v, want to stay on /login", tc.got.url)
				}
			})
		}
		if w, u := alert(wrong.body), alert(unknown.body); w == "" || w != u {
			t.Errorf("wrong password says %q, unknown email says %q; want the same message", w, u)
		}
		if strings.Contains(unknown.body, "not found") || strings.Contains(unknown.body, "no account") {
			t.Error("the unknown-email answer tells that the account does not exist")
		}
		for _, c := range b.c.Jar.Cookies(p.url) {
			if c.Name == "lk_session" {
				t.Error("a failed sign-in set a session cookie")
			}
		}

		t.Run("return_to only goes to local paths", func(t *testing.T) {
			for _, target := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example"} {
				bb := newBrowser(t, spaCallback)
				lp := bb.get(e.srv.URL + "/login?return_to=" + url.QueryEscape(target))
				got := bb.submit(lp, map[string]string{"email": adaEmail, "password": adaPassword})
				if got.url.Host != p.url.Host || got.url.Path != "/account/sessions" {
					t.Errorf("return_to=%s: ended at %v, want this server's /account/sessions", target, got.url)
				}
			}
		})
	})
}

// Pending authorization requests (issue 11, items 6, 7 and the oversized request of 11): an anonymous browser
// stores nothing, a request over 8 KiB gets a clear 400, and consent and the resume after sign-in count only for
// the browser session that signed in for the request.

// loginFormOf returns the sign-in form's hidden fields of a page, failing unless it is the sign-in page.
func loginFormOf(t *testing.T, p page) (string, url.Values) {
	t.Helper()
	if !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("not the sign-in page (%d at %v):\n%s", p.status, p.url, p.body)
	}
	return parseForm(t, p.body)
}

// noCodeFor asserts that p did not reach the client with a code, and is the sign-in page or our error page.
func noCodeFor(t *testing.T, p page, what string) {
	t.Helper()
	if p.url != nil && strings.HasPrefix(p.url.String(), spaCallback) {
		t.Fatalf("%s reached the client: %v", what, p.url)
	}
	if !strings.Contains(p.body, `name="password"`) && !(p.status == http.StatusBadRequest && strings.Contains(p.body, "<h1>")) {
		t.Errorf("%s: want the sign-in page or an error page, got %d at %v:\n%s", what, p.status, p.url, p.body)
	}
}

func TestAnonymousAuthorizationRequestsStoreNothing(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		conf := e.scoped("openid", "profile")
		authURL := e.authURL(conf, randomString(t), oauth2.GenerateVerifier())

		// 40 browsers at once, 5 requests each: every one gets the sign-in form, none leaves a row behind.
		const browsers, each = 40, 5
		var wg sync.WaitGroup
		statuses := make([]int, browsers*each)
		for i := range browsers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				for j := range each {
					resp, err := c.Get(authURL)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					statuses[i*each+j] = resp.StatusCode
				}
			}()
		}
		wg.Wait()
		for i, s := range statuses {
			if s != http.StatusOK {
				t.Fatalf("anonymous request %d: status %d, want the sign-in page", i, s)
			}
		}
		if n := countRows(t, env, "auth_challenges"); n != 0 {
			t.Fatalf("%d anonymous authorization requests left %d rows in auth_challenges, want 0", browsers*each, n)
		}

		// A row appears only once someone has signed in, and is gone when the request is finished.
		b := newBrowser(t, spaCallback)
		state, verifier := randomString(t), oauth2.GenerateVerifier()
		p := b.get(e.authURL(conf, state, verifier))
		p = b.submit(p, map[string]string{"email": adaEmail, "password": adaPassword})
		if !strings.Contains(p.body, `value="allow"`) {
			t.Fatalf("after sign-in, want the consent page (%d at %v):\n%s", p.status, p.url, p.body)
		}
		if n := countRows(t, env, "auth_challenges"); n != 1 {
			t.Errorf("after one sign-in: %d rows, want 1", n)
		}
		action, values := parseForm(t, p.body, "decision", "allow")
		resp, _ := fetch(t, noRedirects(b), http.MethodPost, p.url.ResolveReference(&url.URL{Path: action}).String(), values)
		resume := resp.Header.Get("Location")
		final := b.get(e.srv.URL + resume)
		if q := callback(t, final); q.Get("code") == "" || q.Get("state") != state {
			t.Fatalf("callback query = %v", q)
		}
		e.exchange(t, conf, final.url.Query().Get("code"), verifier)
		if n := countRows(t, env, "auth_challenges"); n != 0 {
			t.Errorf("after the code was issued: %d rows, want 0", n)
		}
		// The resume link is good once.
		again, body := fetch(t, noRedirects(b), http.MethodGet, e.srv.URL+resume, nil)
		isOurErrorPage(t, again, body, http.StatusBadRequest)
		if !strings.Contains(body, "expired") {
			t.Errorf("a used resume link: want the expired page, got\n%s", body)
		}
	})
}

func TestOversizedAuthorizationRequestIsRefused(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		conf := e.scoped("openid")
		base := e.authURL(conf, "s", oauth2.GenerateVerifier())
		// The state alone makes the request 9 KiB: valid client, registered redirect URI.
		bigState := strings.Repeat("s", 9<<10)
		long := strings.Replace(base, "state=s", "state="+bigState, 1)
		get := func(u string) (*http.Response, string) { return fetch(t, noRedirects(nil), http.MethodGet, u, nil) }

		resp, body := get(long)
		isOurErrorPage(t, resp, body, http.StatusBadRequest)
		if !strings.Contains(body, "over the limit") || strings.Contains(body, "server_error") {
			t.Errorf("9 KiB request: want a clear 'over the limit' page, got\n%s", body)
		}

		u, _ := url.Parse(base)
		form := u.Query()
		form.Set("state", bigState)
		resp, body = fetch(t, noRedirects(nil), http.MethodPost, e.srv.URL+"/oauth2/auth", form)
		isOurErrorPage(t, resp, body, http.StatusBadRequest)

		// Pushed (RFC 9126) by an authenticated client: the same bound, refused when pushed (par_test.go).
		web := env.createClient(t, "--name", "Web App", "--grant-types", "authorization_code",
			"--redirect-uris", spaCallback, "--scopes", "openid")
		form.Set("client_id", web.ClientID)
		code, _, par := postForm(t, e.srv.URL+"/oauth2/par", form, web.ClientID, web.ClientSecret)
		if desc, _ := par["error_description"].(string); code != http.StatusBadRequest || par["error"] != "invalid_request" || !strings.Contains(desc, "over the limit") {
			t.Errorf("pushed 9 KiB request: %d %v, want 400 invalid_request 'over the limit'", code, par)
		}

		// Up to the limit, the whole flow works: the request parked with the sign-in is restored whole.
		pad := 8<<10 - len(strings.SplitN(base, "?", 2)[1]) - len("padpad")
		state := strings.Repeat("p", pad)
		verifier := oauth2.GenerateVerifier()
		at := e.authURL(conf, state, verifier)
		if n := len(strings.SplitN(at, "?", 2)[1]); n > 8<<10 || n < 8<<10-200 {
			t.Fatalf("test request is %d bytes, want just under 8 KiB", n)
		}
		w := e.walk(newBrowser(t, spaCallback), at)
		if q := callback(t, w.page); q.Get("state") != state || q.Get("code") == "" {
			t.Fatalf("8 KiB request: callback state %d bytes, code %q", len(q.Get("state")), q.Get("code"))
		}
	})
}

func TestTamperedSignInRequestShowsExpiredPage(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		b := newBrowser(t, spaCallback)
		p := b.get(e.authURL(e.scoped("openid"), randomString(t), oauth2.GenerateVerifier()))
		action, values := loginFormOf(t, p)
		sealed := values.Get("challenge")
		if sealed == "" {
			t.Fatal("the sign-in form carries no pending request")
		}
		raw, err := base64.RawURLEncoding.DecodeString(sealed)
		if err != nil {
			t.Fatalf("the sealed request is not base64url: %v", err)
		}
		flip := func(i int) string {
			b := bytes.Clone(raw)
			b[i] ^= 1
			return base64.RawURLEncoding.EncodeToString(b)
		}
		for _, tc := range []struct{ name, value string }{
			{"a bit of the nonce changed", flip(0)},
			{"a bit of the ciphertext changed", flip(len(raw) / 2)},
			{"a bit of the tag changed", flip(len(raw) - 1)},
			{"truncated", sealed[:len(sealed)-10]},
			{"too short to hold a nonce", "AAAA"},
			{"not base64", "%%%not-base64%%%"},
			{"a row id instead of a sealed value", randomString(t) + randomString(t)},
			{"20 KiB of junk", strings.Repeat("A", 20<<10)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				v := url.Values{}
				for k := range values {
					v.Set(k, values.Get(k))
				}
				v.Set("challenge", tc.value)
				v.Set("email", adaEmail)
				v.Set("password", adaPassword)
				resp, body := fetch(t, noRedirects(b), http.MethodPost, p.url.ResolveReference(&url.URL{Path: action}).String(), v)
				isOurErrorPage(t, resp, body, http.StatusBadRequest)
				if !strings.Contains(body, "This sign-in request has expired") {
					t.Errorf("want the expired page, got\n%s", body)
				}
				for _, c := range b.c.Jar.Cookies(p.url) {
					if c.Name == "lk_session" {
						t.Fatal("a tampered request still signed the user in")
					}
				}
			})
		}
		if n := countRows(t, env, "auth_challenges"); n != 0 {
			t.Errorf("%d rows after tampered sign-ins, want 0", n)
		}
		// The genuine value still works.
		w := e.walk(b, e.authURL(e.scoped("openid"), randomString(t), oauth2.GenerateVerifier()))
		callback(t, w.page)
	})
}

// TestConsentIsBoundToWhoSignedIn is the attack of item 7: the victim's browser is signed in, an application asks
// it to sign in again (prompt=login or max_age=0) for a request without openid. Someone else signs in to that
// same pending request with their own account in another browser, then the victim's browser posts the consent
// form (or opens the resume link): no code may be issued for the victim without the victim signing in.
func TestConsentIsBoundToWhoSignedIn(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		const graceEmail, gracePassword = "grace@example.com", "another good password"
		env.cli(t, "users", "create", "--email", graceEmail, "--password", gracePassword)
		conf := e.scoped("profile", "roles") // no openid: no ID token would show who signed in
		for _, tc := range []struct{ name, param, value string }{
			{"prompt=login", "prompt", "login"},
			{"max_age=0", "max_age", "0"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				victim := newBrowser(t, spaCallback)
				e.signedIn(t, victim, "openid", "profile") // signed in earlier; consent to profile remembered
				state, verifier := randomString(t), oauth2.GenerateVerifier()
				p := victim.get(e.authURL(conf, state, verifier, oauth2.SetAuthURLParam(tc.param, tc.value)))
				loginAction, victimForm := loginFormOf(t, p)

				// The other person signs in to the victim's pending request in their own browser.
				other := newBrowser(t, spaCallback)
				op := other.get(e.srv.URL + "/login")
				_, otherForm := loginFormOf(t, op)
				otherForm.Set("challenge", victimForm.Get("challenge"))
				otherForm.Set("email", graceEmail)
				otherForm.Set("password", gracePassword)
				resp, _ := fetch(t, noRedirects(other), http.MethodPost, op.url.ResolveReference(&url.URL{Path: loginAction}).String(), otherForm)
				otherResume := resp.Header.Get("Location")
				if resp.StatusCode != http.StatusSeeOther || !strings.Contains(otherResume, "lk_challenge=") {
					t.Fatalf("the other sign-in: %d Location=%q", resp.StatusCode, otherResume)
				}
				otherPage := other.get(e.srv.URL + otherResume)
				otherChallenge := ""
				if strings.Contains(otherPage.body, `value="allow"`) {
					_, v := parseForm(t, otherPage.body, "decision", "allow")
					otherChallenge = v.Get("challenge")
				}

				// Now the victim's browser, never signed in again, tries every id it could have been given.
				ids := map[string]string{"its own form's value": victimForm.Get("challenge")}
				if otherChallenge != "" {
					ids["the other browser's consent form value"] = otherChallenge
				}
				if u, err := url.Parse(otherResume); err == nil {
					ids["the other browser's resume id"] = u.Query().Get("lk_challenge")
				}
				for what, id := range ids {
					consent := url.Values{"csrf_token": {victimForm.Get("csrf_token")}, "challenge": {id}, "decision": {"allow"}}
					got := post(victim, p, "/consent", consent)
					noCodeFor(t, got, "the victim's consent POST with "+what)
					noCodeFor(t, victim.get(e.srv.URL+"/oauth2/auth?"+url.Values{"lk_challenge": {id}}.Encode()),
						"the victim's browser resuming with "+what)
				}

				// The victim signing in for the request gets the code, as always.
				p = victim.get(e.authURL(conf, state, verifier, oauth2.SetAuthURLParam(tc.param, tc.value)))
				p = victim.submit(p, map[string]string{"email": adaEmail, "password": adaPassword})
				if strings.Contains(p.body, `value="allow"`) {
					p = victim.submit(p, nil, "decision", "allow")
				}
				if q := callback(t, p); q.Get("code") == "" || q.Get("state") != state {
					t.Fatalf("the victim's own sign-in: callback %v", q)
				}
			})
		}
	})
}

// A consent form is answered only by the browser session it was shown to: a session that signed in as someone
// else since then (in the same browser) is sent to sign in or consent for itself.
func TestConsentFormOfAnotherSessionIssuesNothing(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		env.cli(t, "users", "create", "--email", "grace@example.com", "--password", "another good password")
		b := newBrowser(t, spaCallback)
		p := b.get(e.authURL(e.scoped("profile"), randomString(t), oauth2.GenerateVerifier()))
		p = b.submit(p, map[string]string{"email": adaEmail, "password": adaPassword})
		if !strings.Contains(p.body, `value="allow"`) {
			t.Fatalf("want ada's consent page:\n%s", p.body)
		}
		adaConsent := p
		// The same browser signs in as grace (say, on another tab).
		lp := b.get(e.srv.URL + "/login")
		if got := b.submit(lp, map[string]string{"email": "grace@example.com", "password": "another good password"}); got.status != http.StatusOK {
			t.Fatalf("grace's sign-in: %d", got.status)
		}
		got := b.submit(adaConsent, nil, "decision", "allow")
		if got.url != nil && strings.HasPrefix(got.url.String(), spaCallback) {
			t.Fatalf("ada's consent page, answered in grace's session, issued a code: %v", got.url)
		}
		if !strings.Contains(got.body, `value="allow"`) || !strings.Contains(got.body, "grace@example.com") {
			t.Errorf("want grace's own consent page, got %d at %v:\n%s", got.status, got.url, got.body)
		}
	})
}
