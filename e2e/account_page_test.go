package e2e

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/mfa"
)

// The account page (/account) through the real server, without JavaScript: a cookie-keeping client reads the
// page's forms and posts them as a browser would.

// accountForm returns the values of the page's form posting to action (hidden inputs and named inputs with a
// value), with fields set; it fails the test when the page has no such form.
func accountForm(t *testing.T, p page, action string, fields map[string]string) url.Values {
	t.Helper()
	for _, f := range formsOf(t, p.body) {
		if f.action == action {
			v := url.Values{}
			for k, vals := range f.values {
				v.Set(k, vals[0])
			}
			for k, val := range fields {
				v.Set(k, val)
			}
			return v
		}
	}
	t.Fatalf("no form posting to %s on the page (%d at %v):\n%s", action, p.status, p.url, p.body)
	return nil
}

// accountPost posts the page's form to action with fields and returns the page that comes back.
func accountPost(b *browserClient, p page, action string, fields map[string]string) page {
	b.t.Helper()
	return post(b, p, action, accountForm(b.t, p, action, fields))
}

// wantAccount asserts p is the account page with status and (when non-empty) the text want.
func wantAccount(t *testing.T, p page, status int, want string) {
	t.Helper()
	if p.status != status || p.url.Path != "/account" && !strings.HasPrefix(p.url.Path, "/account/") || !strings.Contains(p.body, "<h1>Your account</h1>") ||
		!strings.Contains(p.body, want) {
		t.Fatalf("account page: %d at %v, want %d with %q:\n%s", p.status, p.url, status, want, p.body)
	}
}

var (
	secretPattern   = regexp.MustCompile(`<code class="secret">([A-Z2-7]+)</code>`)
	recoveryPattern = regexp.MustCompile(`<li><code>([^<]+)</code></li>`)
)

// signInAt signs b in on the sign-in page of pool (returning to the account page) with email and password and
// returns where it ends: the account page, or the code page when a second factor is asked.
func signInAt(b *browserClient, base, pool, email, password string) page {
	b.t.Helper()
	q := url.Values{"return_to": {"/account?pool=" + pool}, "pool": {pool}}
	login := b.get(base + "/login?" + q.Encode())
	if !strings.Contains(login.body, `name="password"`) {
		b.t.Fatalf("not the sign-in page: %d at %v\n%s", login.status, login.url, login.body)
	}
	return b.submit(login, map[string]string{"email": email, "password": password})
}

