package e2e

import (
	"encoding/json"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"
)

// A backend mints tokens for a user (Xano's createAuthenticationToken): the admin API issues them through the
// token API's sign-in issuance, with the grant's extras and access-token lifetime kept across refreshes, in a
// session listed everywhere with the admin client that minted it and revocable like any other.
func TestAdminMintsTokens(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, appID := noCodeFixture(t, env)
		backend := env.createClient(t, "--name", "xano", "--admin", "--admin-pools", "customers")
		rs := env.createClient(t, "--name", "resource-server")
		ccToken := func(c createdClient, scope string) string {
			code, _, b := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, c.ClientID, c.ClientSecret)
			if code != 200 {
				t.Fatalf("client_credentials for %s: %d %v", c.ClientID, code, b)
			}
			return b["access_token"].(string)
		}
		admin := bearerHeader(ccToken(backend, "latchkey.admin"))
		var user struct{ ID string }
		if err := json.Unmarshal([]byte(env.cli(t, "users", "create", "--pool", "customers", "--email", "kim@example.com",
			"--password", "kim-password-123", "--json")), &user); err != nil || user.ID == "" {
			t.Fatalf("users create: %v", err)
		}
		users := srv.URL + "/api/v1/admin/users/"
		if code, _, b := apiCall(t, "PATCH", users+user.ID, map[string]any{"extras": map[string]any{"color": "blue", "plan": "free"}}, admin); code != 200 {
			t.Fatalf("set the user's extras: %d %v", code, b)
		}
		introspect := func(token string) map[string]any {
			t.Helper()
			code, _, in := postForm(t, srv.URL+"/oauth2/introspect", url.Values{"token": {token}}, rs.ClientID, rs.ClientSecret)
			if code != 200 {
				t.Fatalf("introspect: %d %v", code, in)
			}
			return in
		}
		lifetime := func(in map[string]any) float64 { // exp - iat, seconds
			exp, _ := in["exp"].(float64)
			iat, _ := in["iat"].(float64)
			return exp - iat
		}

		before := time.Now()
		code, _, minted := apiCall(t, "POST", users+user.ID+"/tokens", map[string]any{
			"client_id": appID, "scope": "openid profile offline_access",
			"extras": map[string]any{"tenant": "acme", "plan": "pro"}, "expires_in": 120,
		}, admin)
		if code != 200 {
			t.Fatalf("mint: %d %v", code, minted)
		}
		at, _ := minted["access_token"].(string)
		rt, _ := minted["refresh_token"].(string)
		idt, _ := minted["id_token"].(string)
		sid, _ := minted["session_id"].(string)
		mu, _ := minted["user"].(map[string]any)
		expiresAt, _ := minted["expires_at"].(float64)
		if at == "" || rt == "" || idt == "" || !strings.HasPrefix(sid, "ses_") || minted["token_type"] != "Bearer" ||
			minted["expires_in"] != float64(120) || mu["id"] != user.ID || minted["scope"] != "openid profile offline_access" {
			t.Fatalf("mint response: %v", minted)
		}
		if d := expiresAt - float64(before.Unix()); d < 118 || d > 125 {
			t.Errorf("expires_at is %v s from the request, want about 120", d)
		}

		// The token works for /me (the user as stored: the grant's extras are not the user's).
		code, _, me := apiCall(t, "GET", srv.URL+"/api/v1/auth/me", nil, bearerHeader(at))
		if code != 200 || me["id"] != user.ID {
			t.Fatalf("me with a minted token: %d %v", code, me)
		}
		if extras, _ := me["extras"].(map[string]any); extras["tenant"] != nil || extras["plan"] != "free" {
			t.Errorf("the grant's extras reached the stored user: %v", me["extras"])
		}
		// Introspection and the ID token carry the user's extras with the grant's merged over them; the access
		// token lives 120 s, not the server's hour.
		in := introspect(at)
		extras, _ := in["extras"].(map[string]any)
		if in["active"] != true || in["sub"] != user.ID || in["client_id"] != appID || extras["tenant"] != "acme" ||
			extras["plan"] != "pro" || extras["color"] != "blue" {
			t.Fatalf("introspection of a minted token: %v", in)
		}
		if l := lifetime(in); l < 119 || l > 121 {
			t.Errorf("minted access token lives %v s, want 120", l)
		}
		idClaims := jwtPayload(t, idt)
		if ie, _ := idClaims["extras"].(map[string]any); idClaims["sub"] != user.ID || ie["tenant"] != "acme" || idClaims["sid"] != sid || idClaims["amr"] != nil {
			t.Errorf("ID token of a minted grant: %v", idClaims)
		}

		// A refresh keeps the grant's extras and its lifetime.
		code, _, ref := apiCall(t, "POST", srv.URL+"/api/v1/auth/refresh", map[string]any{"refresh_token": rt}, nil)
		at2, _ := ref["access_token"].(string)
		rt2, _ := ref["refresh_token"].(string)
		if ei, _ := ref["expires_in"].(float64); code != 200 || at2 == "" || rt2 == "" || ei < 118 || ei > 120 {
			t.Fatalf("refresh of a minted grant: %d %v", code, ref)
		}
		in2 := introspect(at2)
		if e2, _ := in2["extras"].(map[string]any); in2["active"] != true || e2["tenant"] != "acme" || e2["color"] != "blue" {
			t.Fatalf("introspection after refresh: %v", in2)
		}
		if l := lifetime(in2); l < 118 || l > 121 {
			t.Errorf("refreshed access token of a minted grant lives %v s, want 120", l)
		}

		// The session is listed, marked as minted by the admin client: the user's own list, the admin's, the CLI.
		code, _, own := apiCall(t, "GET", srv.URL+"/api/v1/auth/sessions", nil, bearerHeader(at2))
		if list, _ := own["sessions"].([]any); code != 200 || len(list) != 1 ||
			list[0].(map[string]any)["id"] != sid || list[0].(map[string]any)["minted_by"] != backend.ClientID {
			t.Fatalf("the user's sessions: %d %v", code, own)
		}
		code, _, adm := apiCall(t, "GET", users+user.ID+"/sessions", nil, admin)
		if list, _ := adm["sessions"].([]any); code != 200 || len(list) != 1 || list[0].(map[string]any)["minted_by"] != backend.ClientID {
			t.Fatalf("the admin's view of the sessions: %d %v", code, adm)
		}
		var cli []map[string]any
		if err := json.Unmarshal([]byte(env.cli(t, "sessions", "list", "--user", "kim@example.com", "--pool", "customers", "--json")), &cli); err != nil ||
			len(cli) != 1 || cli[0]["id"] != sid || cli[0]["minted_by"] != backend.ClientID {
			t.Fatalf("sessions list --json: %v %v", cli, err)
		}
		if out := env.cli(t, "sessions", "list", "--user", "kim@example.com", "--pool", "customers"); !strings.Contains(out, "MINTED BY") || !strings.Contains(out, backend.ClientID) {
			t.Errorf("sessions list does not show the mark:\n%s", out)
		}
		// A sign-in's session carries no mark.
		code, _, login := apiCall(t, "POST", srv.URL+"/api/v1/auth/login", map[string]any{"client_id": appID, "email": "kim@example.com", "password": "kim-password-123"}, nil)
		if code != 200 {
			t.Fatalf("login: %d %v", code, login)
		}
		code, _, adm = apiCall(t, "GET", users+user.ID+"/sessions", nil, admin)
		marks := map[any]any{}
		for _, s := range adm["sessions"].([]any) {
			marks[s.(map[string]any)["id"]] = s.(map[string]any)["minted_by"]
		}
		if code != 200 || len(marks) != 2 || marks[sid] != backend.ClientID || marks[login["session_id"]] != nil {
			t.Errorf("sessions after a sign-in: %d %v", code, adm)
		}

		// Revocable: the admin ends the session, and its tokens stop working.
		if code, _, b := apiCall(t, "DELETE", users+user.ID+"/sessions/"+sid, nil, admin); code != 204 {
			t.Fatalf("end the minted session: %d %v", code, b)
		}
		if code, _, _ := apiCall(t, "GET", srv.URL+"/api/v1/auth/me", nil, bearerHeader(at2)); code != 401 {
			t.Errorf("me after the minted session ended: %d, want 401", code)
		}
		if code, _, _ := apiCall(t, "POST", srv.URL+"/api/v1/auth/refresh", map[string]any{"refresh_token": rt2}, nil); code == 200 {
			t.Error("the minted refresh token still works after its session ended")
		}
		if in := introspect(at2); in["active"] != false {
			t.Errorf("introspection after the session ended: %v", in)
		}
		if code, _, b := apiCall(t, "DELETE", users+user.ID+"/sessions/"+sid, nil, admin); code != 404 {
			t.Errorf("ending it again: %d %v, want 404", code, b)
		}

		// Without expires_in, extras or scope: the server's lifetime and every scope of the client; the minted
		// token can also log itself out.
		code, _, plain := apiCall(t, "POST", users+user.ID+"/tokens", map[string]any{"client_id": appID}, admin)
		if code != 200 || plain["expires_in"] != float64(3600) || plain["scope"] != "openid profile email roles offline_access" {
			t.Fatalf("mint with defaults: %d %v", code, plain)
		}
		if in := introspect(plain["access_token"].(string)); in["extras"].(map[string]any)["tenant"] != nil {
			t.Errorf("another grant carries the first grant's extras: %v", in)
		}
		if code, _, _ := apiCall(t, "POST", srv.URL+"/api/v1/auth/logout", nil, bearerHeader(plain["access_token"].(string))); code != 204 {
			t.Errorf("logout with a minted token: %d", code)
		}
	})
}

