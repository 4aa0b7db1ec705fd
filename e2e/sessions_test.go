package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/models"
)

func TestRPInitiatedLogout(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		logoutURL := e.srv.URL + "/oauth2/logout"
		promptNone := func(t *testing.T, b *browserClient) url.Values {
			t.Helper()
			resp, body := fetch(t, noRedirects(b), http.MethodGet,
				e.authURL(e.conf, randomString(t), oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("prompt", "none")), nil)
			return redirectedTo(t, resp, body, spaCallback)
		}
		// stillSignedIn checks the session and its grant are alive; the refresh rotates *rt.
		stillSignedIn := func(t *testing.T, b *browserClient, rt *string) {
			t.Helper()
			if q := promptNone(t, b); q.Get("code") == "" {
				t.Errorf("the session ended: prompt=none gave %v", q)
			}
			code, body := e.tokenCall(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {*rt}})
			if code != http.StatusOK {
				t.Errorf("refresh token stopped working: %d %v", code, body)
				return
			}
			*rt, _ = body["refresh_token"].(string)
		}
		signedOut := func(t *testing.T, b *browserClient, rt string) {
			t.Helper()
			e.mustRefreshFail(t, rt, "after logout")
			if q := promptNone(t, b); q.Get("error") != "login_required" {
				t.Errorf("after logout prompt=none gave %v, want login_required", q)
			}
		}

		t.Run("with id_token_hint back to the registered URI", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			tok, _ := e.signedIn(t, b)
			hint, _ := tok.Extra("id_token").(string)
			q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {spaBye}, "state": {"xyz"}}
			resp, body := fetch(t, noRedirects(b), http.MethodGet, logoutURL+"?"+q.Encode(), nil)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != spaBye+"?state=xyz" {
				t.Fatalf("logout: %d Location=%q, want 303 to %s?state=xyz\n%s", resp.StatusCode, resp.Header.Get("Location"), spaBye, body)
			}
			signedOut(t, b, tok.RefreshToken)
		})

		t.Run("logout revokes refreshed tokens and unredeemed codes of the session", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			tok, _ := e.signedIn(t, b)
			hint, _ := tok.Extra("id_token").(string)
			code, refreshed := e.tokenCall(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
			if code != http.StatusOK {
				t.Fatalf("refresh: %d %v", code, refreshed)
			}
			verifier := oauth2.GenerateVerifier()
			pending := callback(t, e.walk(b, e.authURL(e.conf, randomString(t), verifier)).page).Get("code")

			q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {spaBye}}
			if resp, body := fetch(t, noRedirects(b), http.MethodGet, logoutURL+"?"+q.Encode(), nil); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("logout: %d\n%s", resp.StatusCode, body)
			}
			at, _ := refreshed["access_token"].(string)
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+at)
			if code, _, _ := do(t, req); code != http.StatusUnauthorized {
				t.Errorf("access token from a refresh after logout: userinfo %d, want 401", code)
			}
			rt, _ := refreshed["refresh_token"].(string)
			e.mustRefreshFail(t, rt, "rotated refresh token after logout")
			code, body := e.tokenCall(t, url.Values{"grant_type": {"authorization_code"}, "code": {pending},
				"redirect_uri": {spaCallback}, "code_verifier": {verifier}})
			if code != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Errorf("code issued before logout, redeemed after: %d %v, want 400 invalid_grant", code, body)
			}
		})

		t.Run("unregistered post_logout_redirect_uri", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			tok, _ := e.signedIn(t, b)
			hint, _ := tok.Extra("id_token").(string)
			for _, target := range []string{"https://evil.example/bye", spaBye + "/x", spaCallback} {
				q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {target}, "state": {"xyz"}}
				resp, body := fetch(t, noRedirects(b), http.MethodGet, logoutURL+"?"+q.Encode(), nil)
				isOurErrorPage(t, resp, body, http.StatusBadRequest)
			}
			stillSignedIn(t, b, &tok.RefreshToken)
		})

		t.Run("without id_token_hint the user confirms", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			tok, _ := e.signedIn(t, b)
			p := b.get(logoutURL)
			if p.status != http.StatusOK || !strings.Contains(p.body, `value="logout"`) {
				t.Fatalf("logout without hint: %d\n%s", p.status, p.body)
			}
			stillSignedIn(t, b, &tok.RefreshToken)

			f := formsOf(t, p.body)[0]
			forged := url.Values{"decision": {"logout"}, "csrf_token": {"forged"}}
			if got := post(b, p, f.action, forged); got.status != http.StatusForbidden {
				t.Errorf("logout with a forged csrf_token: %d, want 403", got.status)
			}
			if got := b.submit(p, nil, "decision", "cancel"); got.status != http.StatusOK || !strings.Contains(got.body, "still signed in") {
				t.Errorf("cancel: %d\n%s", got.status, got.body)
			}
			stillSignedIn(t, b, &tok.RefreshToken)

			got := b.submit(p, nil, "decision", "logout")
			if got.status != http.StatusOK || !strings.Contains(got.body, "You have been signed out.") {
				t.Errorf("confirmed logout: %d\n%s", got.status, got.body)
			}
			signedOut(t, b, tok.RefreshToken)
		})

		t.Run("another session's id_token_hint needs confirmation", func(t *testing.T) {
			other := newBrowser(t, spaCallback)
			otherTok, _ := e.signedIn(t, other)
			b := newBrowser(t, spaCallback)
			tok, _ := e.signedIn(t, b)
			hint, _ := otherTok.Extra("id_token").(string)
			q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {spaBye}, "state": {"xyz"}}
			resp, body := fetch(t, noRedirects(b), http.MethodGet, logoutURL+"?"+q.Encode(), nil)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `value="logout"`) {
				t.Errorf("hint of another session: %d Location=%q, want the confirmation page", resp.StatusCode, resp.Header.Get("Location"))
			}
			stillSignedIn(t, b, &tok.RefreshToken)
			stillSignedIn(t, other, &otherTok.RefreshToken)
		})
	})
}

