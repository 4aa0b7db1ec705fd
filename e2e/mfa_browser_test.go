package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/mfa"
)

// Two-factor sign-in in the browser: after the password (or another provider), a user with an authenticator app
// enters its code on a page of its own; codes are computed here from the enrolment's secret.

// enrolTOTP signs email in through the token API (clientID, a first-party client of the user's pool) and enrols a
// TOTP factor, confirmed with the previous step's code; it returns the secret and the recovery codes.
func enrolTOTP(t *testing.T, api, clientID, email, password string) ([]byte, []string) {
	t.Helper()
	code, _, lg := apiCall(t, "POST", api+"/login", map[string]any{"client_id": clientID, "email": email, "password": password}, nil)
	if code != 200 {
		t.Fatalf("api login: %d %v", code, lg)
	}
	tok := lg["access_token"].(string)
	code, _, en := apiCall(t, "POST", api+"/mfa/totp/enroll", nil, bearerHeader(tok))
	if code != 201 {
		t.Fatalf("enroll: %d %v", code, en)
	}
	u, _ := url.Parse(en["otpauth_uri"].(string))
	secret, err := mfa.DecodeSecret(u.Query().Get("secret"))
	if err != nil {
		t.Fatal(err)
	}
	code, _, cf := apiCall(t, "POST", api+"/mfa/totp/confirm", map[string]any{"code": stepCode(secret, -1)}, bearerHeader(tok))
	if code != 200 {
		t.Fatalf("confirm: %d %v", code, cf)
	}
	var recovery []string
	for _, c := range cf["recovery_codes"].([]any) {
		recovery = append(recovery, c.(string))
	}
	return secret, recovery
}

// wantCodePage asserts p is the second step's page, accessible, with an error (role=alert) or not.
func wantCodePage(t *testing.T, p page, status int, withError bool) {
	t.Helper()
	for _, want := range []string{"Enter the code from your authenticator app", `autocomplete="one-time-code"`, `inputmode="numeric"`,
		`<label for="code">`, `<label for="recovery_code">`, `name="mfa_token"`, `name="csrf_token"`} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("code page (%d at %v) lacks %q:\n%s", p.status, p.url, want, p.body)
		}
	}
	if p.status != status || strings.Contains(p.body, `role="alert"`) != withError {
		t.Fatalf("code page: status %d (want %d), alert %v (want %v):\n%s", p.status, status, !withError, withError, p.body)
	}
}

// enterCode submits the code page with a TOTP code, or a recovery code when recovery is set.
func enterCode(b *browserClient, p page, code string, recovery bool) page {
	b.t.Helper()
	if recovery {
		return b.submit(p, map[string]string{"recovery_code": code}, "factor", "recovery")
	}
	return b.submit(p, map[string]string{"code": code}, "factor", "totp")
}

// toApp allows consent if asked and returns the SPA's callback query.
func toApp(t *testing.T, b *browserClient, p page) url.Values {
	t.Helper()
	if strings.Contains(p.body, `value="allow"`) {
		p = b.submit(p, nil, "decision", "allow")
	}
	return callback(t, p)
}

func amrOf(claims map[string]any) []string {
	var out []string
	for _, v := range claims["amr"].([]any) {
		out = append(out, v.(string))
	}
	return out
}

