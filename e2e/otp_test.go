package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Passwordless sign-in with mailed one-time codes through the token API, with a real SMTP server.

// otpFixture: a mail server, a "members" pool with passwordless codes that also requires verified emails, a
// first-party app in it with a magic link page, and an app in the default pool (no passwordless codes).
func otpFixture(t *testing.T, env testEnv) (ms *mailServer, srv *server, app, other string) {
	t.Helper()
	ms = startMailServer(t)
	ms.env(env)
	env.cli(t, "pools", "create", "members", "--passwordless-codes", "--require-email-verification")
	app = env.createClient(t, "--name", "members-app", "--first-party", "--pool", "members",
		"--scopes", "openid profile email offline_access", "--magic-link-url", "https://app.example/magic?from=mail").ClientID
	other = env.createClient(t, "--name", "default-app", "--first-party", "--scopes", "openid email").ClientID
	return ms, env.startServer(t), app, other
}

func otpStart(t *testing.T, api, clientID, email string) (int, map[string]any) {
	t.Helper()
	code, _, b := apiCall(t, "POST", api+"/otp/start", map[string]any{"client_id": clientID, "email": email}, nil)
	return code, b
}

func otpVerify(t *testing.T, api string, body map[string]any) (int, map[string]any) {
	t.Helper()
	code, _, b := apiCall(t, "POST", api+"/otp/verify", body, nil)
	return code, b
}

func otherCode(code string) string { return fmt.Sprintf("%06d", (atoi(code)+1)%1000000) }