func TestAccountSessions(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		sessionsURL := e.srv.URL + "/account/sessions"
		type signedInBrowser struct {
			b   *browserClient
			rt  string
			at  string
			sid string
		}
		signIn := func(t *testing.T) signedInBrowser {
			b := newBrowser(t, spaCallback)
			tok, claims := e.signedIn(t, b)
			sid, _ := claims["sid"].(string)
			if sid == "" {
				t.Fatal("ID token has no sid")
			}
			return signedInBrowser{b: b, rt: tok.RefreshToken, at: tok.AccessToken, sid: sid}
		}
		cliSessions := func(t *testing.T) map[string]sessionJSON {
			t.Helper()
			var list []sessionJSON
			out := env.cli(t, "sessions", "list", "--user", adaEmail, "--json")
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				t.Fatalf("sessions list --json: %v\n%s", err, out)
			}
			m := map[string]sessionJSON{}
			for _, s := range list {
				m[s.ID] = s
			}
			return m
		}
		rows := func(body string) int { return strings.Count(body, `name="session_id"`) }
		currentRow := func(body string) string {
			_, rest, ok := strings.Cut(body, `aria-current="true"`)
			if !ok {
				return ""
			}
			row, _, _ := strings.Cut(rest, "</tr>")
			return row
		}
		userinfoStatus := func(at string) int {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+at)
			code, _, _ := do(t, req)
			return code
		}

		a, b := signIn(t), signIn(t)
		if a.sid == b.sid {
			t.Fatal("two browsers share a session")
		}

		list := cliSessions(t)
		if len(list) != 2 || list[a.sid].ID == "" || list[b.sid].ID == "" {
			t.Fatalf("CLI lists %v, want the sessions %s and %s", list, a.sid, b.sid)
		}
		if s := list[a.sid]; s.IP != "127.0.0.1" || !strings.Contains(s.UserAgent, "Firefox") || s.ExpiresAt.Before(time.Now()) {
			t.Errorf("CLI session = %+v", s)
		}

		p := a.b.get(sessionsURL)
		if p.status != http.StatusOK || rows(p.body) != 2 {
			t.Fatalf("sessions page: %d with %d sessions, want 2:\n%s", p.status, rows(p.body), p.body)
		}
		if strings.Count(p.body, "This device") != 1 || !strings.Contains(currentRow(p.body), `value="`+a.sid+`"`) || !strings.Contains(currentRow(p.body), "This device") {
			t.Errorf("the current session is not the one marked as this device:\n%s", p.body)
		}
		if !strings.Contains(p.body, adaEmail) {
			t.Error("sessions page does not say who is signed in")
		}

		t.Run("end another browser's session", func(t *testing.T) {
			f := formWith(t, p.body, "session_id", b.sid)
			got := post(a.b, p, f.action, f.values)
			if got.status != http.StatusOK || !strings.Contains(got.body, "Session ended.") || rows(got.body) != 1 {
				t.Errorf("after ending B: %d, %d sessions\n%s", got.status, rows(got.body), got.body)
			}
			e.mustRefreshFail(t, b.rt, "B's session was ended")
			if code := userinfoStatus(b.at); code != http.StatusUnauthorized {
				t.Errorf("B's access token at userinfo: %d, want 401", code)
			}
			if resp, _ := fetch(t, noRedirects(b.b), http.MethodGet, sessionsURL, nil); resp.StatusCode != http.StatusSeeOther {
				t.Errorf("B still sees the sessions page: %d", resp.StatusCode)
			}
			if code, errCode := e.refresh(t, a.rt); code != http.StatusOK {
				t.Errorf("A's refresh token: %d %s", code, errCode)
			} else {
				a.rt = "" // rotated; not needed again
			}
		})

		t.Run("another user's session cannot be ended", func(t *testing.T) {
			env.cli(t, "users", "create", "--email", "grace@example.com", "--password", "another good password")
			g := newBrowser(t, spaCallback)
			gp := e.walk(g, e.srv.URL+"/account/sessions", "grace@example.com", "another good password")
			f := formsOf(t, gp.body)[0]
			f.values.Set("session_id", a.sid)
			if got := post(g, gp.page, f.action, f.values); got.status != http.StatusNotFound {
				t.Errorf("ending someone else's session: %d, want 404", got.status)
			}
			if _, ok := cliSessions(t)[a.sid]; !ok {
				t.Error("another user ended ada's session")
			}
		})

		t.Run("end all other sessions", func(t *testing.T) {
			c, d := signIn(t), signIn(t)
			p := a.b.get(sessionsURL)
			if rows(p.body) != 3 {
				t.Fatalf("sessions page lists %d sessions, want 3", rows(p.body))
			}
			f := formWith(t, p.body, "all_others", "1")
			got := post(a.b, p, f.action, f.values)
			if got.status != http.StatusOK || !strings.Contains(got.body, "All other sessions ended.") || rows(got.body) != 1 {
				t.Errorf("after ending the others: %d, %d sessions\n%s", got.status, rows(got.body), got.body)
			}
			e.mustRefreshFail(t, c.rt, "C's session was ended")
			e.mustRefreshFail(t, d.rt, "D's session was ended")
			if list := cliSessions(t); len(list) != 1 || list[a.sid].ID == "" {
				t.Errorf("CLI lists %v, want only A's session", list)
			}
		})

		t.Run("signed out, the page asks to sign in and comes back", func(t *testing.T) {
			fresh := newBrowser(t, spaCallback)
			resp, _ := fetch(t, noRedirects(fresh), http.MethodGet, sessionsURL, nil)
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/login?return_to=%2Faccount%2Fsessions" {
				t.Fatalf("without a session: %d Location=%q, want 303 to /login?return_to=%%2Faccount%%2Fsessions", resp.StatusCode, loc)
			}
			w := e.walk(fresh, sessionsURL)
			if !w.sawLogin || w.url.Path != "/account/sessions" || !strings.Contains(w.body, "Your sessions") || rows(w.body) != 2 {
				t.Fatalf("after signing in: at %v (%d sessions)\n%s", w.url, rows(w.body), w.body)
			}

			// The CLI ends that session by id.
			var id string
			for sid := range cliSessions(t) {
				if sid != a.sid {
					id = sid
				}
			}
			out := env.cli(t, "sessions", "revoke", "--id", id)
			if !strings.Contains(out, id) {
				t.Errorf("sessions revoke said %q", out)
			}
			if list := cliSessions(t); len(list) != 1 {
				t.Errorf("after revoke the CLI lists %d sessions, want 1", len(list))
			}
			if resp, _ := fetch(t, noRedirects(fresh), http.MethodGet, sessionsURL, nil); resp.StatusCode != http.StatusSeeOther {
				t.Errorf("the revoked browser still sees the sessions page: %d", resp.StatusCode)
			}
			if _, _, code := env.cliCode(t, "", "sessions", "revoke", "--id", id); code == 0 {
				t.Error("revoking an ended session succeeded")
			}
		})
	})
}