func TestMFABrowser(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		app := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid email")
		e := newEdge(t, env)
		api := e.srv.URL + "/api/v1/auth"
		waitStepStart(t)
		secret, recovery := enrolTOTP(t, api, app.ClientID, adaEmail, adaPassword)
		conf := e.scoped("openid", "email")

		// Password, then the code page; a wrong code keeps the page, with the error; the right one signs in.
		b := newBrowser(t, spaCallback)
		verifier := oauth2.GenerateVerifier()
		w := e.walk(b, e.authURL(conf, "s1", verifier))
		wantCodePage(t, w.page, http.StatusOK, false)
		p := enterCode(b, w.page, "000000", false)
		wantCodePage(t, p, http.StatusUnauthorized, true)
		good := stepCode(secret, 0)
		q := toApp(t, b, enterCode(b, p, good, false))
		_, claims := e.exchange(t, conf, q.Get("code"), verifier)
		if amr := amrOf(claims); !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
			t.Fatalf("amr = %v, want [pwd otp mfa]", amr)
		}
		// The same page again: its challenge is used up.
		wantRefusal(t, enterCode(b, p, stepCode(secret, 1), false), http.StatusBadRequest, "has expired")
		// The session remembers: a second request needs neither password nor code, with the same amr.
		verifier = oauth2.GenerateVerifier()
		q = toApp(t, b, b.get(e.authURL(conf, "s2", verifier)))
		if _, claims = e.exchange(t, conf, q.Get("code"), verifier); !slices.Equal(amrOf(claims), []string{"pwd", "otp", "mfa"}) {
			t.Fatalf("amr from the session = %v", claims["amr"])
		}

		// A replayed code is refused; a recovery code works, once.
		b2 := newBrowser(t, spaCallback)
		verifier = oauth2.GenerateVerifier()
		w = e.walk(b2, e.authURL(conf, "s3", verifier))
		p = enterCode(b2, w.page, good, false)
		wantCodePage(t, p, http.StatusUnauthorized, true)
		q = toApp(t, b2, enterCode(b2, p, strings.ToUpper(recovery[0]), true))
		if _, claims = e.exchange(t, conf, q.Get("code"), verifier); !slices.Equal(amrOf(claims), []string{"pwd", "mfa"}) {
			t.Fatalf("recovery amr = %v", claims["amr"])
		}
		b3 := newBrowser(t, spaCallback)
		w = e.walk(b3, e.authURL(conf, "s4", oauth2.GenerateVerifier()))
		wantCodePage(t, enterCode(b3, w.page, recovery[0], true), http.StatusUnauthorized, true)

		// prompt=login asks for the password and then the code again.
		verifier = oauth2.GenerateVerifier()
		w = e.walk(b, e.authURL(conf, "s5", verifier, oauth2.SetAuthURLParam("prompt", "login")))
		if !w.sawLogin {
			t.Fatal("prompt=login did not ask for the password")
		}
		wantCodePage(t, w.page, http.StatusOK, false)
		q = toApp(t, b, enterCode(b, w.page, recovery[1], true))
		if _, claims = e.exchange(t, conf, q.Get("code"), verifier); !slices.Equal(amrOf(claims), []string{"pwd", "mfa"}) {
			t.Fatalf("prompt=login amr = %v", claims["amr"])
		}

		// A challenge is bound to the browser that passed the password: another browser (its own CSRF token)
		// posting the token is refused, and the right browser can still use it.
		b4 := newBrowser(t, spaCallback)
		verifier = oauth2.GenerateVerifier()
		w = e.walk(b4, e.authURL(conf, "s6", verifier))
		_, vals := parseForm(t, w.body, "factor", "totp")
		thief := newBrowser(t, spaCallback)
		login := thief.get(e.srv.URL + "/login")
		_, thiefVals := parseForm(t, login.body)
		vals.Set("csrf_token", thiefVals.Get("csrf_token"))
		vals.Set("code", stepCode(secret, 1))
		wantRefusal(t, post(thief, login, "/login/mfa", vals), http.StatusBadRequest, "has expired")
		// Without the CSRF token: 403.
		vals.Del("csrf_token")
		if p := post(b4, w.page, "/login/mfa", vals); p.status != http.StatusForbidden {
			t.Fatalf("no CSRF token: %d\n%s", p.status, p.body)
		}
		q = toApp(t, b4, enterCode(b4, w.page, stepCode(secret, 1), false))
		if _, claims = e.exchange(t, conf, q.Get("code"), verifier); !slices.Equal(amrOf(claims), []string{"pwd", "otp", "mfa"}) {
			t.Fatalf("amr = %v", claims["amr"])
		}

		// An expired challenge (5 minutes) is refused.
		b5 := newBrowser(t, spaCallback)
		w = e.walk(b5, e.authURL(conf, "s7", oauth2.GenerateVerifier()))
		wantCodePage(t, w.page, http.StatusOK, false)
		execSQL(t, env, "UPDATE mfa_challenges SET expires_at = ? WHERE used_at IS NULL", time.Now().Add(-time.Second).UTC())
		wantRefusal(t, enterCode(b5, w.page, recovery[2], true), http.StatusBadRequest, "has expired")

		// A direct sign-in (no authorization request) goes to the account page after the code.
		b6 := newBrowser(t, spaCallback)
		p = b6.submit(b6.get(e.srv.URL+"/login"), map[string]string{"email": adaEmail, "password": adaPassword})
		wantCodePage(t, p, http.StatusOK, false)
		if p = enterCode(b6, p, recovery[3], true); p.status != 200 || p.url.Path != "/account/sessions" {
			t.Fatalf("direct sign-in after the code: %d at %v", p.status, p.url)
		}
	})
}

// A pool that requires MFA: a user who has not enrolled is told to set up the app first (no session).
func TestMFABrowserEnrolFirst(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		env.cli(t, "pools", "update", "--name", "default", "--mfa", "required")
		b := newBrowser(t, spaCallback)
		w := e.walk(b, e.authURL(e.scoped("openid"), "s", oauth2.GenerateVerifier()))
		if w.status != http.StatusForbidden || !strings.Contains(w.body, "Set up two-factor sign-in first") || !strings.Contains(w.body, `role="alert"`) {
			t.Fatalf("enrol-first page: %d\n%s", w.status, w.body)
		}
		if p := b.get(e.srv.URL + "/account/sessions"); !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("signed in without a second factor:\n%s", p.body)
		}
	})
}

// Another provider vouches for the first factor only: the code page follows, and the amr says both.
func TestMFABrowserUpstream(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		app := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid email")
		f := newUpstreamFixture(t, env)
		waitStepStart(t)
		secret, _ := enrolTOTP(t, f.srv.URL+"/api/v1/auth", app.ClientID, adaEmail, adaPassword)
		b := newBrowser(t, spaCallback)
		p, conf, verifier := f.startUpstream(t, b, "corp")
		p = f.signInUpstream(t, b, p, adaEmail, "ada upstream pw")
		if !strings.HasPrefix(p.url.String(), f.srv.URL) {
			t.Fatalf("code page not downstream: %v", p.url)
		}
		wantCodePage(t, p, http.StatusOK, false)
		q := toApp(t, b, enterCode(b, p, stepCode(secret, 0), false))
		_, claims := f.exchange(t, conf, q.Get("code"), verifier)
		if amr := amrOf(claims); !slices.Equal(amr, []string{"fed", "otp", "mfa"}) {
			t.Fatalf("amr = %v, want [fed otp mfa]", amr)
		}
	})
}