func TestOTPSignIn(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ms, srv, app, other := otpFixture(t, env)
		api := srv.URL + "/api/v1/auth"
		env.cli(t, "users", "create", "--pool", "members", "--email", "ada@example.com", "--password", "violet-tractor-47")

		// An unverified account of a verifying pool: the password alone does not sign in.
		if code, _, b := apiCall(t, "POST", api+"/login", map[string]any{"client_id": app, "email": "ada@example.com", "password": "violet-tractor-47"}, nil); code != 403 {
			t.Fatalf("unverified password login: %d %v", code, b)
		}

		// By code.
		if code, b := otpStart(t, api, app, "ada@example.com"); code != 202 {
			t.Fatalf("start: %d %v", code, b)
		}
		m := ms.next(t)
		if m.To != "ada@example.com" || m.Subject != "Your sign-in code" ||
			!strings.Contains(m.Text, "https://app.example/magic?from=mail&token=") || !strings.Contains(m.HTML, "https://app.example/magic?from=mail&amp;token=") {
			t.Fatalf("sign-in mail: to %q subject %q\n%s", m.To, m.Subject, m.Text)
		}
		code, b := otpVerify(t, api, map[string]any{"client_id": app, "email": "ada@example.com", "code": m.Code})
		if code != 200 || b["access_token"] == nil || b["refresh_token"] == nil {
			t.Fatalf("verify code: %d %v", code, b)
		}
		if amr := idTokenAMR(t, b["id_token"].(string)); !slices.Equal(amr, []string{"otp"}) {
			t.Fatalf("amr %v, want [otp]", amr)
		}
		if u := b["user"].(map[string]any); u["email_verified"] != true {
			t.Fatalf("user after an otp sign-in: %v", u)
		}
		// The mailbox was proved: the password now signs in too.
		if code, _, b := apiCall(t, "POST", api+"/login", map[string]any{"client_id": app, "email": "ada@example.com", "password": "violet-tractor-47"}, nil); code != 200 {
			t.Fatalf("password login after otp: %d %v", code, b)
		}
		// Single use.
		if code, b := otpVerify(t, api, map[string]any{"client_id": app, "email": "ada@example.com", "code": m.Code}); code != 401 || b["error"] != "invalid_grant" {
			t.Fatalf("a used code: %d %v", code, b)
		}
		// A used code's link is used too.
		if code, _ := otpVerify(t, api, map[string]any{"client_id": app, "token": m.Token}); code != 401 {
			t.Fatalf("the link of a used code: %d", code)
		}

		// By magic link.
		otpStart(t, api, app, "ada@example.com")
		m = ms.next(t)
		if code, b := otpVerify(t, api, map[string]any{"client_id": other, "token": m.Token}); code != 403 || b["error"] != "passwordless_disabled" {
			t.Fatalf("a link through another pool's client: %d %v", code, b)
		}
		code, b = otpVerify(t, api, map[string]any{"client_id": app, "token": m.Token})
		if code != 200 || b["access_token"] == nil || !slices.Equal(idTokenAMR(t, b["id_token"].(string)), []string{"otp"}) {
			t.Fatalf("verify link: %d %v", code, b)
		}
		if code, _ := otpVerify(t, api, map[string]any{"client_id": app, "token": m.Token}); code != 401 {
			t.Fatalf("a used link: %d", code)
		}

		// Unknown and disabled addresses: the same 202, no mail.
		if code, b := otpStart(t, api, app, "nobody@example.com"); code != 202 {
			t.Fatalf("start for an unknown address: %d %v", code, b)
		}
		ms.none(t, 700*time.Millisecond)

		// Guessing: 5 wrong codes spend the code; the right one is refused after them.
		env.cli(t, "users", "create", "--pool", "members", "--email", "bob@example.com", "--password", "violet-tractor-47")
		otpStart(t, api, app, "bob@example.com")
		m = ms.next(t)
		for i := range 5 {
			if code, _ := otpVerify(t, api, map[string]any{"client_id": app, "email": "bob@example.com", "code": otherCode(m.Code)}); code != 401 {
				t.Fatalf("wrong guess %d: %d", i, code)
			}
		}
		for deadline := time.Now().Add(20 * time.Second); ; {
			code, h, _ := apiCall(t, "POST", api+"/otp/verify", map[string]any{"client_id": app, "email": "bob@example.com", "code": m.Code}, nil)
			if code == 401 {
				break // the throttle let it through; the code itself is spent
			}
			if code != 429 || time.Now().After(deadline) {
				t.Fatalf("the right code after 5 wrong guesses: %d", code)
			}
			time.Sleep(time.Duration(atoi(h.Get("Retry-After")))*time.Second + 100*time.Millisecond)
		}

		// A pool without passwordless codes refuses both steps, with no mail.
		env.cli(t, "users", "create", "--email", "cy@example.com", "--password", "violet-tractor-47")
		if code, b := otpStart(t, api, other, "cy@example.com"); code != 403 || b["error"] != "passwordless_disabled" {
			t.Fatalf("start in a pool without passwordless codes: %d %v", code, b)
		}
		if code, b := otpVerify(t, api, map[string]any{"client_id": other, "email": "cy@example.com", "code": "123456"}); code != 403 || b["error"] != "passwordless_disabled" {
			t.Fatalf("verify in a pool without passwordless codes: %d %v", code, b)
		}
		// Malformed requests.
		for _, body := range []map[string]any{
			{"client_id": app},
			{"client_id": app, "token": "x", "code": "123456"},
			{"client_id": app, "email": "ada@example.com"},
		} {
			if code, b := otpVerify(t, api, body); code != 400 {
				t.Fatalf("verify %v: %d %v", body, code, b)
			}
		}
		ms.none(t, 300*time.Millisecond)
	})
}

// Of 40 requests racing with the one right code, exactly one signs in.
func TestOTPParallelVerify(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ms, srv, app, _ := otpFixture(t, env)
		api := srv.URL + "/api/v1/auth"
		env.cli(t, "users", "create", "--pool", "members", "--email", "ada@example.com", "--password", "violet-tractor-47")
		otpStart(t, api, app, "ada@example.com")
		m := ms.next(t)
		var wg sync.WaitGroup
		codes := make([]int, 40)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _ = otpVerify(t, api, map[string]any{"client_id": app, "email": "ada@example.com", "code": m.Code})
			}()
		}
		wg.Wait()
		ok := 0
		for _, c := range codes {
			switch c {
			case 200:
				ok++
			case 401, 429:
			default:
				t.Fatalf("a racing verify answered %d (all: %v)", c, codes)
			}
		}
		if ok != 1 {
			t.Fatalf("%d racing verifies signed in, want exactly 1 (all: %v)", ok, codes)
		}
		if n := countRows(t, env, "browser_sessions"); n != 1 {
			t.Fatalf("%d sessions after the race, want 1", n)
		}
	})
}