// A password change ends every sign-in made with the old password, including the ones in flight when it
// happens; sign-ups that cannot succeed cost no hash and leave no trace; a user's sessions are capped; and the
// token API takes no token whose session is over.

// signInFixture: a first-party app and the user bob, both in the default pool, so the token API and the
// sign-in form reach the same account; the throttle runs on clock.
type signInFixture struct {
	env      testEnv
	srv      *server
	api      string
	clientID string
	userID   string
	clock    *testClock
	logs     *lockedBuffer
}

func newSignInFixture(t *testing.T, env testEnv, password string) *signInFixture {
	t.Helper()
	env["LATCHKEY_LOG_LEVEL"] = "info"
	app := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid profile email roles offline_access")
	env.cli(t, "users", "create", "--email", "bob@example.com", "--password", password)
	f := &signInFixture{env: env, clientID: app.ClientID, clock: &testClock{now: time.Now()}, logs: &lockedBuffer{}}
	f.srv = startServerAt(t, env, f.clock, f.logs)
	f.api = f.srv.URL + "/api/v1/auth"
	u, err := f.srv.app.Store().UserByEmail(context.Background(), "", "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	f.userID = u.ID
	return f
}

func (f *signInFixture) creds(password string) map[string]any {
	return map[string]any{"client_id": f.clientID, "email": "bob@example.com", "password": password}
}

// activeSessions lists bob's sessions that are active now, straight from the store.
func (f *signInFixture) activeSessions(t *testing.T) []models.BrowserSession {
	t.Helper()
	l, err := f.srv.app.Store().ListBrowserSessions(context.Background(), f.userID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// formSignIn is a browser on the sign-in form, holding its CSRF cookie and token, ready to post.
type formSignIn struct {
	client *http.Client
	csrf   string
}

func (f *signInFixture) openForm(t *testing.T) formSignIn {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(f.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, values := parseForm(t, string(body))
	return formSignIn{client: c, csrf: values.Get("csrf_token")}
}

// post submits the form and returns the status (303 signed in, 401 refused); safe in any goroutine.
func (b formSignIn) post(base, password string) (int, error) {
	form := url.Values{"email": {"bob@example.com"}, "password": {password}, "csrf_token": {b.csrf}}
	resp, err := b.client.PostForm(base+"/login", form)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Rounds of 30 token-API sign-ins and 10 sign-in-form submissions with the current password, sent at once with a
// password change (by an operator with `users set-password`, or by the user at POST /password). Whatever the
// interleaving, afterwards no session created with the old password is active (only the one the user changed it
// from), and no token handed out for one works: refresh fails and the token API refuses the access token.
func TestPasswordChangeEndsSignInsInFlight(t *testing.T) {
	t.Parallel()
	const rounds, apiLogins, formLogins = 8, 30, 10
	forEachDB(t, func(t *testing.T, env testEnv) {
		password := func(round int) string { return fmt.Sprintf("round-%d-violet-tractor", round) }
		f := newSignInFixture(t, env, password(0))
		accepted, refused := 0, 0
		for round := range rounds {
			old, next := password(round), password(round+1)
			byUser := round%2 == 1
			keep, keepToken := "", ""
			if byUser {
				code, _, body := apiCall(t, "POST", f.api+"/login", f.creds(old), nil)
				if code != http.StatusOK {
					t.Fatalf("round %d: login to change the password from: %d %v", round, code, body)
				}
				keep, keepToken = body["session_id"].(string), body["access_token"].(string)
			}
			forms := make([]formSignIn, formLogins)
			for i := range forms {
				forms[i] = f.openForm(t)
			}

			apiAnswers := make([]answer, apiLogins)
			formStatus := make([]int, formLogins)
			formErrs := make([]error, formLogins)
			var changeErr error
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range apiLogins {
				req := jsonRequest("POST", f.api+"/login", f.creds(old), nil)
				wg.Go(func() {
					<-start
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						apiAnswers[i].err = err
						return
					}
					defer resp.Body.Close()
					raw, _ := io.ReadAll(resp.Body)
					apiAnswers[i].status = resp.StatusCode
					apiAnswers[i].body = mustJSON(t, raw)
				})
			}
			for i := range forms {
				wg.Go(func() {
					<-start
					formStatus[i], formErrs[i] = forms[i].post(f.srv.URL, old)
				})
			}
			wg.Go(func() {
				<-start
				if byUser {
					// The change competes with the sign-ins for the account's attempts: when throttled, it waits
					// the block out on the test's clock (which lets more sign-ins through too) and tries again.
					for range 20 {
						req := jsonRequest("POST", f.api+"/password",
							map[string]any{"current_password": old, "new_password": next}, bearerHeader(keepToken))
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							changeErr = err
							return
						}
						resp.Body.Close()
						if resp.StatusCode != http.StatusTooManyRequests {
							if resp.StatusCode != http.StatusOK {
								changeErr = fmt.Errorf("POST /password: %d", resp.StatusCode)
							}
							return
						}
						wait, _ := time.ParseDuration(resp.Header.Get("Retry-After") + "s")
						f.clock.Advance(wait)
					}
					changeErr = fmt.Errorf("POST /password: still throttled")
					return
				}
				if _, errOut, code := env.cliCode(t, "", "users", "set-password", "--email", "bob@example.com", "--password", next); code != 0 {
					changeErr = fmt.Errorf("users set-password: exit %d: %s", code, errOut)
				}
			})
			close(start)
			wg.Wait()
			if changeErr != nil {
				t.Fatalf("round %d: %v", round, changeErr)
			}

			for _, s := range f.activeSessions(t) {
				if s.ID != keep {
					t.Errorf("round %d: session %s, created with the old password, survived the change (by user: %v)", round, s.ID, byUser)
				}
			}
			for i, a := range apiAnswers {
				switch {
				case a.err != nil:
					t.Fatalf("round %d: API login %d: %v", round, i, a.err)
				case a.status == http.StatusOK:
					accepted++
					code, _, body := apiCall(t, "POST", f.api+"/refresh", map[string]any{"refresh_token": a.body["refresh_token"]}, nil)
					if code == http.StatusOK {
						t.Errorf("round %d: the refresh token of a sign-in with the old password still works", round)
					} else if code != http.StatusBadRequest || body["error"] != "invalid_grant" {
						t.Errorf("round %d: refresh after the change: %d %v, want 400 invalid_grant", round, code, body)
					}
					if code, _, _ := apiCall(t, "GET", f.api+"/me", nil, bearerHeader(a.body["access_token"].(string))); code != http.StatusUnauthorized {
						t.Errorf("round %d: the access token of a sign-in with the old password: /me %d, want 401", round, code)
					}
				case a.status == http.StatusUnauthorized || a.status == http.StatusTooManyRequests:
					refused++
				default:
					t.Errorf("round %d: API login %d: %d %v", round, i, a.status, a.body)
				}
			}
			for i, st := range formStatus {
				switch {
				case formErrs[i] != nil:
					t.Fatalf("round %d: form sign-in %d: %v", round, i, formErrs[i])
				case st == http.StatusSeeOther:
					accepted++
				case st == http.StatusUnauthorized || st == http.StatusTooManyRequests:
					refused++
				default:
					t.Errorf("round %d: form sign-in %d: %d", round, i, st)
				}
			}
			if byUser {
				if code, _, body := apiCall(t, "GET", f.api+"/me", nil, bearerHeader(keepToken)); code != http.StatusOK {
					t.Errorf("round %d: the session the password was changed from: /me %d %v, want 200", round, code, body)
				}
			}
			// Every guess with the old password after the change counted; start the next round afresh.
			f.clock.Advance(2 * time.Hour)
		}
		// How many sign-ins passed the password check with the old password, then lost the race to the change:
		// the case this test exists for (it depends on timing, so it is reported rather than asserted).
		late := strings.Count(f.logs.String(), "since the check")
		t.Logf("%d sign-ins with the old password accepted before the change (all ended), %d refused; %d of those refused at session creation after passing the hash",
			accepted, refused, late)
		if _, _, body := apiCall(t, "POST", f.api+"/login", f.creds(password(rounds)), nil); body["access_token"] == nil {
			t.Errorf("the final password does not sign in: %v", body)
		}
	})
}

// An operator's reset ends every session and its tokens in the same step, and says how many.
func TestOperatorPasswordResetEndsEverySession(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newSignInFixture(t, env, "first-violet-tractor")
		var refresh []string
		for range 3 {
			code, _, body := apiCall(t, "POST", f.api+"/login", f.creds("first-violet-tractor"), nil)
			if code != http.StatusOK {
				t.Fatalf("login: %d %v", code, body)
			}
			refresh = append(refresh, body["refresh_token"].(string))
		}
		_, errOut, code := env.cliCode(t, "second-violet-tractor\n", "users", "set-password", "--email", "bob@example.com", "--password-stdin")
		if code != 0 || !strings.Contains(errOut, "ended 3 session(s)") {
			t.Fatalf("set-password: exit %d, stderr %q", code, errOut)
		}
		if n := len(f.activeSessions(t)); n != 0 {
			t.Errorf("%d sessions active after the reset, want 0", n)
		}
		for _, rt := range refresh {
			if code, _, _ := apiCall(t, "POST", f.api+"/refresh", map[string]any{"refresh_token": rt}, nil); code != http.StatusBadRequest {
				t.Errorf("refresh after the reset: %d, want 400", code)
			}
		}
	})
}

// Sign-ups that cannot succeed are refused before anything is reserved or hashed: however many, they are never
// throttled, create no user and leave no throttle row. A successful sign-in leaves no row either (its IP
// reservation is refunded, its account count reset).
func TestSignupRefusedBeforeAnythingIsReserved(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newThrottleFixture(t, env, 1)
		body := func(i int, email, scope string) map[string]any {
			b := f.creds(email, bobPassword)
			if scope != "" {
				b["scope"] = scope
			}
			return b
		}
		for _, tc := range []struct {
			name  string
			body  func(i int) map[string]any
			error string
		}{
			{"a scope the client does not have", func(i int) map[string]any {
				return body(i, fmt.Sprintf("scope%d@example.com", i), "openid nope")
			}, "invalid_scope"},
			{"an invalid email", func(i int) map[string]any { return body(i, fmt.Sprintf("not-an-email-%d", i), "") }, "invalid_request"},
			{"a name over the limit", func(i int) map[string]any {
				b := body(i, fmt.Sprintf("long%d@example.com", i), "")
				b["name"] = strings.Repeat("n", 201)
				return b
			}, "invalid_request"},
		} {
			answers, counts := burst(t, 40, http.DefaultClient, func(i int) *http.Request {
				return jsonRequest("POST", f.api(0)+"/signup", tc.body(i), nil)
			})
			if counts[http.StatusBadRequest] != 40 {
				t.Errorf("40 sign-ups with %s: answers by status %v, want 40 × 400", tc.name, counts)
			}
			if answers[0].body["error"] != tc.error {
				t.Errorf("sign-up with %s: %v, want %s", tc.name, answers[0].body, tc.error)
			}
		}
		if n := countRows(t, env, "login_throttle"); n != 0 {
			t.Errorf("%d throttle rows after 120 refused sign-ups, want 0", n)
		}
		if n := countRows(t, env, "users"); n != 1 {
			t.Errorf("%d users after the refused sign-ups, want bob alone", n)
		}
		// The address was never throttled: a good sign-up goes through.
		if code, _, body := apiCall(t, "POST", f.api(0)+"/signup", f.creds("carol@example.com", bobPassword), nil); code != http.StatusCreated {
			t.Fatalf("a good sign-up after the refused ones: %d %v", code, body)
		}
		// Success resets the account's count and refunds the address's attempt, which leaves no row for either:
		// the one row is the address's count of successful sign-ups.
		if n := countRows(t, env, "login_throttle"); n != 1 {
			t.Errorf("%d throttle rows after a successful sign-up, want 1 (the address's sign-ups)", n)
		}
		if code, _, body := apiCall(t, "POST", f.api(0)+"/login", f.creds("bob@example.com", bobPassword), nil); code != http.StatusOK {
			t.Fatalf("login: %d %v", code, body)
		}
		if n := countRows(t, env, "login_throttle"); n != 1 {
			t.Errorf("%d throttle rows after a successful sign-in, want still 1", n)
		}
	})
}

