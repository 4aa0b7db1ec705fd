package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// notAccepted asserts a passkey sign-in was refused as one that does not verify (401), not throttled or failed.
func notAccepted(t *testing.T, what string, code int, b map[string]any) {
	t.Helper()
	if code != 401 || b["error"] != "invalid_grant" || b["access_token"] != nil {
		t.Fatalf("%s: %d %v, want 401 invalid_grant", what, code, b)
	}
}

// Passkeys against an attacker holding a passkey of one pool, an assertion whose user handle names someone else,
// an authenticator that skipped user verification, a disabled account, and a credential id someone else owns.
func TestPasskeysRefuseWhatTheyMustNot(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "shop")
		appA := env.createClient(t, "--name", "a", "--first-party", "--scopes", "openid email")
		appB := env.createClient(t, "--name", "b", "--first-party", "--pool", "shop", "--scopes", "openid email")
		env.cli(t, "users", "create", "--email", "ada@example.com", "--password", "violet-tractor-47")
		env.cli(t, "users", "create", "--email", "bob@example.com", "--password", "violet-tractor-47")
		env.cli(t, "users", "create", "--email", "eve@example.com", "--password", "violet-tractor-47")
		env["test.hostname"] = "localhost"
		srv := env.startServer(t)
		api, origin := srv.URL+"/api/v1/auth", srv.URL
		token := func(email string) string {
			t.Helper()
			code, _, lg := apiCall(t, "POST", api+"/login", map[string]any{"client_id": appA.ClientID, "email": email, "password": "violet-tractor-47"}, nil)
			if code != 200 {
				t.Fatalf("login %s: %d %v", email, code, lg)
			}
			return lg["access_token"].(string)
		}
		ada, bob, eve := newSoftKey(t), newSoftKey(t), newSoftKey(t)
		adaTok := token("ada@example.com")
		registerPasskey(t, api, adaTok, origin, "Ada's", ada)
		registerPasskey(t, api, token("bob@example.com"), origin, "Bob's", bob)
		if code, tk, _ := passkeySignIn(t, api, appA.ClientID, origin, ada); code != 200 || tk["access_token"] == nil {
			t.Fatalf("ada's passkey at her own pool's app: %d %v", code, tk)
		}

		t.Run("a passkey of one pool signs in to no app of another", func(t *testing.T) {
			code, b, _ := passkeySignIn(t, api, appB.ClientID, origin, ada)
			notAccepted(t, "ada's passkey at pool shop's app", code, b)
		})
		t.Run("a user handle naming another user", func(t *testing.T) {
			own := ada.userHandle
			ada.userHandle = bob.userHandle
			defer func() { ada.userHandle = own }()
			code, b, _ := passkeySignIn(t, api, appA.ClientID, origin, ada)
			notAccepted(t, "ada's passkey claiming bob's handle", code, b)
		})
		t.Run("passwordless without user verification", func(t *testing.T) {
			ada.flags = flagUP
			defer func() { ada.flags = 0 }()
			code, b, _ := passkeySignIn(t, api, appA.ClientID, origin, ada)
			notAccepted(t, "an assertion without UV", code, b)
		})
		t.Run("a new registration excludes the user's passkeys", func(t *testing.T) {
			code, _, begun := apiCall(t, "POST", api+"/passkeys/register/begin", nil, bearerHeader(adaTok))
			if code != 200 {
				t.Fatalf("begin: %d %v", code, begun)
			}
			ex, _ := publicKeyOptions(t, begun)["excludeCredentials"].([]any)
			if len(ex) != 1 || ex[0].(map[string]any)["id"] != b64u.EncodeToString(ada.credID) {
				t.Fatalf("excludeCredentials = %v, want ada's passkey alone", ex)
			}
		})
		t.Run("a credential id another user owns", func(t *testing.T) {
			stolen := newSoftKey(t)
			stolen.credID = bob.credID // eve's own key under bob's credential id
			tok := token("eve@example.com")
			code, _, begun := apiCall(t, "POST", api+"/passkeys/register/begin", nil, bearerHeader(tok))
			if code != 200 {
				t.Fatalf("begin: %d %v", code, begun)
			}
			code, _, b := apiCall(t, "POST", api+"/passkeys/register/finish", map[string]any{"credential": stolen.create(t, begun, origin)}, bearerHeader(tok))
			if code != 409 {
				t.Fatalf("eve registering bob's credential id: %d %v, want 409", code, b)
			}
			if code, tk, _ := passkeySignIn(t, api, appA.ClientID, origin, bob); code != 200 || tk["access_token"] == nil {
				t.Fatalf("bob's passkey after eve's try: %d %v", code, tk)
			}
			_ = eve
		})
		t.Run("a disabled user's passkey", func(t *testing.T) {
			env.cli(t, "users", "disable", "--email", "bob@example.com")
			code, b, _ := passkeySignIn(t, api, appA.ClientID, origin, bob)
			notAccepted(t, "disabled bob's passkey", code, b)
		})
	})
}

