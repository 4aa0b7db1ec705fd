package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey/mfa"
)

// Hostile review of mail, MFA and sign-in with another provider (issue 17). Each test fails while the hole it
// names is open.

// A pool that requires MFA: a sign-up through the token API is handed tokens at once (amr pwd), though every
// login of the same user is answered mfa_enrollment_required. Everyone who signs themselves up skips the policy.
func TestReviewMFARequiredPoolSignupSkipsEnrolment(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "staff", "--mfa", "required")
		app := env.createClient(t, "--name", "app", "--first-party", "--pool", "staff", "--scopes", "openid email")
		srv := env.startServer(t)
		api := srv.URL + "/api/v1/auth"
		code, _, su := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": app.ClientID, "email": "eve@example.com", "password": "violet-tractor-47"}, nil)
		if at, _ := su["access_token"].(string); at != "" {
			code, _, me := apiCall(t, "GET", api+"/me", nil, bearerHeader(at))
			t.Fatalf("sign-up in an MFA-required pool got tokens without a second factor (amr %v); /me %d %v",
				idTokenAMR(t, su["id_token"].(string)), code, me)
		}
		if code != http.StatusUnauthorized || su["error"] != "mfa_enrollment_required" {
			t.Fatalf("signup: %d %v; want 401 mfa_enrollment_required with an enrolment mfa_token", code, su)
		}
	})
}

// Whoever holds only a user's access token (leaked from a browser's storage, a log, an XSS) can enrol a TOTP
// factor of their own: the owner, who never saw the secret, is then asked for a code at every sign-in and is
// locked out, while the thief holds the secret and the ten recovery codes. Enrolment should need the password
// (or a fresh sign-in), as removal needs a code.
func TestReviewMFAEnrolWithStolenAccessToken(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		app := env.createClient(t, "--name", "app", "--first-party", "--pool", "customers", "--scopes", "openid email")
		srv := env.startServer(t)
		api := srv.URL + "/api/v1/auth"
		waitStepStart(t)
		code, _, su := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": app.ClientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		if code != 201 {
			t.Fatalf("signup: %d %v", code, su)
		}
		stolen := bearerHeader(su["access_token"].(string)) // all the thief has: no password, no mailbox
		for _, body := range []map[string]any{{}, {"password": "wrong-guess-123"}} {
			if code, _, b := apiCall(t, "POST", api+"/mfa/totp/enroll", body, stolen); code != 400 && code != 401 {
				t.Errorf("enrolment with an access token and password %v: %d %v, want a refusal", body["password"], code, b)
			}
		}
		code, _, en := apiCall(t, "POST", api+"/mfa/totp/enroll", map[string]any{}, stolen)
		if code != 201 {
			return // refused: the hole is closed
		}
		u, _ := url.Parse(en["otpauth_uri"].(string))
		secret, _ := mfa.DecodeSecret(u.Query().Get("secret"))
		code, _, cf := apiCall(t, "POST", api+"/mfa/totp/confirm", map[string]any{"code": stepCode(secret, 0)}, stolen)
		if code != 200 {
			return
		}
		code, b := mfaLogin(t, api, app.ClientID, "ada@example.com")
		t.Fatalf("an access token alone enrolled the thief's factor (recovery codes %d); the owner's own login now: %d %v",
			len(cf["recovery_codes"].([]any)), code, b["error"])
	})
}

// Reset mails are throttled per (address, IP) only. From many addresses (or IPv6 /64s, or behind a trusted proxy,
// many forwarded clients) one victim's mailbox gets any number of mails, and every mail brings a fresh 6-digit
// code with 5 fresh guesses at /password/reset, which has no throttle of its own. Quantified: each IP gets 3 mails
// at once and ~9 an hour, so 45 guesses an IP an hour; 1,000 addresses guess 45,000 codes an hour, a 1 in 22
// chance of taking over the account each hour (two in three within a day), and flood the victim with 9,000 mails.
func TestReviewResetMailsUnboundedPerAccount(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	env["LATCHKEY_TRUSTED_PROXIES"] = "127.0.0.1"
	ms, srv, clientID := mailFixture(t, env, false)
	api := srv.URL + "/api/v1/auth"
	if code, _, b := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil); code != 201 {
		t.Fatalf("signup: %d %v", code, b)
	}
	ms.next(t) // the sign-up's verification mail
	const ips = 8
	for i := range ips {
		for range 3 {
			hdr := map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i+1)}
			if code, _, b := apiCall(t, "POST", api+"/password/forgot", map[string]any{"client_id": clientID, "email": "ada@example.com"}, hdr); code != 202 {
				t.Fatalf("forgot: %d %v", code, b)
			}
		}
	}
	// Each mail is 5 guesses; the last mail's code is live. Spend all 5 guesses of each mail as it arrives.
	got, guesses := 0, 0
	deadline := time.After(10 * time.Second)
