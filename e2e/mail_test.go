package e2e

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// mailFixture: a mail server, a "members" pool that requires verified emails and a first-party app in it.
func mailFixture(t *testing.T, env testEnv, verify bool) (*mailServer, *server, string) {
	t.Helper()
	ms := startMailServer(t)
	ms.env(env)
	args := []string{"pools", "create", "members"}
	if verify {
		args = append(args, "--require-email-verification")
	}
	env.cli(t, args...)
	app := env.createClient(t, "--name", "members-app", "--first-party", "--pool", "members",
		"--scopes", "openid profile email offline_access")
	return ms, env.startServer(t), app.ClientID
}

func TestMailEmailVerification(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ms, srv, clientID := mailFixture(t, env, true)
		api := srv.URL + "/api/v1/auth"
		signup := func(email string) {
			t.Helper()
			code, _, b := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": email, "password": "violet-tractor-47"}, nil)
			if code != 201 || b["email_verification_required"] != true || b["access_token"] != nil {
				t.Fatalf("signup in a verifying pool: %d %v", code, b)
			}
		}
		login := func(email string) (int, map[string]any) {
			code, _, b := apiCall(t, "POST", api+"/login", map[string]any{"client_id": clientID, "email": email, "password": "violet-tractor-47"}, nil)
			return code, b
		}

		// By link.
		signup("ada@example.com")
		m := ms.next(t)
		if m.To != "ada@example.com" || !strings.Contains(m.Header.Get("From"), "no-reply@latchkey.test") || m.Subject != "Confirm your email address" {
			t.Fatalf("verification mail: to %q from %q subject %q", m.To, m.Header.Get("From"), m.Subject)
		}
		if !strings.Contains(m.Text, srv.URL+"/verify-email?token=") || !strings.Contains(m.HTML, srv.URL+"/verify-email?token=") {
			t.Fatalf("the link is not the server's verify page:\n%s", m.Text)
		}
		if code, b := login("ada@example.com"); code != 403 || b["error"] != "email_not_verified" || b["access_token"] != nil {
			t.Fatalf("unverified sign-in: %d %v", code, b)
		}
		// The password grant refuses it too, with no tokens; a wrong password stays a wrong password.
		backend := env.createClient(t, "--name", "backend", "--first-party", "--pool", "members", "--grant-types", "password", "--scopes", "openid email")
		grant := func(password string) (int, map[string]any) {
			code, _, b := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"ada@example.com"},
				"password": {password}, "scope": {"openid email"}}, backend.ClientID, backend.ClientSecret)
			return code, b
		}
		if code, b := grant("violet-tractor-47"); code != 400 || b["error"] != "invalid_grant" || !strings.Contains(fmt.Sprint(b["error_description"]), "email_not_verified") || b["access_token"] != nil {
			t.Fatalf("unverified password grant: %d %v", code, b)
		}
		if code, b := login("ada@example.com"); code != 403 {
			t.Fatalf("unverified sign-in: %d %v", code, b)
		}
		if code, _, b := apiCall(t, "POST", api+"/email/verify", map[string]any{"token": m.Token}, nil); code != 200 || b["email_verified"] != true {
			t.Fatalf("verify by link: %d %v", code, b)
		}
		if code, b := grant("violet-tractor-47"); code != 200 {
			t.Fatalf("verified password grant: %d %v", code, b)
		}
		if code, _, b := apiCall(t, "POST", api+"/email/verify", map[string]any{"token": m.Token}, nil); code != 400 || b["error"] != "invalid_token_or_code" {
			t.Fatalf("verify link used twice: %d %v", code, b)
		}
		if code, b := login("ada@example.com"); code != 200 || b["access_token"] == nil {
			t.Fatalf("verified sign-in: %d %v", code, b)
		}

		// By code, after a wrong one.
		signup("bob@example.com")
		m = ms.next(t)
		wrong := fmt.Sprintf("%06d", (atoi(m.Code)+1)%1000000)
		if code, _, _ := apiCall(t, "POST", api+"/email/verify", map[string]any{"client_id": clientID, "email": "bob@example.com", "code": wrong}, nil); code != 400 {
			t.Fatalf("a wrong code: %d", code)
		}
		if code, _, b := apiCall(t, "POST", api+"/email/verify", map[string]any{"client_id": clientID, "email": "bob@example.com", "code": m.Code}, nil); code != 200 {
			t.Fatalf("verify by code: %d %v", code, b)
		}
		if code, _ := login("bob@example.com"); code != 200 {
			t.Fatalf("sign-in after code: %d", code)
		}

		// Guessing: after the limit even the right code is refused.
		signup("cy@example.com")
		m = ms.next(t)
		wrong = fmt.Sprintf("%06d", (atoi(m.Code)+1)%1000000)
		for i := range 5 {
			if code, _, _ := apiCall(t, "POST", api+"/email/verify", map[string]any{"client_id": clientID, "email": "cy@example.com", "code": wrong}, nil); code != 400 {
				t.Fatalf("guess %d: %d", i, code)
			}
		}
		if code, _, _ := apiCall(t, "POST", api+"/email/verify", map[string]any{"client_id": clientID, "email": "cy@example.com", "code": m.Code}, nil); code != 400 {
			t.Fatalf("the right code after 5 wrong guesses: %d", code)
		}
		// The link of that mail still works (its guesses were at the code).

		// Resend: a new mail (the old one's token retired), then throttled.
		resend := func() int {
			code, _, _ := apiCall(t, "POST", api+"/email/resend", map[string]any{"client_id": clientID, "email": "cy@example.com"}, nil)
			return code
		}
		if code := resend(); code != 202 {
			t.Fatalf("resend: %d", code)
		}
		m2 := ms.next(t)
		if code, _, _ := apiCall(t, "POST", api+"/email/verify", map[string]any{"token": m.Token}, nil); code != 400 {
			t.Fatalf("the earlier mail's link after a resend: %d", code)
		}
		resend()
		resend()
		if code := resend(); code != 429 {
			t.Fatalf("4th resend: %d, want 429", code)
		}
		for range 2 {
			ms.next(t)
		}
		if code, _, _ := apiCall(t, "POST", api+"/email/verify", map[string]any{"token": m2.Token}, nil); code != 400 {
			t.Fatalf("a retired link: %d", code)
		}

		// Header injection through the sign-up email is refused before anything is stored or sent.
		code, _, b := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": "eve@example.com\r\nBcc: all@example.com", "password": "violet-tractor-47"}, nil)
		if code != 400 {
			t.Fatalf("signup with CRLF in the email: %d %v", code, b)
		}
		code, _, b = apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": `"eve>, all"@example.com`, "password": "violet-tractor-47"}, nil)
		if code != 400 {
			t.Fatalf("signup with an address list in the email: %d %v", code, b)
		}
		ms.none(t, 500*time.Millisecond)
	})
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestMailPasswordReset(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ms, srv, clientID := mailFixture(t, env, false)
		api := srv.URL + "/api/v1/auth"
		if code, _, b := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil); code != 201 || b["access_token"] == nil {
			t.Fatalf("signup: %d %v", code, b)
		}
		ms.next(t) // the verification mail every sign-up gets when mail is on
		_, _, session := apiCall(t, "POST", api+"/login", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		refresh, _ := session["refresh_token"].(string)
		if refresh == "" {
			t.Fatalf("login: %v", session)
		}

		// Known and unknown both 202; only the known one gets mail. Timed, to see no difference.
		forgot := func(email string) (int, time.Duration) {
			start := time.Now()
			code, _, _ := apiCall(t, "POST", api+"/password/forgot", map[string]any{"client_id": clientID, "email": email}, nil)
			return code, time.Since(start)
		}
		var known, unknown []time.Duration
		for i := range 3 {
			c1, d1 := forgot("ada@example.com")
			c2, d2 := forgot(fmt.Sprintf("nobody%d@example.com", i))
			if c1 != 202 || c2 != 202 {
				t.Fatalf("forgot: known %d, unknown %d", c1, c2)
			}
			known, unknown = append(known, d1), append(unknown, d2)
		}
		slices.Sort(known)
		slices.Sort(unknown)
		t.Logf("forgot latency median: known %v, unknown %v", known[1], unknown[1])
		var mails []parsedMail
		for range 3 {
			m := ms.next(t)
			if m.To != "ada@example.com" || m.Subject != "Reset your password" {
				t.Fatalf("reset mail to %q %q", m.To, m.Subject)
			}
			mails = append(mails, m)
		}
		ms.none(t, 500*time.Millisecond)

		// Each mail retired the one before; they may arrive in any order, so the live one is found by trying:
		// a weak password is refused by the policy for the live token only, and the token survives that.
		var m parsedMail
		for _, c := range mails {
			code, _, b := apiCall(t, "POST", api+"/password/reset", map[string]any{"token": c.Token, "new_password": "short"}, nil)
			switch {
			case code == 400 && b["error"] == "weak_password":
				if m.Token != "" {
					t.Fatal("two reset tokens live at once")
				}
				m = c
			case code != 400 || b["error"] != "invalid_token_or_code":
				t.Fatalf("weak reset: %d %v", code, b)
			}
		}
		if m.Token == "" {
			t.Fatal("no live reset token among the mails")
		}
		if code, _, b := apiCall(t, "POST", api+"/password/reset", map[string]any{"token": m.Token, "new_password": "quiet-harbor-lamp-81"}, nil); code != 200 {
			t.Fatalf("reset by link: %d %v", code, b)
		}
		if code, _, _ := apiCall(t, "POST", api+"/password/reset", map[string]any{"token": m.Token, "new_password": "another-harbor-lamp-82"}, nil); code != 400 {
			t.Fatalf("reset link used twice: %d", code)
		}
		if code, _, b := apiCall(t, "POST", api+"/refresh", map[string]any{"client_id": clientID, "refresh_token": refresh}, nil); code == 200 {
			t.Fatalf("refresh token works after a reset: %v", b)
		}
		code, _, b := apiCall(t, "POST", api+"/login", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "quiet-harbor-lamp-81"}, nil)
		if code != 200 {
			t.Fatalf("login with the new password: %d %v", code, b)
		}
		if u, _ := b["user"].(map[string]any); u["email_verified"] != true {
			t.Fatalf("a reset proves the mailbox: %v", b["user"])
		}

		// By code (from another IP's point of view nothing changes: the throttle is per email and IP).
		execSQL(t, env, "DELETE FROM login_throttle")
		if code, _ := forgot("ada@example.com"); code != 202 {
			t.Fatal(code)
		}
		m = ms.next(t)
		if code, _, b := apiCall(t, "POST", api+"/password/reset", map[string]any{"client_id": clientID, "email": "ada@example.com", "code": m.Code, "new_password": "copper-meadow-kite-93"}, nil); code != 200 {
			t.Fatalf("reset by code: %d %v", code, b)
		}
		if code, _, _ := apiCall(t, "POST", api+"/password/reset", map[string]any{"client_id": clientID, "email": "ada@example.com", "code": m.Code, "new_password": "copper-meadow-kite-94"}, nil); code != 400 {
			t.Fatalf("reset code used twice: %d", code)
		}

		// Expired: a token past its time is refused.
		if code, _ := forgot("ada@example.com"); code != 202 {
			t.Fatal(code)
		}
		m = ms.next(t)
		execSQL(t, env, "UPDATE mail_tokens SET expires_at = created_at, code_expires_at = created_at")
		if code, _, _ := apiCall(t, "POST", api+"/password/reset", map[string]any{"token": m.Token, "new_password": "copper-meadow-kite-95"}, nil); code != 400 {
			t.Fatalf("expired reset link: %d", code)
		}

		// Throttled per email and IP.
		for range 2 {
			forgot("ada@example.com")
		}
		if code, _ := forgot("ada@example.com"); code != 429 {
			t.Fatalf("4th forgot within the window: %d", code)
		}
	})
}