func TestAccountPage(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ms, srv, clientID := mailFixture(t, env, false)
		env.cli(t, "users", "create", "--pool", "members", "--email", "ada@example.com", "--password", "violet-tractor-47", "--name", "Ada")
		base := srv.URL

		// Not signed in: to the pool's sign-in page, returning here.
		for path, want := range map[string]string{
			"/account":              "/login?return_to=%2Faccount",
			"/account?pool=members": "/login?pool=members&return_to=%2Faccount%3Fpool%3Dmembers",
		} {
			resp, body := fetch(t, noRedirects(newBrowser(t, "http://never.example")), http.MethodGet, base+path, nil)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
				t.Fatalf("GET %s signed out: %d Location=%q, want 303 to %s\n%s", path, resp.StatusCode, resp.Header.Get("Location"), want, body)
			}
		}

		b := newBrowser(t, "http://never.example")
		p := signInAt(b, base, "members", "ada@example.com", "violet-tractor-47")
		wantAccount(t, p, http.StatusOK, "ada@example.com")
		for _, want := range []string{`value="Ada"`, "Not verified", `href="/account/sessions"`, `href="/account/passkeys"`,
			"No second factor is set up", "No other provider is linked"} {
			if !strings.Contains(p.body, want) {
				t.Fatalf("account page lacks %q:\n%s", want, p.body)
			}
		}
		// A second browser, whose session the password change will end.
		other := newBrowser(t, "http://never.example")
		wantAccount(t, signInAt(other, base, "members", "ada@example.com", "violet-tractor-47"), http.StatusOK, "ada@example.com")

		// Every form is CSRF-checked: a forged or missing token changes nothing.
		forged := accountForm(t, p, "/account/profile", map[string]string{"name": "Mallory"})
		forged.Set("csrf_token", "forged")
		if got := post(b, p, "/account/profile", forged); got.status != http.StatusForbidden {
			t.Fatalf("profile with a forged CSRF token: %d\n%s", got.status, got.body)
		}
		forged.Del("csrf_token")
		if got := post(b, p, "/account/password", forged); got.status != http.StatusForbidden {
			t.Fatalf("password form without a CSRF token: %d\n%s", got.status, got.body)
		}

		// Profile: the name changes; a name the store refuses is the page again with the message.
		p = accountPost(b, p, "/account/profile", map[string]string{"name": "Ada King"})
		wantAccount(t, p, http.StatusOK, `value="Ada King"`)
		if !strings.Contains(p.body, "Profile saved.") || strings.Contains(p.body, "Mallory") {
			t.Fatalf("profile saved:\n%s", p.body)
		}
		bad := accountPost(b, p, "/account/profile", map[string]string{"name": strings.Repeat("n", 201)})
		wantAccount(t, bad, http.StatusBadRequest, `role="alert"`)

		// Resend verification: the mail reaches the SMTP server through the outbox; its link verifies.
		p = accountPost(b, p, "/account/email/resend", nil)
		wantAccount(t, p, http.StatusOK, "A verification mail is on its way")
		m := ms.next(t)
		if m.To != "ada@example.com" || m.Subject != "Confirm your email address" {
			t.Fatalf("verification mail: to %q subject %q", m.To, m.Subject)
		}
		v := b.get(base + "/verify-email?token=" + url.QueryEscape(m.Token))
		if v = b.submit(v, nil); !strings.Contains(v.body, "Your email address is confirmed.") {
			t.Fatalf("verify: %d\n%s", v.status, v.body)
		}
		p = b.get(base + "/account?pool=members")
		wantAccount(t, p, http.StatusOK, "Your email address is verified.")
		if len(formsOf(t, p.body)) == 0 || strings.Contains(p.body, `action="/account/email/resend"`) {
			t.Fatalf("verified, yet a resend form:\n%s", p.body)
		}

		// Change the password: a wrong current one or a weak new one changes nothing; the right change keeps this
		// session, ends the other, and the old password stops working.
		wantAccount(t, accountPost(b, p, "/account/password", map[string]string{"current_password": "wrong-password-1", "new_password": "quiet-harbor-lamp-81"}),
			http.StatusUnauthorized, "The current password is not right.")
		wantAccount(t, accountPost(b, p, "/account/password", map[string]string{"current_password": "violet-tractor-47", "new_password": "short"}),
			http.StatusBadRequest, "Choose a stronger password")
		p = accountPost(b, p, "/account/password", map[string]string{"current_password": "violet-tractor-47", "new_password": "quiet-harbor-lamp-81"})
		wantAccount(t, p, http.StatusOK, "Password changed. Signed out of 1 other session.")
		if got := other.get(base + "/account?pool=members"); !strings.Contains(got.body, `name="password"`) || got.url.Path != "/login" {
			t.Fatalf("the other session survived the password change: %d at %v", got.status, got.url)
		}
		if got := signInAt(newBrowser(t, "http://never.example"), base, "members", "ada@example.com", "violet-tractor-47"); got.status != http.StatusUnauthorized {
			t.Fatalf("old password after the change: %d at %v", got.status, got.url)
		}
		if code, _, body := apiCall(t, "POST", base+"/api/v1/auth/login", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil); code != http.StatusUnauthorized {
			t.Fatalf("old password in the token API: %d %v", code, body)
		}
		wantAccount(t, b.get(base+"/account?pool=members"), http.StatusOK, "ada@example.com")

		// Set up an authenticator app (the sign-in is recent: no password asked): the QR code and key once, a
		// wrong code refused, the right one confirms and shows the recovery codes once.
		waitStepStart(t)
		if strings.Contains(p.body, `id="enrol-password"`) {
			t.Fatalf("a fresh sign-in is asked for the password:\n%s", p.body)
		}
		p = accountPost(b, p, "/account/factors/totp", nil)
		wantAccount(t, p, http.StatusOK, `src="data:image/png;base64,`)
		sm := secretPattern.FindStringSubmatch(p.body)
		if sm == nil {
			t.Fatalf("no key on the enrolment page:\n%s", p.body)
		}
		secret, err := mfa.DecodeSecret(sm[1])
		if err != nil {
			t.Fatal(err)
		}
		wrong := accountPost(b, p, "/account/factors/totp/confirm", map[string]string{"code": "000000"})
		wantAccount(t, wrong, http.StatusUnauthorized, "That code is not right.")
		if strings.Contains(wrong.body, sm[1]) || strings.Contains(b.get(base+"/account").body, sm[1]) {
			t.Fatal("the key is shown again after it was made")
		}
		p = accountPost(b, wrong, "/account/factors/totp/confirm", map[string]string{"code": stepCode(secret, 0)})
		wantAccount(t, p, http.StatusOK, "Authenticator app set up.")
		recovery := recoveryPattern.FindAllStringSubmatch(p.body, -1)
		if len(recovery) < 8 || p.status != 200 {
			t.Fatalf("recovery codes: %v\n%s", recovery, p.body)
		}
		if strings.Contains(b.get(base+"/account").body, recovery[0][1]) {
			t.Fatal("recovery codes shown again")
		}

		// Signing in again asks for the code, then comes back here.
		b2 := newBrowser(t, "http://never.example")
		cp := signInAt(b2, base, "members", "ada@example.com", "quiet-harbor-lamp-81")
		wantCodePage(t, cp, http.StatusOK, false)
		p2 := enterCode(b2, cp, stepCode(secret, 1), false)
		wantAccount(t, p2, http.StatusOK, "Authenticator app")

		// New recovery codes: the old ones stop working, the new ones work.
		p2 = accountPost(b2, p2, "/account/factors/recovery-codes", nil)
		wantAccount(t, p2, http.StatusOK, "New recovery codes made")
		fresh := recoveryPattern.FindAllStringSubmatch(p2.body, -1)
		if len(fresh) < 8 {
			t.Fatalf("new recovery codes:\n%s", p2.body)
		}
		b3 := newBrowser(t, "http://never.example")
		cp = signInAt(b3, base, "members", "ada@example.com", "quiet-harbor-lamp-81")
		wantCodePage(t, enterCode(b3, cp, recovery[0][1], true), http.StatusUnauthorized, true)
		wantAccount(t, enterCode(b3, cp, fresh[0][1], true), http.StatusOK, "ada@example.com")

		// A sign-in more than 5 minutes old must give the password to remove the factor.
		execSQL(t, env, "UPDATE browser_sessions SET auth_time = ?", time.Now().Add(-10*time.Minute).UTC())
		p2 = b2.get(base + "/account")
		factorID := accountForm(t, p2, "/account/factors/remove", nil).Get("factor_id")
		if !strings.HasPrefix(factorID, "fac_") || !strings.Contains(p2.body, `id="remove-pw-`+factorID+`"`) {
			t.Fatalf("remove form (factor %q) without a password field:\n%s", factorID, p2.body)
		}
		wantAccount(t, accountPost(b2, p2, "/account/factors/remove", nil), http.StatusForbidden, "Enter your current password")
		wantAccount(t, accountPost(b2, p2, "/account/factors/remove", map[string]string{"password": "violet-tractor-47"}),
			http.StatusUnauthorized, "The current password is not right.")
		wantAccount(t, accountPost(b2, p2, "/account/factors/remove", map[string]string{"factor_id": "fac_someone_elses", "password": "quiet-harbor-lamp-81"}),
			http.StatusNotFound, "That factor does not exist")
		p2 = accountPost(b2, p2, "/account/factors/remove", map[string]string{"password": "quiet-harbor-lamp-81"})
		wantAccount(t, p2, http.StatusOK, "Factor removed.")
		if !strings.Contains(p2.body, "No second factor is set up") {
			t.Fatalf("factor still listed:\n%s", p2.body)
		}
		// And the sign-in asks for no code again.
		wantAccount(t, signInAt(newBrowser(t, "http://never.example"), base, "members", "ada@example.com", "quiet-harbor-lamp-81"), http.StatusOK, "ada@example.com")

		// Another pool's page: a user of members is sent to sign in to that pool.
		resp, _ := fetch(t, noRedirects(b), http.MethodGet, base+"/account?pool=default", nil)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?") {
			t.Fatalf("page of another pool: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		// The sessions page links back here.
		if s := b.get(base + "/account/sessions"); !strings.Contains(s.body, `href="/account"`) {
			t.Fatalf("sessions page without a link to the account page:\n%s", s.body)
		}
	})
}