// A user with a second factor: the mailed code replaces the password, not the factor.
func TestOTPWithTOTP(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ms := startMailServer(t)
		ms.env(env)
		env.cli(t, "pools", "create", "members", "--passwordless-codes")
		app := env.createClient(t, "--name", "members-app", "--first-party", "--allow-signup", "--pool", "members",
			"--scopes", "openid profile email offline_access", "--magic-link-url", "http://localhost:3000/magic").ClientID
		srv := env.startServer(t)
		api := srv.URL + "/api/v1/auth"
		waitStepStart(t)
		secret, _, _ := mfaUser(t, api, app, "ada@example.com")
		if m := ms.next(t); m.Subject != "Confirm your email address" {
			t.Fatalf("sign-up mail: %q", m.Subject)
		}
		otpStart(t, api, app, "ada@example.com")
		m := ms.next(t)
		code, b := otpVerify(t, api, map[string]any{"client_id": app, "email": "ada@example.com", "code": m.Code})
		if code != 401 || b["error"] != "mfa_required" || b["mfa_token"] == nil || b["access_token"] != nil {
			t.Fatalf("otp for a user with TOTP: %d %v", code, b)
		}
		code, _, b = apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": b["mfa_token"], "code": stepCode(secret, 0)}, nil)
		if code != 200 || b["access_token"] == nil {
			t.Fatalf("mfa verify after otp: %d %v", code, b)
		}
		if amr := idTokenAMR(t, b["id_token"].(string)); !slices.Equal(amr, []string{"otp", "mfa"}) {
			t.Fatalf("amr %v, want [otp mfa]", amr)
		}
	})
}

func TestOTPMailNotConfigured(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "members", "--passwordless-codes")
		app := env.createClient(t, "--name", "members-app", "--first-party", "--pool", "members", "--scopes", "openid email").ClientID
		env.cli(t, "users", "create", "--pool", "members", "--email", "ada@example.com", "--password", "violet-tractor-47")
		srv := env.startServer(t)
		if code, _, b := apiCall(t, "POST", srv.URL+"/api/v1/auth/otp/start", map[string]any{"client_id": app, "email": "ada@example.com"}, nil); code != 501 || b["error"] != "mail_not_configured" {
			t.Fatalf("otp/start without SMTP: %d %v", code, b)
		}
	})
}

// A requested mail is queued durably before the answer: a node that stops right after answering loses nothing,
// and the next node sends it.
func TestOTPStartSurvivesNodeStop(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ms, srv, app, _ := otpFixture(t, env)
		env.cli(t, "users", "create", "--pool", "members", "--email", "ada@example.com", "--password", "violet-tractor-47")
		// This node's worker has looked for work at start and will not look again for an hour.
		srv.stop(t)
		env["LATCHKEY_OUTBOX_POLL"] = "1h"
		srv = env.startServer(t)
		time.Sleep(300 * time.Millisecond)
		if code, b := otpStart(t, srv.URL+"/api/v1/auth", app, "ada@example.com"); code != 202 {
			t.Fatalf("start: %d %v", code, b)
		}
		if code, _, _ := apiCall(t, "POST", srv.URL+"/api/v1/auth/password/forgot", map[string]any{"client_id": app, "email": "ada@example.com"}, nil); code != 202 {
			t.Fatalf("forgot: %d", code)
		}
		srv.stop(t)
		ms.none(t, 200*time.Millisecond)
		env["LATCHKEY_OUTBOX_POLL"] = "100ms"
		srv = env.startServer(t)
		subjects := []string{ms.next(t).Subject, ms.next(t).Subject}
		slices.Sort(subjects)
		if !slices.Equal(subjects, []string{"Reset your password", "Your sign-in code"}) {
			t.Fatalf("mails after the restart: %v", subjects)
		}
		// Delivery is recorded just after the SMTP server has the mail.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			n := countRowsWhere(t, env, "outbox", "payload", "{}")
			if n == 4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d delivered outbox payloads dropped, want 4 (2 requests, 2 mails)", n)
			}
		}
	})
}