// A pool that requires verified emails refuses a passkey's sign-in of an unverified user as it refuses her
// password: the rule has one owner, whatever proved who she is.
func TestPasskeySignInRequiresAVerifiedEmailWhereThePoolDoes(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env["test.hostname"] = "localhost"
		_, srv, clientID := mailFixture(t, env, false)
		api, origin := srv.URL+"/api/v1/auth", srv.URL
		code, _, su := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		if code != 201 || su["access_token"] == nil {
			t.Fatalf("signup: %d %v", code, su)
		}
		ada := newSoftKey(t)
		registerPasskey(t, api, su["access_token"].(string), origin, "Laptop", ada)
		if code, tk, _ := passkeySignIn(t, api, clientID, origin, ada); code != 200 || tk["access_token"] == nil {
			t.Fatalf("passkey sign-in before the pool required verification: %d %v", code, tk)
		}
		env.cli(t, "pools", "update", "--name", "members", "--require-email-verification", "true")
		code, _, lg := apiCall(t, "POST", api+"/login", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		if code != 403 || lg["error"] != "email_not_verified" {
			t.Fatalf("password sign-in of the unverified user: %d %v", code, lg)
		}
		code, b, _ := passkeySignIn(t, api, clientID, origin, ada)
		if code != 403 || b["error"] != "email_not_verified" || b["access_token"] != nil {
			t.Fatalf("passkey sign-in of the unverified user: %d %v, want 403 email_not_verified", code, b)
		}
		// The sign-in page's passkey form likewise.
		br := newBrowser(t, "http://app.invalid")
		p := br.get(srv.URL + "/login?pool=members")
		f := formWith(t, p.body, "credential", "")
		resp, body := fetch(t, br.c, "POST", srv.URL+"/login/passkey/options", url.Values{"csrf_token": f.values["csrf_token"]})
		var begun map[string]any
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &begun) != nil {
			t.Fatalf("sign-in page's passkey options: %d %s", resp.StatusCode, body)
		}
		cred, _ := json.Marshal(ada.assert(t, begun, origin))
		got := post(br, p, f.action, url.Values{"csrf_token": f.values["csrf_token"], "credential": {string(cred)}})
		if got.status != 403 || !strings.Contains(got.body, "verify your email address") {
			t.Fatalf("sign-in page's passkey for the unverified user: %d at %v\n%s", got.status, got.url, got.body)
		}
		if p := br.get(srv.URL + "/account"); !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("signed in by the refused passkey:\n%s", p.body)
		}
	})
}