collect:
	for {
		select {
		case <-ms.got:
			got++
			for g := range 5 {
				code, _, _ := apiCall(t, "POST", api+"/password/reset", map[string]any{"client_id": clientID, "email": "ada@example.com",
					"code": fmt.Sprintf("%06d", 100000+got*10+g), "new_password": "attacker-owns-this-47"}, nil)
				if code == http.StatusTooManyRequests {
					break
				}
				guesses++
			}
		case <-deadline:
			break collect
		}
	}
	t.Logf("%d reset mails to one address from %d client addresses in seconds; %d code guesses answered", got, ips, guesses)
	if got > 5 {
		t.Fatalf("%d reset mails reached one mailbox within seconds (no per-account bound): %d guesses at its code", got, guesses)
	}
}

// Linking by a verified upstream email to a local account whose email was never verified: whoever typed the
// victim's address at sign-up (and set the password) keeps that password on the account the victim now uses
// through the upstream — the classic pre-account-takeover. Linking should require a locally verified email, or
// drop the unproved password (and its sessions) when it links.
func TestReviewUpstreamLinksUnverifiedLocalAccount(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newUpstreamFixture(t, env) // downstream ada: password adaPassword, email NOT verified (the "attacker's")
		victim := f.federated(t, adaEmail, "ada upstream pw")
		if victim["sub"] == nil {
			t.Fatalf("federated claims %v", victim)
		}
		_, attacker := f.signedIn(t, newBrowser(t, spaCallback), "openid")
		if attacker["sub"] == victim["sub"] {
			t.Fatalf("the unverified account's password still signs in as the user the upstream vouched for (sub %v)", victim["sub"])
		}
	})
}

// A pool that requires verified emails: a user created by an upstream that does not vouch for the email
// (email_verified false) is signed in at once, with email_verified false, though a password sign-in of the same
// kind of user is refused until the mailbox is proved.
func TestReviewUpstreamSkipsEmailVerification(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newUpstreamFixture(t, env) // upstream carol: email not verified
		env.cli(t, "users", "delete", "--email", "carol@example.com")
		env.cli(t, "pools", "update", "--name", "default", "--signup", "true", "--require-email-verification", "true")
		b := newBrowser(t, spaCallback)
		p, conf, verifier := f.startUpstream(t, b, "corp")
		p = f.signInUpstream(t, b, p, "carol@example.com", "carol upstream pw")
		if p.url == nil || p.url.Query().Get("code") == "" {
			return // refused: the hole is closed
		}
		_, claims := f.exchange(t, conf, p.url.Query().Get("code"), verifier)
		if slices.Contains([]any{false, nil}, claims["email_verified"]) {
			t.Fatalf("signed in with an unverified email in a pool that requires verification: %v", claims)
		}
	})
}

// The other half of pre-account-takeover: an attacker signs in through an upstream that does not vouch for the
// victim's address (email_verified false) and so creates the victim's account here, linked to the attacker's
// upstream identity. The victim later claims the account with "forgot password" (which marks the email verified
// and ends every session), yet the attacker's link survives: the attacker signs straight back in as the victim.
// A reset (the mailbox proved) should drop links made on an unverified email.
func TestReviewUpstreamLinkSurvivesPasswordReset(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		ms := startMailServer(t)
		ms.env(env)
		f := newUpstreamFixture(t, env) // upstream carol (the attacker's account there): email not verified
		env.cli(t, "users", "delete", "--email", "carol@example.com")
		env.cli(t, "pools", "update", "--name", "default", "--signup", "true")
		app := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid email")
		attacker := f.federated(t, "carol@example.com", "carol upstream pw")
		if attacker["email_verified"] != false {
			t.Fatalf("setup: %v", attacker)
		}

		// The real carol claims her address.
		api := f.srv.URL + "/api/v1/auth"
		if code, _, b := apiCall(t, "POST", api+"/password/forgot", map[string]any{"client_id": app.ClientID, "email": "carol@example.com"}, nil); code != 202 {
			t.Fatalf("forgot: %d %v", code, b)
		}
		m := ms.next(t)
		if code, _, b := apiCall(t, "POST", api+"/password/reset", map[string]any{"token": m.Token, "new_password": "carols-own-harbor-81"}, nil); code != 200 {
			t.Fatalf("reset: %d %v", code, b)
		}
		again := f.federated(t, "carol@example.com", "carol upstream pw")
		if again["sub"] == attacker["sub"] {
			t.Fatalf("after the owner's reset the attacker's upstream link still signs in as her (sub %v, email_verified %v)",
				again["sub"], again["email_verified"])
		}
	})
}