// A user's active sessions are capped: after 60 sign-ins exactly models.MaxActiveSessions are active, and the
// oldest sign-ins' tokens stop working. (Sign-ins run one after another here, since the account's throttle
// refuses more than a few at once; the store's contract suite creates sessions concurrently.)
func TestSessionsPerUserAreCapped(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newSignInFixture(t, env, "violet-tractor-47")
		var logins []map[string]any
		for i := range 60 {
			code, _, body := apiCall(t, "POST", f.api+"/login", f.creds("violet-tractor-47"), nil)
			if code != http.StatusOK {
				t.Fatalf("login %d: %d %v", i, code, body)
			}
			logins = append(logins, body)
		}
		if n := len(f.activeSessions(t)); n != models.MaxActiveSessions {
			t.Errorf("%d active sessions after 60 sign-ins, want %d", n, models.MaxActiveSessions)
		}
		for i, l := range logins {
			want := http.StatusOK
			if i < len(logins)-models.MaxActiveSessions { // among the oldest, whose sessions the cap ended
				want = http.StatusUnauthorized
			}
			if code, _, _ := apiCall(t, "GET", f.api+"/me", nil, bearerHeader(l["access_token"].(string))); code != want {
				t.Errorf("sign-in %d's access token: /me %d, want %d", i, code, want)
			}
			if i == 0 {
				if code, _, _ := apiCall(t, "POST", f.api+"/refresh", map[string]any{"refresh_token": l["refresh_token"]}, nil); code != http.StatusBadRequest {
					t.Errorf("refresh of the oldest sign-in: %d, want 400", code)
				}
			}
		}
	})
}