// With the database down, every passkey endpoint answers 503 with Retry-After — never a 4xx that blames the
// passkey or the caller, never a 500 — and the throttles fail closed.
func TestPasskeysOutageIsA503(t *testing.T) {
	t.Parallel()
	pg := startPrivatePostgres(t)
	pg.createDatabase("latchkey")
	env := newTestEnv(t, pg.URL("latchkey"))
	app := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid email")
	env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
	env["test.hostname"] = "localhost"
	srv := env.startServer(t)
	api, origin := srv.URL+"/api/v1/auth", srv.URL
	code, _, lg := apiCall(t, "POST", api+"/login", map[string]any{"client_id": app.ClientID, "email": adaEmail, "password": adaPassword}, nil)
	if code != 200 {
		t.Fatalf("login: %d %v", code, lg)
	}
	tok := lg["access_token"].(string)
	b := newBrowser(t, "http://never.example")
	wantAccount(t, signInAt(b, srv.URL, "default", adaEmail, adaPassword), http.StatusOK, adaEmail)
	ada := newSoftKey(t)
	registerPasskey(t, api, tok, origin, "Laptop", ada)
	code, _, ch := apiCall(t, "POST", api+"/login", map[string]any{"client_id": app.ClientID, "email": adaEmail, "password": adaPassword}, nil)
	if code != 401 || ch["mfa_token"] == nil {
		t.Fatalf("login with a passkey: %d %v", code, ch)
	}
	code, _, begun := apiCall(t, "POST", api+"/passkeys/signin/begin", map[string]any{"client_id": app.ClientID}, nil)
	if code != 200 {
		t.Fatalf("begin: %d %v", code, begun)
	}
	cred := ada.assert(t, begun, origin)
	// The sign-in page's passkey form, signed in already (so the account page is reachable) and with a begun
	// ceremony answered.
	lp := b.get(srv.URL + "/login")
	f := formWith(t, lp.body, "credential", "")
	resp, body := fetch(t, b.c, "POST", srv.URL+"/login/passkey/options", url.Values{"csrf_token": f.values["csrf_token"]})
	var pageBegun map[string]any
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &pageBegun) != nil {
		t.Fatalf("page options: %d %s", resp.StatusCode, body)
	}
	pageCred, _ := json.Marshal(ada.assert(t, pageBegun, origin))

	pg.kill()
	jsonOutage := func(what string, code int, h map[string]any, retry string) {
		t.Helper()
		if code != 503 || retry == "" || h["error"] == nil {
			t.Errorf("%s in an outage: %d Retry-After=%q %v, want 503", what, code, retry, h)
		}
	}
	for _, c := range []struct {
		what, path string
		body       any
		bearer     string
	}{
		{"passwordless begin", "/passkeys/signin/begin", map[string]any{"client_id": app.ClientID}, ""},
		{"passwordless finish", "/passkeys/signin/finish", map[string]any{"client_id": app.ClientID, "credential": cred}, ""},
		{"register begin", "/passkeys/register/begin", nil, tok},
		{"second factor begin", "/mfa/passkey/begin", map[string]any{"mfa_token": ch["mfa_token"]}, ""},
	} {
		var hdr map[string]string
		if c.bearer != "" {
			hdr = bearerHeader(c.bearer)
		}
		code, h, got := apiCall(t, "POST", api+c.path, c.body, hdr)
		jsonOutage(c.what, code, got, h.Get("Retry-After"))
	}
	resp, body = fetch(t, b.c, "POST", srv.URL+"/login/passkey/options", url.Values{"csrf_token": f.values["csrf_token"]})
	var o map[string]any
	_ = json.Unmarshal([]byte(body), &o)
	jsonOutage("sign-in page's passkey options", resp.StatusCode, o, resp.Header.Get("Retry-After"))
	resp, body = fetch(t, b.c, "POST", srv.URL+"/account/passkeys/options", url.Values{"csrf_token": f.values["csrf_token"]})
	o = nil
	_ = json.Unmarshal([]byte(body), &o)
	jsonOutage("account page's passkey options", resp.StatusCode, o, resp.Header.Get("Retry-After"))
	resp, body = fetch(t, noRedirects(b), "POST", srv.URL+"/login/passkey", url.Values{"csrf_token": f.values["csrf_token"], "credential": {string(pageCred)}})
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "temporarily unavailable") {
		t.Errorf("the sign-in page's passkey form in an outage: %d Retry-After=%q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	wantOutage(t, b, "GET", srv.URL+"/account/passkeys", nil)
}

// A registration's transports are the client's words: only those WebAuthn defines are kept, so neither text no
// column can hold (a 500) nor kilobytes of it are stored.
func TestPasskeyRegistrationWithHostileTransports(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		app := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid email")
		env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
		env["test.hostname"] = "localhost"
		srv := env.startServer(t)
		api, origin := srv.URL+"/api/v1/auth", srv.URL
		code, _, lg := apiCall(t, "POST", api+"/login", map[string]any{"client_id": app.ClientID, "email": adaEmail, "password": adaPassword}, nil)
		if code != 200 {
			t.Fatalf("login: %d %v", code, lg)
		}
		tok := lg["access_token"].(string)
		for _, tc := range []struct {
			name       string
			transports any
		}{
			{"a NUL byte", []string{"usb\x00"}},
			{"a long list", func() []string {
				out := make([]string, 2000)
				for i := range out {
					out[i] = strings.Repeat("x", 16)
				}
				return append(out, "usb", "usb")
			}()},
		} {
			t.Run(tc.name, func(t *testing.T) {
				k := newSoftKey(t)
				code, _, begun := apiCall(t, "POST", api+"/passkeys/register/begin", nil, bearerHeader(tok))
				if code != 200 {
					t.Fatalf("begin: %d %v", code, begun)
				}
				cred := k.create(t, begun, origin)
				cred["response"].(map[string]any)["transports"] = tc.transports
				code, _, f := apiCall(t, "POST", api+"/passkeys/register/finish", map[string]any{"credential": cred, "name": "x"}, bearerHeader(tok))
				pk, _ := f["passkey"].(map[string]any)
				if code != 201 || pk == nil {
					t.Fatalf("register with %s in transports: %d %v", tc.name, code, f)
				}
				if ts, _ := pk["transports"].([]any); len(ts) > 1 || len(ts) == 1 && ts[0] != "usb" {
					t.Fatalf("transports stored: %v", ts)
				}
			})
		}
	})
}

