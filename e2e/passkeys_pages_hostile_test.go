package e2e

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// Passkeys and second factors from the browser's side: stale sessions and tokens, the pages' forms as passkey.js
// fills them, a client gone mid-sign-in, and what the log keeps.

// ageSignIns makes every sign-in of the database an hour old: the browser sessions' auth_time and the
// auth_time in every access token's session, as a thief's stolen session or token would be.
func ageSignIns(t *testing.T, env testEnv) {
	t.Helper()
	db, q := rawDB(t, env)
	hourAgo := time.Now().Add(-time.Hour).UTC()
	if _, err := db.Exec(q("UPDATE browser_sessions SET auth_time = ?"), hourAgo); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("SELECT signature, session FROM oauth2_access")
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ sig, session string }
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.sig, &r.session); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	rows.Close()
	for _, r := range all {
		var s map[string]any
		if err := json.Unmarshal([]byte(r.session), &s); err != nil {
			t.Fatalf("access token session: %v", err)
		}
		if _, ok := s["auth_time"]; !ok {
			t.Fatalf("no auth_time in %s", r.session)
		}
		s["auth_time"] = hourAgo.Format(time.RFC3339Nano)
		raw, _ := json.Marshal(s)
		if _, err := db.Exec(q("UPDATE oauth2_access SET session = ? WHERE signature = ?"), string(raw), r.sig); err != nil {
			t.Fatal(err)
		}
	}
}

// A stolen session or access token an hour old adds no factor and removes none: each change asks for a fresh
// sign-in or the current password, on the pages and in the token API alike.
func TestStaleSignInChangesNoFactor(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		app := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid email")
		env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
		env["test.hostname"] = "localhost"
		srv := env.startServer(t)
		api, origin := srv.URL+"/api/v1/auth", srv.URL
		b := newBrowser(t, "http://never.example")
		wantAccount(t, signInAt(b, srv.URL, "default", adaEmail, adaPassword), http.StatusOK, adaEmail)
		code, _, lg := apiCall(t, "POST", api+"/login", map[string]any{"client_id": app.ClientID, "email": adaEmail, "password": adaPassword}, nil)
		if code != 200 {
			t.Fatalf("login: %d %v", code, lg)
		}
		tok := lg["access_token"].(string)
		f := registerPasskey(t, api, tok, origin, "Laptop", newSoftKey(t))
		ageSignIns(t, env)

		for _, c := range []struct {
			what, method, path string
			body               any
		}{
			{"passkey registration", "POST", "/passkeys/register/begin", nil},
			{"passkey registration with a wrong password", "POST", "/passkeys/register/begin", map[string]any{"password": "not it"}},
			{"passkey removal", "DELETE", "/passkeys/" + f["id"].(string), nil},
			{"authenticator app enrolment", "POST", "/mfa/totp/enroll", nil},
			{"factor removal", "DELETE", "/mfa/factors/" + f["id"].(string), map[string]any{"code": "000000"}},
		} {
			code, _, got := apiCall(t, c.method, api+c.path, c.body, bearerHeader(tok))
			if code < 400 || code >= 500 || got["error"] == nil {
				t.Errorf("%s with a stale token: %d %v", c.what, code, got)
			}
		}
		if code, _, pl := apiCall(t, "GET", api+"/passkeys", nil, bearerHeader(tok)); code != 200 || len(pl["passkeys"].([]any)) != 1 {
			t.Fatalf("passkeys after the stale tries: %d %v", code, pl)
		}
		if code, _, got := apiCall(t, "POST", api+"/passkeys/register/begin", map[string]any{"password": adaPassword}, bearerHeader(tok)); code != 200 {
			t.Fatalf("passkey registration with the password: %d %v", code, got)
		}

		// The pages, with the stale browser session.
		pp := b.get(srv.URL + "/account/passkeys")
		if pp.status != 200 {
			t.Fatalf("passkeys page: %d\n%s", pp.status, pp.body)
		}
		if strings.Contains(pp.body, `value="remove"`) {
			t.Errorf("the passkeys page offers removal to a stale session:\n%s", pp.body)
		}
		ap := b.get(srv.URL + "/account")
		csrf := accountForm(t, ap, "/account/factors/remove", nil).Get("csrf_token")
		if resp, body := fetch(t, b.c, "POST", srv.URL+"/account/passkeys/options", url.Values{"csrf_token": {csrf}}); resp.StatusCode != 403 {
			t.Errorf("registration options with a stale session: %d %s", resp.StatusCode, body)
		}
		if got := post(b, pp, "/account/passkeys", url.Values{"csrf_token": {csrf}, "op": {"remove"}, "factor_id": {f["id"].(string)}}); got.status != 403 {
			t.Errorf("passkey removal with a stale session: %d\n%s", got.status, got.body)
		}
		if got := post(b, ap, "/account/factors/remove", accountForm(t, ap, "/account/factors/remove", map[string]string{"factor_id": f["id"].(string), "password": ""})); got.status != 403 {
			t.Errorf("factor removal on the account page with a stale session: %d\n%s", got.status, got.body)
		}
		if got := post(b, ap, "/account/factors/totp", url.Values{"csrf_token": {csrf}}); got.status != 403 {
			t.Errorf("authenticator app enrolment with a stale session: %d\n%s", got.status, got.body)
		}
		if code, _, pl := apiCall(t, "GET", api+"/passkeys", nil, bearerHeader(tok)); code != 200 || len(pl["passkeys"].([]any)) != 1 {
			t.Fatalf("passkeys after the stale page tries: %d %v", code, pl)
		}
	})
}

