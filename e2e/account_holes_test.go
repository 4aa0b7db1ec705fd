package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// Holes a hostile review of mail, second factors and sign-in with another provider found (issue 17), each kept
// closed by the test that first showed it open.

// A pool that requires MFA: a sign-up through the token API is handed tokens at once (amr pwd), though every
// login of the same user is answered mfa_enrollment_required. Everyone who signs themselves up skips the policy.
func TestSignUpInAnMFARequiredPoolEnrolsFirst(t *testing.T) {
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

// Adding a second factor with an access token needs the current password, or a sign-in less than 5 minutes old
// (one made through another provider has no password here): a stolen access token alone must not add the thief's
// authenticator and lock the owner out behind it. A wrong password is counted and refused.
func TestAddingAFactorNeedsThePasswordOrAFreshSignIn(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		app := env.createClient(t, "--name", "app", "--first-party", "--pool", "customers", "--scopes", "openid email")
		srv := env.startServer(t)
		api := srv.URL + "/api/v1/auth"
		code, _, su := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": app.ClientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		if code != 201 {
			t.Fatalf("signup: %d %v", code, su)
		}
		tok := bearerHeader(su["access_token"].(string))
		if code, _, b := apiCall(t, "POST", api+"/mfa/totp/enroll", map[string]any{"password": "wrong-guess-123"}, tok); code != http.StatusUnauthorized {
			t.Errorf("enrolment with a wrong password: %d %v, want 401", code, b)
		}
		if code, _, b := apiCall(t, "POST", api+"/mfa/totp/enroll", map[string]any{}, tok); code != http.StatusCreated {
			t.Errorf("enrolment right after sign-in, without the password: %d %v, want 201", code, b)
		}
	})
}

// Reset mails are throttled per (address, IP) only. From many addresses (or IPv6 /64s, or behind a trusted proxy,
// many forwarded clients) one victim's mailbox gets any number of mails, and every mail brings a fresh 6-digit
// code with 5 fresh guesses at /password/reset, which has no throttle of its own. Quantified: each IP gets 3 mails
// at once and ~9 an hour, so 45 guesses an IP an hour; 1,000 addresses guess 45,000 codes an hour, a 1 in 22
// chance of taking over the account each hour (two in three within a day), and flood the victim with 9,000 mails.
func TestMailsAndCodesAreBoundedPerAccount(t *testing.T) {
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

// Pre-account takeover: someone signs up here with erin's address (never verified) and a password, then erin
// signs in through a provider that vouches for her address. She gets the account, and what its maker set up is
// undone: that password no longer signs in (and its sessions ended with it).
func TestAClaimedAccountLosesWhatItsMakerSetUp(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newUpstreamFixture(t, env) // erin here: a password, email not verified; upstream erin: verified
		made := userID(t, env, "erin@example.com")
		if claims := f.federated(t, "erin@example.com", "erin upstream pw"); claims["sub"] != made || claims["email_verified"] != true {
			t.Fatalf("erin through the provider: %v; want the account %s, now verified", claims, made)
		}
		w := f.walk(newBrowser(t, spaCallback), f.authURL(f.scoped("openid"), randomString(t), oauth2.GenerateVerifier()),
			"erin@example.com", "erin downstream pw")
		if w.url != nil && strings.HasPrefix(w.url.String(), spaCallback) {
			t.Fatalf("the password the account's maker set still signs in as erin")
		}
	})
}

// A provider that does not vouch for an address makes no account with it here: whoever made one could keep it
// through their link when the mailbox's owner later claims the address (with "forgot password" or a provider
// that vouches), and a pool that requires verified emails would get an unverified one.
func TestProvidersMakeNoAccountOnAnUnprovedEmail(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newUpstreamFixture(t, env) // upstream carol: email not verified
		env.cli(t, "users", "delete", "--email", "carol@example.com")
		env.cli(t, "pools", "update", "--name", "default", "--signup", "true")
		b := newBrowser(t, spaCallback)
		p, _, _ := f.startUpstream(t, b, "corp")
		wantRefusal(t, f.signInUpstream(t, b, p, "carol@example.com", "carol upstream pw"), http.StatusForbidden, "has not confirmed")
		db, q := rawDB(t, env)
		var n int
		if err := db.QueryRow(q("SELECT COUNT(*) FROM users WHERE email = ?"), "carol@example.com").Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d accounts made for carol (%v)", n, err)
		}
	})
}