// Text no column can hold, in every field of the passkey API: a client error, never a 500.
func TestPasskeyAPIHostileText(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		app := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid email")
		env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
		env["test.hostname"] = "localhost"
		srv := env.startServer(t)
		api, origin := srv.URL+"/api/v1/auth", srv.URL
		code, _, lg := apiCall(t, "POST", api+"/login", map[string]any{"client_id": app.ClientID, "email": adaEmail, "password": adaPassword}, nil)
		if code != 200 {
			t.Fatalf("login: %d %v", code, lg)
		}
		tok := lg["access_token"].(string)
		ada := newSoftKey(t)
		registerPasskey(t, api, tok, origin, "Laptop", ada)
		for _, x := range []string{"a\x00b", strings.Repeat("é", 5000), "\ufffd\u202e"} {
			code, _, begun := apiCall(t, "POST", api+"/passkeys/signin/begin", map[string]any{"client_id": app.ClientID}, nil)
			if code != 200 {
				t.Fatalf("begin: %d %v", code, begun)
			}
			cred := ada.assert(t, begun, origin)
			// A begin names the client only to bind the ceremony (the finish checks it): any text, never a 500.
			if code, _, b := apiCall(t, "POST", api+"/passkeys/signin/begin", map[string]any{"client_id": x}, nil); code >= 500 {
				t.Fatalf("signin begin with a hostile client_id: %d %v", code, b)
			}
			for _, c := range []struct {
				what, method, path string
				body               any
				bearer             string
			}{
				{"signin finish client_id", "POST", "/passkeys/signin/finish", map[string]any{"client_id": x, "credential": cred}, ""},
				{"signin finish scope", "POST", "/passkeys/signin/finish", map[string]any{"client_id": app.ClientID, "scope": x, "credential": cred}, ""},
				{"signin finish credential id", "POST", "/passkeys/signin/finish", map[string]any{"client_id": app.ClientID, "credential": map[string]any{"id": x, "rawId": x, "type": "public-key", "response": cred["response"]}}, ""},
				{"mfa begin token", "POST", "/mfa/passkey/begin", map[string]any{"mfa_token": x}, ""},
				{"mfa verify with a credential", "POST", "/mfa/verify", map[string]any{"mfa_token": x, "credential": cred}, ""},
				{"register finish name", "POST", "/passkeys/register/finish", map[string]any{"name": x, "credential": cred}, tok},
				{"delete id", "DELETE", "/passkeys/" + url.PathEscape(x), nil, tok},
			} {
				var hdr map[string]string
				if c.bearer != "" {
					hdr = bearerHeader(c.bearer)
				}
				code, _, b := apiCall(t, c.method, api+c.path, c.body, hdr)
				refusedNot500(t, c.what+" "+strconv.Quote(x[:min(len(x), 8)]), code, b)
			}
		}
	})
}