// Minting is refused to anyone but an admin client of the user's pool, through a first-party client of that
// pool, with extras the rules allow and a lifetime within the server's; a refusal starts no session.
func TestAdminMintRefusals(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, appID := noCodeFixture(t, env)
		env.cli(t, "pools", "create", "staff", "--signup=false")
		staffApp := env.createClient(t, "--name", "staff-app", "--first-party", "--pool", "staff", "--scopes", "openid offline_access")
		thirdParty := env.createClient(t, "--name", "partner", "--pool", "customers", "--redirect-uris", "https://partner.example/cb", "--scopes", "openid")
		everyPool := env.createClient(t, "--name", "ops", "--admin")
		customersOnly := env.createClient(t, "--name", "xano", "--admin", "--admin-pools", "customers")
		plainClient := env.createClient(t, "--name", "plain", "--scopes", "read")
		ccToken := func(c createdClient, scope string) map[string]string {
			code, _, b := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, c.ClientID, c.ClientSecret)
			if code != 200 {
				t.Fatalf("client_credentials for %s: %d %v", c.ClientID, code, b)
			}
			return bearerHeader(b["access_token"].(string))
		}
		newUser := func(pool, email string) string {
			var u struct{ ID string }
			if err := json.Unmarshal([]byte(env.cli(t, "users", "create", "--pool", pool, "--email", email, "--password", "a-password-123", "--json")), &u); err != nil || u.ID == "" {
				t.Fatalf("users create: %v", err)
			}
			return u.ID
		}
		kim, sam, dan := newUser("customers", "kim@example.com"), newUser("staff", "sam@example.com"), newUser("customers", "dan@example.com")
		all, limited := ccToken(everyPool, "latchkey.admin"), ccToken(customersOnly, "latchkey.admin")
		users := srv.URL + "/api/v1/admin/users/"
		if code, _, b := apiCall(t, "PATCH", users+dan, map[string]any{"disabled": true}, all); code != 200 {
			t.Fatalf("disable dan: %d %v", code, b)
		}
		code, _, login := apiCall(t, "POST", srv.URL+"/api/v1/auth/login", map[string]any{"client_id": appID, "email": "kim@example.com", "password": "a-password-123"}, nil)
		if code != 200 {
			t.Fatalf("login: %d %v", code, login)
		}
		userToken := bearerHeader(login["access_token"].(string))
		ok := map[string]any{"client_id": appID}
		with := func(k string, v any) map[string]any { return map[string]any{"client_id": appID, k: v} }

		for _, tc := range []struct {
			name   string
			user   string
			body   any
			auth   map[string]string
			status int
			code   string
		}{
			{"no token", kim, ok, nil, 401, "invalid_token"},
			{"a non-admin client's token", kim, ok, ccToken(plainClient, "read"), 403, "insufficient_scope"},
			{"an admin client's token without the scope", kim, ok, ccToken(everyPool, ""), 403, "insufficient_scope"},
			{"a user's token", kim, ok, userToken, 403, "insufficient_scope"},
			{"no client_id", kim, map[string]any{}, all, 400, "invalid_request"},
			{"an unknown client", kim, map[string]any{"client_id": "nope"}, all, 400, "invalid_client"},
			{"a third-party client", kim, map[string]any{"client_id": thirdParty.ClientID}, all, 400, "invalid_client"},
			{"a client of a pool the admin does not administer", sam, map[string]any{"client_id": staffApp.ClientID}, limited, 403, "insufficient_scope"},
			{"a user of another pool than the client's", sam, ok, all, 400, "invalid_request"},
			{"a user of a pool the admin does not administer", sam, ok, limited, 404, "not_found"},
			{"an unknown user", "usr_nope", ok, all, 404, "not_found"},
			{"a disabled user", dan, ok, all, 409, "user_disabled"},
			{"a scope the client may not have", kim, with("scope", "openid admin"), all, 400, "invalid_scope"},
			{"a registered claim in extras", kim, with("extras", map[string]any{"sub": "someone-else"}), all, 400, "invalid_request"},
			{"another registered claim in extras", kim, with("extras", map[string]any{"tenant": "acme", "exp": 1}), all, 400, "invalid_request"},
			{"an empty extras key", kim, with("extras", map[string]any{"": 1}), all, 400, "invalid_request"},
			{"extras that are not an object", kim, with("extras", []string{"a"}), all, 400, "invalid_request"},
			{"expires_in zero", kim, with("expires_in", 0), all, 400, "invalid_request"},
			{"expires_in negative", kim, with("expires_in", -60), all, 400, "invalid_request"},
			{"expires_in beyond the server's access-token lifetime", kim, with("expires_in", 3601), all, 400, "invalid_request"},
			{"expires_in huge", kim, with("expires_in", int64(math.MaxInt64)), all, 400, "invalid_request"},
			{"expires_in not a number", kim, with("expires_in", "60"), all, 400, "invalid_request"},
			{"an unknown field", kim, with("password", "x"), all, 400, "invalid_request"},
		} {
			code, _, b := apiCall(t, "POST", users+tc.user+"/tokens", tc.body, tc.auth)
			if code != tc.status || b["error"] != tc.code || b["access_token"] != nil {
				t.Errorf("%s: %d %v, want %d %s", tc.name, code, b, tc.status, tc.code)
			}
		}
		// None of them started a session: kim has only the sign-in's, dan and sam none.
		for id, want := range map[string]int{kim: 1, sam: 0, dan: 0} {
			code, _, b := apiCall(t, "GET", users+id+"/sessions", nil, all)
			if list, _ := b["sessions"].([]any); code != 200 || len(list) != want {
				t.Errorf("sessions of %s after the refusals: %d %v, want %d", id, code, b, want)
			}
		}
		// The limits are the only thing wrong: the same admin mints at exactly the server's lifetime.
		if code, _, b := apiCall(t, "POST", users+kim+"/tokens", with("expires_in", 3600), limited); code != 200 || b["expires_in"] != float64(3600) {
			t.Errorf("mint at the server's lifetime: %d %v", code, b)
		}
	})
}