// signInUpstreamAt signs b in through provider "corp" from the sign-in page (returning to the account page) as
// email upstream, and returns the account page.
func (f *upstreamFixture) signInUpstreamAt(t *testing.T, b *browserClient, email, password string) page {
	t.Helper()
	login := b.get(f.srv.URL + "/login?return_to=%2Faccount")
	for _, form := range formsOf(t, login.body) {
		if strings.HasPrefix(form.action, "/login/upstream/corp") {
			p := f.signInUpstream(t, b, post(b, login, form.action, form.values), email, password)
			wantAccount(t, p, http.StatusOK, email)
			return p
		}
	}
	t.Fatalf("no Corp button on the sign-in page:\n%s", login.body)
	return page{}
}

// Linked providers: listed, and unlinked only while the user keeps another way to sign in.
func TestAccountPageProviders(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newUpstreamFixture(t, env)
		env.cli(t, "pools", "update", "--name", "default", "--signup", "true")

		// Bob was made by the other provider: his password is one nobody knows, so Corp is his only way in.
		b := newBrowser(t, "http://never.example")
		p := f.signInUpstreamAt(t, b, "bob@example.com", "bob upstream pw")
		if !strings.Contains(p.body, "<strong>Corp</strong>") || !strings.Contains(p.body, "Your email address is verified.") {
			t.Fatalf("bob's account page lacks the linked provider:\n%s", p.body)
		}
		wantAccount(t, accountPost(b, p, "/account/providers/unlink", nil), http.StatusConflict, "This provider is your only way to sign in.")
		wantAccount(t, accountPost(b, p, "/account/providers/unlink", map[string]string{"password": "a guess at it"}),
			http.StatusUnauthorized, "The current password is not right.")
		wantAccount(t, accountPost(b, p, "/account/providers/unlink", map[string]string{"subject": "someone-else"}),
			http.StatusNotFound, "not linked to your account")
		if n := countRows(t, env, "user_identities"); n != 1 {
			t.Fatalf("%d links after refused unlinks, want 1", n)
		}

		// Ada has a password of her own: with it she may unlink Corp, and then signs in with the password alone.
		a := newBrowser(t, "http://never.example")
		p = f.signInUpstreamAt(t, a, adaEmail, "ada upstream pw")
		wantAccount(t, accountPost(a, p, "/account/providers/unlink", nil), http.StatusConflict, "only way to sign in")
		p = accountPost(a, p, "/account/providers/unlink", map[string]string{"password": adaPassword})
		wantAccount(t, p, http.StatusOK, "Provider unlinked.")
		if !strings.Contains(p.body, "No other provider is linked") {
			t.Fatalf("Corp still listed:\n%s", p.body)
		}
		if n := countRows(t, env, "user_identities"); n != 1 {
			t.Fatalf("%d links after ada's unlink, want bob's 1", n)
		}
	})
}