// The SMTP server is down when the mail is queued: the request does not wait, and the outbox delivers it once
// the server is up.
func TestMailDeliveredOnRetry(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ms := newMailServer(t) // not started
		ms.env(env)
		env.cli(t, "pools", "create", "members", "--require-email-verification")
		app := env.createClient(t, "--name", "members-app", "--first-party", "--pool", "members", "--scopes", "openid email")
		srv := env.startServer(t)
		start := time.Now()
		code, _, b := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": app.ClientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		if code != 201 {
			t.Fatalf("signup: %d %v", code, b)
		}
		t.Logf("signup with the SMTP server down took %v", time.Since(start))
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("signup waited for SMTP: %v", d)
		}
		db, q := rawDB(t, env)
		deadline := time.Now().Add(10 * time.Second)
		for {
			var attempts int
			var lastErr string
			if err := db.QueryRow(q("SELECT attempts, last_error FROM outbox WHERE kind = 'mail'")).Scan(&attempts, &lastErr); err != nil {
				t.Fatal(err)
			}
			if attempts >= 1 && lastErr != "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no failed delivery attempt recorded")
			}
			time.Sleep(100 * time.Millisecond)
		}
		ms.start(t)
		m := ms.next(t)
		if m.To != "ada@example.com" {
			t.Fatalf("mail to %q", m.To)
		}
		// Once delivered, the mail (with its live link and code) is no longer kept in the outbox.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var payload string
			var delivered bool
			if err := db.QueryRow(q("SELECT payload, delivered_at IS NOT NULL FROM outbox WHERE kind = 'mail'")).Scan(&payload, &delivered); err != nil {
				t.Fatal(err)
			}
			if delivered {
				if payload != "{}" {
					t.Fatalf("delivered mail payload kept: %.80q", payload)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("delivery not recorded")
			}
		}
	})
}