// A client deleted while its user signs in with a passkey: the sign-in page's passkey form answers that the
// sign-in has expired (as the password form does), not a 500.
func TestPasskeySignInForADeletedClient(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env["test.hostname"] = "localhost"
		f := newEdge(t, env)
		b := newBrowser(t, spaCallback)
		p := b.get(f.authURL(f.scoped("openid", "email"), randomString(t), oauth2.GenerateVerifier()))
		form := formWith(t, p.body, "credential", "")
		if form.values.Get("challenge") == "" {
			t.Fatalf("the passkey form carries no authorization request:\n%s", p.body)
		}
		env.cli(t, "clients", "delete", "--id", "spa")
		values := url.Values{}
		for k, v := range form.values {
			values[k] = v
		}
		values.Set("credential", `{"id":"eA","rawId":"eA","type":"public-key"}`)
		got := post(b, p, form.action, values)
		if got.status >= 500 || got.status < 400 || !strings.Contains(got.body, "<h1>") {
			t.Fatalf("passkey form for a deleted client: %d\n%s", got.status, got.body)
		}
	})
}

// The log of passkey flows at debug level — registration, passwordless sign-in, a second factor, refusals —
// holds no token, mfa_token, password or signed response.
func TestPasskeyLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		app := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid email offline_access")
		env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
		env["test.hostname"] = "localhost"
		env["LATCHKEY_LOG_LEVEL"] = "debug"
		logs := &lockedBuffer{}
		srv := env.startServerLoggingTo(t, logs)
		api, origin := srv.URL+"/api/v1/auth", srv.URL
		var secrets []string
		code, _, lg := apiCall(t, "POST", api+"/login", map[string]any{"client_id": app.ClientID, "email": adaEmail, "password": adaPassword}, nil)
		if code != 200 {
			t.Fatalf("login: %d %v", code, lg)
		}
		tok := lg["access_token"].(string)
		secrets = append(secrets, tok, adaPassword)
		ada := newSoftKey(t)
		f := registerPasskey(t, api, tok, origin, "Laptop", ada)
		code, tk, cred := passkeySignIn(t, api, app.ClientID, origin, ada)
		if code != 200 {
			t.Fatalf("passkey sign-in: %d %v", code, tk)
		}
		resp := cred["response"].(map[string]any)
		secrets = append(secrets, tk["access_token"].(string), tk["refresh_token"].(string), tk["id_token"].(string),
			resp["signature"].(string), resp["authenticatorData"].(string), resp["clientDataJSON"].(string))
		// Replayed, and from another origin.
		code, _, b := apiCall(t, "POST", api+"/passkeys/signin/finish", map[string]any{"client_id": app.ClientID, "credential": cred}, nil)
		refusedNot500(t, "replay", code, b)
		code, _, ch := apiCall(t, "POST", api+"/login", map[string]any{"client_id": app.ClientID, "email": adaEmail, "password": adaPassword}, nil)
		if code != 401 || ch["mfa_token"] == nil {
			t.Fatalf("login with a passkey: %d %v", code, ch)
		}
		mt := ch["mfa_token"].(string)
		secrets = append(secrets, mt)
		code, _, begun := apiCall(t, "POST", api+"/mfa/passkey/begin", map[string]any{"mfa_token": mt}, nil)
		if code != 200 {
			t.Fatalf("mfa begin: %d %v", code, begun)
		}
		code, _, b = apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": mt, "credential": ada.assert(t, begun, "https://evil.example")}, nil)
		refusedNot500(t, "wrong origin", code, b)
		code, _, begun = apiCall(t, "POST", api+"/mfa/passkey/begin", map[string]any{"mfa_token": mt}, nil)
		if code != 200 {
			t.Fatalf("mfa begin: %d %v", code, begun)
		}
		code, _, done := apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": mt, "credential": ada.assert(t, begun, origin)}, nil)
		if code != 200 {
			t.Fatalf("mfa verify: %d %v", code, done)
		}
		secrets = append(secrets, done["access_token"].(string), done["refresh_token"].(string))
		if pk, _ := f["passkey"].(map[string]any); pk != nil && pk["public_key"] != nil {
			t.Fatalf("the API shows the public key: %v", f)
		}
		log := logs.String()
		if !strings.Contains(log, "passkey added") {
			t.Fatalf("no debug log captured:\n%.2000s", log)
		}
		for _, s := range secrets {
			if strings.Contains(log, s) || len(s) > 24 && strings.Contains(log, s[:24]) {
				t.Errorf("the log holds a secret (%.12s…)", s)
			}
		}
	})
}

