package e2e

import (
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/mfa"
)

// Passkeys through the token API, answered by a software authenticator (softkey_test.go): registration,
// passwordless sign-in, the second factor after a password, and the hostile cases — a replayed assertion, an
// assertion made for another user's challenge, a wrong origin, a counter that goes back, 40 finishes of one
// challenge at once — each refused with a client error, never a 500.

// registerPasskey registers k for the holder of tok and returns the new factor.
func registerPasskey(t *testing.T, api, tok, origin, name string, k *softKey) map[string]any {
	t.Helper()
	code, _, begun := apiCall(t, "POST", api+"/passkeys/register/begin", nil, bearerHeader(tok))
	if code != 200 {
		t.Fatalf("register begin: %d %v", code, begun)
	}
	code, _, f := apiCall(t, "POST", api+"/passkeys/register/finish", map[string]any{"credential": k.create(t, begun, origin), "name": name}, bearerHeader(tok))
	if code != 201 || f["kind"] != "webauthn" || f["name"] != name || f["confirmed_at"] == nil {
		t.Fatalf("register finish: %d %v", code, f)
	}
	return f
}

// passkeySignIn begins a passwordless sign-in for clientID and answers it with k from origin.
func passkeySignIn(t *testing.T, api, clientID, origin string, k *softKey) (int, map[string]any, map[string]any) {
	t.Helper()
	code, _, begun := apiCall(t, "POST", api+"/passkeys/signin/begin", map[string]any{"client_id": clientID}, nil)
	if code != 200 || begun["challenge_id"] == nil {
		t.Fatalf("signin begin: %d %v", code, begun)
	}
	cred := k.assert(t, begun, origin)
	code, _, b := apiCall(t, "POST", api+"/passkeys/signin/finish", map[string]any{"client_id": clientID, "credential": cred}, nil)
	return code, b, cred
}

func refusedNot500(t *testing.T, what string, code int, b map[string]any) {
	t.Helper()
	if code < 400 || code >= 500 || b["error"] == nil || b["access_token"] != nil {
		t.Fatalf("%s: %d %v, want a client error", what, code, b)
	}
}