// Passwordless sign-in is counted per address before the assertion is checked: a guesser is paced after a few
// tries that did not verify (429 with Retry-After), and the right passkey from that address waits too.
func TestPasskeySignInIsThrottled(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		app := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid email")
		env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
		env["test.hostname"] = "localhost"
		srv := env.startServer(t)
		api, origin := srv.URL+"/api/v1/auth", srv.URL
		code, _, lg := apiCall(t, "POST", api+"/login", map[string]any{"client_id": app.ClientID, "email": adaEmail, "password": adaPassword}, nil)
		if code != 200 {
			t.Fatalf("login: %d %v", code, lg)
		}
		ada := newSoftKey(t)
		registerPasskey(t, api, lg["access_token"].(string), origin, "Laptop", ada)
		guesser := newSoftKey(t) // a key nobody registered
		guesser.userHandle = ada.userHandle
		throttled := false
		for i := range 12 {
			code, h, b := func() (int, map[string]string, map[string]any) {
				code, _, begun := apiCall(t, "POST", api+"/passkeys/signin/begin", map[string]any{"client_id": app.ClientID}, nil)
				if code != 200 {
					t.Fatalf("begin %d: %d %v", i, code, begun)
				}
				code, hdr, b := apiCall(t, "POST", api+"/passkeys/signin/finish", map[string]any{"client_id": app.ClientID, "credential": guesser.assert(t, begun, origin)}, nil)
				return code, map[string]string{"Retry-After": hdr.Get("Retry-After")}, b
			}()
			if code == 429 && h["Retry-After"] != "" {
				throttled = true
				break
			}
			notAccepted(t, "an unregistered key", code, b)
		}
		if !throttled {
			t.Fatal("12 passkeys that did not verify from one address, none throttled")
		}
		code, b, _ := passkeySignIn(t, api, app.ClientID, origin, ada)
		if code != 429 {
			t.Fatalf("the right passkey from the throttled address: %d %v, want 429", code, b)
		}
	})
}

// A cloned authenticator answering several challenges at once with one counter value: the counter's conditional
// UPDATE lets exactly one sign in.
func TestPasskeyCounterHoldsAgainstConcurrentClones(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		app := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid email")
		env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
		env["test.hostname"] = "localhost"
		srv := env.startServer(t)
		api, origin := srv.URL+"/api/v1/auth", srv.URL
		code, _, lg := apiCall(t, "POST", api+"/login", map[string]any{"client_id": app.ClientID, "email": adaEmail, "password": adaPassword}, nil)
		if code != 200 {
			t.Fatalf("login: %d %v", code, lg)
		}
		ada := newSoftKey(t)
		registerPasskey(t, api, lg["access_token"].(string), origin, "Laptop", ada)
		const n = 5 // within the address's free tries, so the throttle lets them all reach the counter
		creds := make([]map[string]any, n)
		for i := range creds {
			code, _, begun := apiCall(t, "POST", api+"/passkeys/signin/begin", map[string]any{"client_id": app.ClientID}, nil)
			if code != 200 {
				t.Fatalf("begin: %d %v", code, begun)
			}
			creds[i] = ada.assertCount(t, begun, origin, 7)
		}
		var wg sync.WaitGroup
		codes := make([]int, n)
		for i := range creds {
			wg.Go(func() {
				codes[i], _, _ = apiCall(t, "POST", api+"/passkeys/signin/finish", map[string]any{"client_id": app.ClientID, "credential": creds[i]}, nil)
			})
		}
		wg.Wait()
		wins := 0
		for _, c := range codes {
			switch c {
			case 200:
				wins++
			case 401:
			default:
				t.Errorf("a finish answered %d", c)
			}
		}
		if wins != 1 {
			t.Fatalf("%d of %d clones with one counter signed in (%v), want exactly 1", wins, n, codes)
		}
	})
}