// The token API takes no access token whose session is over — ended, idle past its deadline or past its
// absolute lifetime — even while the token itself has not expired; a session it cannot read is our fault.
func TestTokenAPIRefusesTokensOfEndedSessions(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newSignInFixture(t, env, "violet-tractor-47")
		past := time.Now().Add(-time.Minute).UTC()
		for _, tc := range []struct {
			name string
			set  string
		}{
			{"ended", "ended_at = ?"},
			{"idle past its deadline", "idle_expires_at = ?"},
			{"past its absolute lifetime", "expires_at = ?, idle_expires_at = ?"},
		} {
			code, _, body := apiCall(t, "POST", f.api+"/login", f.creds("violet-tractor-47"), nil)
			if code != http.StatusOK {
				t.Fatalf("login: %d %v", code, body)
			}
			auth := bearerHeader(body["access_token"].(string))
			if code, _, _ := apiCall(t, "GET", f.api+"/me", nil, auth); code != http.StatusOK {
				t.Fatalf("/me before: %d", code)
			}
			// The row changes behind the server's back, as time passing would: the access token stays stored.
			args := []any{past}
			if strings.Count(tc.set, "?") == 2 {
				args = append(args, past)
			}
			execSQL(t, env, "UPDATE browser_sessions SET "+tc.set+" WHERE id = ?", append(args, body["session_id"])...)
			for _, path := range []string{"/me", "/sessions"} {
				code, hdr, got := apiCall(t, "GET", f.api+path, nil, auth)
				if code != http.StatusUnauthorized || got["error"] != "invalid_token" || !strings.Contains(hdr.Get("WWW-Authenticate"), "invalid_token") {
					t.Errorf("%s with the token of a session %s: %d %v, want 401 invalid_token", path, tc.name, code, got)
				}
			}
		}

		code, _, body := apiCall(t, "POST", f.api+"/login", f.creds("violet-tractor-47"), nil)
		if code != http.StatusOK {
			t.Fatalf("login: %d %v", code, body)
		}
		execSQL(t, env, "ALTER TABLE browser_sessions RENAME TO browser_sessions_away")
		code, _, got := apiCall(t, "GET", f.api+"/me", nil, bearerHeader(body["access_token"].(string)))
		execSQL(t, env, "ALTER TABLE browser_sessions_away RENAME TO browser_sessions")
		if code < 500 {
			t.Errorf("/me while the session table is gone: %d %v, want a 5xx, never 401", code, got)
		}
		if logs := f.logs.String(); !strings.Contains(logs, "api: load the token's session") || !strings.Contains(logs, `"level":"ERROR"`) {
			t.Errorf("the failure is not logged at ERROR")
		}
	})
}