func TestPasskeysTokenAPI(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers", "--default-roles", "customer", "--mfa", "required")
		app := env.createClient(t, "--name", "app", "--first-party", "--pool", "customers", "--scopes", "openid profile email offline_access")
		env["test.hostname"] = "localhost"
		env["LATCHKEY_WEBAUTHN_ORIGINS"] = "http://localhost:3000" // an app beside the issuer, using the token API
		srv := env.startServer(t)
		api, origin := srv.URL+"/api/v1/auth", srv.URL

		// A pool that requires MFA: a new account enrols first (TOTP through the enrolment token), then adds a
		// passkey with its fresh sign-in.
		signUp := func(email string) string {
			t.Helper()
			code, _, su := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": app.ClientID, "email": email, "password": "violet-tractor-47"}, nil)
			if code != 401 || su["error"] != "mfa_enrollment_required" {
				t.Fatalf("signup: %d %v", code, su)
			}
			return totpEnrolWithToken(t, api, su["mfa_token"].(string))
		}
		tok := signUp("ada@example.com")
		ada := newSoftKey(t)
		f := registerPasskey(t, api, tok, origin, "Laptop", ada)
		if pk, _ := f["passkey"].(map[string]any); pk == nil || pk["credential_id"] == nil || pk["public_key"] != nil {
			t.Fatalf("factor's passkey: %v", f)
		}
		code, _, fl := apiCall(t, "GET", api+"/mfa/factors", nil, bearerHeader(tok))
		if code != 200 || len(fl["factors"].([]any)) != 2 {
			t.Fatalf("factors list: %d %v", code, fl)
		}
		code, _, pl := apiCall(t, "GET", api+"/passkeys", nil, bearerHeader(tok))
		if code != 200 || len(pl["passkeys"].([]any)) != 1 {
			t.Fatalf("passkeys list: %d %v", code, pl)
		}
		// The same credential again is refused.
		code, _, begun := apiCall(t, "POST", api+"/passkeys/register/begin", nil, bearerHeader(tok))
		if code != 200 {
			t.Fatalf("register begin: %d %v", code, begun)
		}
		code, _, b := apiCall(t, "POST", api+"/passkeys/register/finish", map[string]any{"credential": ada.create(t, begun, origin)}, bearerHeader(tok))
		refusedNot500(t, "the same credential twice", code, b)

		// Passwordless: the passkey alone signs in, and counts as multi-factor in a pool that requires it.
		code, tk, cred := passkeySignIn(t, api, app.ClientID, origin, ada)
		if code != 200 || tk["access_token"] == nil || tk["refresh_token"] == nil {
			t.Fatalf("passkey sign-in: %d %v", code, tk)
		}
		if amr := idTokenAMR(t, tk["id_token"].(string)); !slices.Equal(amr, []string{"hwk", "user", "mfa"}) {
			t.Fatalf("passkey sign-in amr %v", amr)
		}
		if code, _, me := apiCall(t, "GET", api+"/me", nil, bearerHeader(tk["access_token"].(string))); code != 200 {
			t.Fatalf("me with the passkey's token: %d %v", code, me)
		}
		// From the configured app origin too.
		if code, tk, _ := passkeySignIn(t, api, app.ClientID, "http://localhost:3000", ada); code != 200 || tk["access_token"] == nil {
			t.Fatalf("passkey sign-in from the app's origin: %d %v", code, tk)
		}
		// The same assertion again: its challenge is spent.
		code, _, b = apiCall(t, "POST", api+"/passkeys/signin/finish", map[string]any{"client_id": app.ClientID, "credential": cred}, nil)
		refusedNot500(t, "replayed assertion", code, b)
		// Signed from another origin: refused (and that challenge is gone too).
		code, _, begun = apiCall(t, "POST", api+"/passkeys/signin/begin", map[string]any{"client_id": app.ClientID}, nil)
		if code != 200 {
			t.Fatalf("begin: %d %v", code, begun)
		}
		code, _, b = apiCall(t, "POST", api+"/passkeys/signin/finish", map[string]any{"client_id": app.ClientID, "credential": ada.assert(t, begun, "https://evil.example")}, nil)
		refusedNot500(t, "wrong origin", code, b)
		// A challenge begun for one client does not finish for another.
		other := env.createClient(t, "--name", "other", "--first-party", "--pool", "customers", "--scopes", "openid")
		code, _, begun = apiCall(t, "POST", api+"/passkeys/signin/begin", map[string]any{"client_id": app.ClientID}, nil)
		if code != 200 {
			t.Fatalf("begin: %d %v", code, begun)
		}
		code, _, b = apiCall(t, "POST", api+"/passkeys/signin/finish", map[string]any{"client_id": other.ClientID, "credential": ada.assert(t, begun, origin)}, nil)
		refusedNot500(t, "challenge of another client", code, b)
		// A counter that goes back (a clone): refused.
		code, _, begun = apiCall(t, "POST", api+"/passkeys/signin/begin", map[string]any{"client_id": app.ClientID}, nil)
		if code != 200 {
			t.Fatalf("begin: %d %v", code, begun)
		}
		code, _, b = apiCall(t, "POST", api+"/passkeys/signin/finish", map[string]any{"client_id": app.ClientID, "credential": ada.assertCount(t, begun, origin, 1)}, nil)
		refusedNot500(t, "counter gone back", code, b)

		// Second factor after the password: the challenge lists webauthn, and a passkey answers it.
		bobTok := signUp("bob@example.com")
		bob := newSoftKey(t)
		registerPasskey(t, api, bobTok, origin, "Phone", bob)
		login := func(email string) string {
			t.Helper()
			code, ch := mfaLogin(t, api, app.ClientID, email)
			if code != 401 || ch["error"] != "mfa_required" || !slices.Contains(ch["factors"].([]any), any("webauthn")) {
				t.Fatalf("login %s: %d %v", email, code, ch)
			}
			return ch["mfa_token"].(string)
		}
		mfaBegin := func(mt string) map[string]any {
			t.Helper()
			code, _, begun := apiCall(t, "POST", api+"/mfa/passkey/begin", map[string]any{"mfa_token": mt}, nil)
			if code != 200 {
				t.Fatalf("mfa passkey begin: %d %v", code, begun)
			}
			return begun
		}
		adaMT, bobMT := login("ada@example.com"), login("bob@example.com")
		// Ada's passkey on the challenge of Bob's sign-in: refused whether sent with Bob's token or her own.
		bobBegun := mfaBegin(bobMT)
		code, _, b = apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": bobMT, "credential": ada.assert(t, bobBegun, origin)}, nil)
		refusedNot500(t, "ada's passkey for bob's challenge", code, b)
		bobBegun = mfaBegin(bobMT)
		code, _, b = apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": adaMT, "credential": ada.assert(t, bobBegun, origin)}, nil)
		refusedNot500(t, "an assertion of bob's challenge sent with ada's token", code, b)
		// Her own: tokens, with the passkey after the password in the amr.
		code, _, tk = apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": adaMT, "credential": ada.assert(t, mfaBegin(adaMT), origin)}, nil)
		if code != 200 || tk["access_token"] == nil {
			t.Fatalf("mfa verify with a passkey: %d %v", code, tk)
		}
		if amr := idTokenAMR(t, tk["id_token"].(string)); !slices.Equal(amr, []string{"pwd", "hwk", "mfa"}) {
			t.Fatalf("second-factor amr %v", amr)
		}

		// 40 finishes of one challenge at once: exactly one signs in.
		code, _, begun = apiCall(t, "POST", api+"/passkeys/signin/begin", map[string]any{"client_id": app.ClientID}, nil)
		if code != 200 {
			t.Fatalf("begin: %d %v", code, begun)
		}
		cred = bob.assert(t, begun, origin)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 40 {
			wg.Go(func() {
				code, _, b := apiCall(t, "POST", api+"/passkeys/signin/finish", map[string]any{"client_id": app.ClientID, "credential": cred}, nil)
				if code >= 500 {
					t.Errorf("parallel finish: %d %v", code, b)
				}
				if code == 200 {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("40 parallel finishes of one challenge: %d signed in, want exactly 1", wins)
		}

		// Bad input is a client error.
		for _, body := range []any{
			map[string]any{"client_id": app.ClientID, "credential": "garbage"},
			map[string]any{"client_id": app.ClientID, "credential": map[string]any{"id": "x", "type": "public-key"}},
			map[string]any{"client_id": app.ClientID},
			`{"client_id": 5}`,
		} {
			code, _, b := apiCall(t, "POST", api+"/passkeys/signin/finish", body, nil)
			refusedNot500(t, "bad finish body", code, b)
		}
		code, _, b = apiCall(t, "POST", api+"/passkeys/register/finish", map[string]any{"credential": map[string]any{"response": 1}}, bearerHeader(tok))
		refusedNot500(t, "bad registration", code, b)
		code, _, b = apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": login("ada@example.com"), "credential": []int{1}}, nil)
		refusedNot500(t, "bad mfa credential", code, b)

		// Removal: with a fresh sign-in it goes; the passkey then signs in no more.
		bobID := ""
		_, _, pl = apiCall(t, "GET", api+"/passkeys", nil, bearerHeader(bobTok))
		bobID = pl["passkeys"].([]any)[0].(map[string]any)["id"].(string)
		if code, _, b := apiCall(t, "DELETE", api+"/passkeys/"+bobID, nil, bearerHeader(tok)); code != 404 {
			t.Fatalf("ada removing bob's passkey: %d %v", code, b)
		}
		if code, _, b := apiCall(t, "DELETE", api+"/passkeys/"+bobID, nil, bearerHeader(bobTok)); code != 204 {
			t.Fatalf("remove: %d %v", code, b)
		}
		code, b, _ = passkeySignIn(t, api, app.ClientID, origin, bob)
		refusedNot500(t, "removed passkey", code, b)

		// An operator's reset takes the passkeys too.
		env.cli(t, "users", "reset-mfa", "--pool", "customers", "--email", "ada@example.com")
		code, b, _ = passkeySignIn(t, api, app.ClientID, origin, ada)
		refusedNot500(t, "passkey after reset-mfa", code, b)
	})
}

// totpEnrolWithToken enrols a TOTP factor with an enrolment mfa_token and returns the access token of the
// sign-in that the confirmation gives.
func totpEnrolWithToken(t *testing.T, api, mt string) string {
	t.Helper()
	code, _, en := apiCall(t, "POST", api+"/mfa/totp/enroll", map[string]any{"mfa_token": mt}, nil)
	if code != 201 {
		t.Fatalf("enroll: %d %v", code, en)
	}
	secret := decodeOTPAuthSecret(t, en["otpauth_uri"].(string))
	code, _, cf := apiCall(t, "POST", api+"/mfa/totp/confirm", map[string]any{"mfa_token": mt, "code": stepCode(secret, 0)}, nil)
	if code != 200 || cf["access_token"] == nil {
		t.Fatalf("confirm: %d %v", code, cf)
	}
	return cf["access_token"].(string)
}

func decodeOTPAuthSecret(t *testing.T, uri string) []byte {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := mfa.DecodeSecret(u.Query().Get("secret"))
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// The passkey pages take hostile forms as any page does: an error page or a JSON error, never a 500.
func TestPasskeyPagesBadInput(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "users", "create", "--email", "ada@example.com", "--password", "correct horse battery")
		env["test.hostname"] = "localhost"
		srv := env.startServer(t)
		b := newBrowser(t, "http://app.invalid")
		p := b.get(srv.URL + "/login")
		csp := ""
		if resp, _ := fetch(t, b.c, "GET", srv.URL+"/login", nil); resp != nil {
			csp = resp.Header.Get("Content-Security-Policy")
		}
		if p.status != 200 || !strings.Contains(p.body, "Sign in with a passkey") || !strings.Contains(csp, "script-src 'self'") {
			t.Fatalf("sign-in page: %d, CSP %q:\n%s", p.status, csp, p.body)
		}
		if code, h, body := get(t, srv.URL+"/assets/passkey.js"); code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") || !strings.Contains(string(body), "navigator.credentials") {
			t.Fatalf("script: %d %v", code, h)
		}
		f := formWith(t, p.body, "credential", "")
		for _, tc := range []struct {
			name   string
			values url.Values
			want   int
		}{
			{"garbage credential", url.Values{"csrf_token": f.values["csrf_token"], "credential": {"garbage"}}, 401},
			{"empty credential", url.Values{"csrf_token": f.values["csrf_token"]}, 401},
			{"assertion-shaped nonsense", url.Values{"csrf_token": f.values["csrf_token"], "credential": {`{"id":"x","rawId":"eA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`}}, 401},
			{"no csrf", url.Values{"credential": {"garbage"}}, 403},
			{"expired authorization request", url.Values{"csrf_token": f.values["csrf_token"], "challenge": {"nonsense"}, "credential": {"x"}}, 400},
		} {
			if got := post(b, p, f.action, tc.values); got.status != tc.want || !strings.Contains(got.body, "Latchkey") {
				t.Fatalf("%s: %d (want %d):\n%s", tc.name, got.status, tc.want, got.body)
			}
		}
		if code, _, o := postForm(t, srv.URL+"/login/passkey/options", url.Values{"csrf_token": {"forged"}}, "", ""); code != 403 || o["error"] == nil {
			t.Fatalf("options without the page's csrf: %d %v", code, o)
		}
		// The account page: signed out, it sends the browser to sign in and back; then hostile forms.
		p = b.get(srv.URL + "/account/passkeys")
		if !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("account page signed out: %d %s", p.status, p.body)
		}
		p = b.submit(p, map[string]string{"email": "ada@example.com", "password": "correct horse battery"})
		if p.status != 200 || p.url.Path != "/account/passkeys" || !strings.Contains(p.body, "You have no passkeys yet") || !strings.Contains(p.body, "Add a passkey") {
			t.Fatalf("account page: %d %v\n%s", p.status, p.url, p.body)
		}
		add := formWith(t, p.body, "op", "add")
		for _, tc := range []struct {
			name   string
			values url.Values
			want   int
		}{
			{"garbage credential", url.Values{"op": {"add"}, "credential": {"garbage"}, "name": {"x\x00y"}}, 400},
			{"registration for no ceremony", url.Values{"op": {"add"}, "credential": {`{"id":"eA","rawId":"eA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`}}, 400},
			{"remove someone else's or no passkey", url.Values{"op": {"remove"}, "factor_id": {"fac_nonexistent"}}, 404},
			{"unknown op", url.Values{"op": {"rename"}}, 400},
		} {
			tc.values.Set("csrf_token", add.values.Get("csrf_token"))
			if got := post(b, p, add.action, tc.values); got.status != tc.want || !strings.Contains(got.body, "Latchkey") {
				t.Fatalf("%s: %d (want %d):\n%s", tc.name, got.status, tc.want, got.body)
			}
		}
		if code, _, o := postForm(t, srv.URL+"/account/passkeys/options", url.Values{"csrf_token": {"forged"}}, "", ""); code != 403 || o["error"] == nil {
			t.Fatalf("registration options without the page's csrf: %d %v", code, o)
		}
	})
}