var dataOptions = regexp.MustCompile(`data-options="([^"]*)"`)

// The browser's passkey forms, as passkey.js fills them, end in an ID token whose amr says what was used: a
// passkey alone (hwk user mfa), or a password and a passkey (pwd hwk mfa); each page lets its post end at the app.
func TestPasskeyAMRInTheBrowser(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env["test.hostname"] = "localhost"
		f := newEdge(t, env)
		app := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid email")
		api, origin := f.srv.URL+"/api/v1/auth", f.srv.URL
		code, _, lg := apiCall(t, "POST", api+"/login", map[string]any{"client_id": app.ClientID, "email": adaEmail, "password": adaPassword}, nil)
		if code != 200 {
			t.Fatalf("login: %d %v", code, lg)
		}
		ada := newSoftKey(t)
		registerPasskey(t, api, lg["access_token"].(string), origin, "Laptop", ada)
		asJSON := func(v any) string { raw, _ := json.Marshal(v); return string(raw) }

		t.Run("passwordless", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			conf, verifier := f.scoped("openid", "email"), oauth2.GenerateVerifier()
			p := b.get(f.authURL(conf, randomString(t), verifier))
			wantFormActionAllows(t, "sign-in page", p, spaCallback)
			form := formWith(t, p.body, "credential", "")
			resp, body := fetch(t, b.c, "POST", f.srv.URL+"/login/passkey/options", url.Values{"csrf_token": form.values["csrf_token"]})
			var begun map[string]any
			if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &begun) != nil {
				t.Fatalf("options: %d %s", resp.StatusCode, body)
			}
			values := url.Values{"csrf_token": form.values["csrf_token"], "challenge": form.values["challenge"], "credential": {asJSON(ada.assert(t, begun, origin))}}
			q := toApp(t, b, post(b, p, form.action, values))
			_, claims := f.exchange(t, conf, q.Get("code"), verifier)
			if amr := amrOf(claims); !slices.Equal(amr, []string{"hwk", "user", "mfa"}) {
				t.Fatalf("amr = %v, want [hwk user mfa]", amr)
			}
		})
		t.Run("password, then the passkey as second factor", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			conf, verifier := f.scoped("openid", "email"), oauth2.GenerateVerifier()
			p := b.submit(b.get(f.authURL(conf, randomString(t), verifier)), map[string]string{"email": adaEmail, "password": adaPassword})
			m := dataOptions.FindStringSubmatch(p.body)
			if m == nil {
				t.Fatalf("the code page offers no passkey: %d\n%s", p.status, p.body)
			}
			wantFormActionAllows(t, "code page", p, spaCallback)
			var options map[string]any
			if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &options); err != nil {
				t.Fatalf("data-options: %v", err)
			}
			form := formWith(t, p.body, "credential", "")
			values := url.Values{"csrf_token": form.values["csrf_token"], "mfa_token": form.values["mfa_token"],
				"credential": {asJSON(ada.assert(t, map[string]any{"options": options}, origin))}}
			q := toApp(t, b, post(b, p, form.action, values))
			_, claims := f.exchange(t, conf, q.Get("code"), verifier)
			if amr := amrOf(claims); !slices.Equal(amr, []string{"pwd", "hwk", "mfa"}) {
				t.Fatalf("amr = %v, want [pwd hwk mfa]", amr)
			}
		})
	})
}