// wantOutage asserts a request of b's answered our fault page with 503 and Retry-After, never a 4xx or a 500.
func wantOutage(t *testing.T, b *browserClient, method, u string, form url.Values) {
	t.Helper()
	resp, body := fetch(t, noRedirects(b), method, u, form)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Temporarily unavailable") {
		t.Fatalf("%s %s in an outage: %d Retry-After=%q\n%s", method, u, resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// An outage is never the visitor's fault: the page and its forms answer 503 with Retry-After, and work again once
// the database is back.
func TestAccountPageOutage(t *testing.T) {
	t.Parallel()
	setUp := func(t *testing.T, env testEnv) (*browserClient, page, string) {
		env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
		srv := env.startServer(t)
		b := newBrowser(t, "http://never.example")
		p := signInAt(b, srv.URL, "default", adaEmail, adaPassword)
		wantAccount(t, p, http.StatusOK, adaEmail)
		return b, p, srv.URL
	}
	t.Run("sqlite locked past its busy timeout", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t, databases()[0].url(t))
		b, p, base := setUp(t, env)
		form := accountForm(t, p, "/account/profile", map[string]string{"name": "Ada Locked"})
		db, _ := rawDB(t, env)
		ctx := t.Context()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		wantOutage(t, b, http.MethodPost, base+"/account/profile", form)
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if got := post(b, p, "/account/profile", form); got.status != http.StatusOK || !strings.Contains(got.body, `value="Ada Locked"`) {
			t.Fatalf("after the lock: %d\n%s", got.status, got.body)
		}
	})
	t.Run("postgres down", func(t *testing.T) {
		t.Parallel()
		pg := startPrivatePostgres(t)
		pg.createDatabase("latchkey")
		b, p, base := setUp(t, newTestEnv(t, pg.URL("latchkey")))
		form := accountForm(t, p, "/account/profile", map[string]string{"name": "Ada Down"})
		pg.kill()
		wantOutage(t, b, http.MethodGet, base+"/account", nil)
		wantOutage(t, b, http.MethodPost, base+"/account/profile", form)
		pg.start()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := post(b, p, "/account/profile", form)
			if got.status == http.StatusOK && strings.Contains(got.body, `value="Ada Down"`) {
				break
			}
			if got.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
				t.Fatalf("after the database came back: %d\n%s", got.status, got.body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