func TestMailNotConfigured(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "members", "--require-email-verification")
		app := env.createClient(t, "--name", "members-app", "--first-party", "--pool", "members", "--scopes", "openid email")
		srv := env.startServer(t)
		api := srv.URL + "/api/v1/auth"
		for _, call := range []struct {
			path string
			body map[string]any
		}{
			{"/signup", map[string]any{"client_id": app.ClientID, "email": "ada@example.com", "password": "violet-tractor-47"}},
			{"/password/forgot", map[string]any{"client_id": app.ClientID, "email": "ada@example.com"}},
			{"/email/resend", map[string]any{"client_id": app.ClientID, "email": "ada@example.com"}},
		} {
			if code, _, b := apiCall(t, "POST", api+call.path, call.body, nil); code != 501 || b["error"] != "mail_not_configured" {
				t.Fatalf("%s without SMTP: %d %v", call.path, code, b)
			}
		}
		if n := countRows(t, env, "users"); n != 0 {
			t.Fatalf("%d users created", n)
		}
	})
}

// Forgot answers in the same time whether or not the account exists: the request does the same work for both
// (client, throttle) and the lookup, token and mail happen after the answer. Measured on fresh addresses each
// (so the throttle rows are alike), interleaved, alternating which goes first; the medians are logged.
func TestMailForgotTiming(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ms, srv, clientID := mailFixture(t, env, false)
		const n = 8
		for i := range n {
			env.cli(t, "users", "create", "--pool", "members", "--email", fmt.Sprintf("known%d@example.com", i), "--password", "violet-tractor-47")
		}
		forgot := func(email string) time.Duration {
			start := time.Now()
			code, _, _ := apiCall(t, "POST", srv.URL+"/api/v1/auth/password/forgot", map[string]any{"client_id": clientID, "email": email}, nil)
			d := time.Since(start)
			if code != 202 {
				t.Fatalf("forgot %s: %d", email, code)
			}
			return d
		}
		var known, unknown []time.Duration
		for i := range n {
			k, u := fmt.Sprintf("known%d@example.com", i), fmt.Sprintf("unknown%d@example.com", i)
			if i%2 == 0 {
				known, unknown = append(known, forgot(k)), append(unknown, forgot(u))
			} else {
				unknown, known = append(unknown, forgot(u)), append(known, forgot(k))
			}
			time.Sleep(50 * time.Millisecond) // let the background work of the known one finish
		}
		slices.Sort(known)
		slices.Sort(unknown)
		t.Logf("forgot latency median over %d: known %v, unknown %v", n, known[n/2], unknown[n/2])
		for range n {
			ms.next(t)
		}
		ms.none(t, 300*time.Millisecond)
	})
}
