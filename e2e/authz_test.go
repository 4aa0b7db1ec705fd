package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Who may use what: the token API trusts only first-party tokens and their scopes, the admin API only admin
// clients (within their pools), introspection only clients, revocation only the token's own client.

// A third-party app's token, even one the user granted every scope, opens none of the token API: it cannot read
// the user, rename them, list or end their sessions, change their password or sign them out.
func TestTokenAPIRefusesThirdPartyTokens(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env) // "spa" is a third-party app
		b := newBrowser(t, spaCallback)
		openidOnly, claims := e.signedIn(t, b, "openid")
		everything, _ := e.signedIn(t, b)
		sid, _ := claims["sid"].(string)
		if sid == "" {
			t.Fatalf("ID token has no sid: %v", claims)
		}
		api := e.srv.URL + "/api/v1/auth"
		for _, tok := range []string{openidOnly.AccessToken, everything.AccessToken} {
			for _, tc := range []struct {
				method, path string
				body         any
			}{
				{"GET", "/me", nil},
				{"PATCH", "/me", map[string]any{"name": "Mallory"}},
				{"GET", "/sessions", nil},
				{"DELETE", "/sessions", nil},
				{"DELETE", "/sessions/" + sid, nil},
				{"POST", "/password", map[string]any{"current_password": adaPassword, "new_password": "a-much-better-passphrase"}},
				{"POST", "/logout", nil},
			} {
				code, hdr, body := apiCall(t, tc.method, api+tc.path, tc.body, bearerHeader(tok))
				if code != http.StatusUnauthorized || body["error"] != "invalid_token" ||
					hdr.Get("WWW-Authenticate") != `Bearer realm="latchkey", error="invalid_token"` {
					t.Errorf("%s %s with a third-party token: %d %v %q, want 401 invalid_token", tc.method, tc.path, code, body, hdr.Get("WWW-Authenticate"))
				}
			}
		}
		// Nothing changed: same name, the session and its tokens alive, the password as it was.
		code, _, ui := apiCall(t, "GET", e.srv.URL+"/userinfo", nil, bearerHeader(everything.AccessToken))
		if code != 200 || ui["name"] != "Ada Lovelace" {
			t.Fatalf("userinfo after the attempts: %d %v", code, ui)
		}
		out := env.cli(t, "sessions", "list", "--user", adaEmail, "--json")
		if !strings.Contains(out, sid) {
			t.Fatalf("the browser session is gone:\n%s", out)
		}

		// A first-party app's client_credentials token is not a user's either.
		svc := env.createClient(t, "--name", "own-backend", "--first-party", "--grant-types", "client_credentials", "--scopes", "openid")
		_, _, tb := postForm(t, e.srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc.ClientID, svc.ClientSecret)
		cc, _ := tb["access_token"].(string)
		if code, _, body := apiCall(t, "GET", api+"/me", nil, bearerHeader(cc)); code != 401 || body["error"] != "invalid_token" {
			t.Fatalf("/me with a client_credentials token: %d %v", code, body)
		}
	})
}

// A first-party token reads and changes only what its scopes grant; one with every scope sees the whole user as
// before (WeWeb maps all of it).
func TestTokenAPIScopesLimitTheUser(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		api := srv.URL + "/api/v1/auth"
		if code, _, b := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": "ada@example.com",
			"password": "violet-tractor-47", "name": "Ada"}, nil); code != 201 {
			t.Fatalf("signup: %d %v", code, b)
		}
		login := func(scope string) string {
			body := map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}
			if scope != "" {
				body["scope"] = scope
			}
			code, _, b := apiCall(t, "POST", api+"/login", body, nil)
			if code != 200 {
				t.Fatalf("login with scope %q: %d %v", scope, code, b)
			}
			return b["access_token"].(string)
		}
		keys := func(m map[string]any) []string {
			var k []string
			for key := range m {
				k = append(k, key)
			}
			sort.Strings(k)
			return k
		}
		for _, tc := range []struct {
			scope string
			want  []string
		}{
			{"openid", []string{"created_at", "id", "pool"}},
			{"openid email", []string{"created_at", "email", "email_verified", "id", "pool"}},
			{"openid roles", []string{"created_at", "id", "pool", "roles"}},
			{"openid profile", []string{"created_at", "extras", "id", "name", "pool", "updated_at"}},
			{"", []string{"created_at", "email", "email_verified", "extras", "id", "name", "pool", "roles", "updated_at"}},
		} {
			code, _, me := apiCall(t, "GET", api+"/me", nil, bearerHeader(login(tc.scope)))
			if code != 200 || !reflect.DeepEqual(keys(me), tc.want) {
				t.Errorf("/me with scope %q: %d %v, want exactly %v", tc.scope, code, keys(me), tc.want)
			}
			if tc.scope == "" && (me["email"] != "ada@example.com" || me["name"] != "Ada" || !reflect.DeepEqual(me["roles"], []any{"customer"})) {
				t.Errorf("/me with every scope = %v", me)
			}
		}

		// PATCH /me needs profile.
		noProfile := login("openid email roles")
		code, hdr, body := apiCall(t, "PATCH", api+"/me", map[string]any{"name": "Mallory"}, bearerHeader(noProfile))
		if code != http.StatusForbidden || body["error"] != "insufficient_scope" ||
			hdr.Get("WWW-Authenticate") != `Bearer realm="latchkey", error="insufficient_scope", scope="profile"` {
			t.Fatalf("PATCH /me without profile: %d %v %q", code, body, hdr.Get("WWW-Authenticate"))
		}
		if code, _, me := apiCall(t, "PATCH", api+"/me", map[string]any{"name": "Ada L."}, bearerHeader(login("openid profile"))); code != 200 || me["name"] != "Ada L." {
			t.Fatalf("PATCH /me with profile: %d %v", code, me)
		}
		// The session calls need no scope beyond being our app's token.
		if code, _, b := apiCall(t, "GET", api+"/sessions", nil, bearerHeader(noProfile)); code != 200 {
			t.Fatalf("GET /sessions with a narrow first-party token: %d %v", code, b)
		}
	})
}

// setAdminByHand makes a client an admin holding latchkey.admin in the database directly, bypassing the rules
// the CLI enforces (as a row from an older release, or edited by hand, might).
func setAdminByHand(t *testing.T, env testEnv, clientID string, scopes []string) {
	t.Helper()
	raw, _ := json.Marshal(append(scopes, "latchkey.admin"))
	execSQL(t, env, "UPDATE clients SET admin = TRUE, scopes = ? WHERE id = ?", string(raw), clientID)
}

// Admin power belongs to admin clients' client_credentials tokens, within their pools; never to a user's token.
func TestAdminAPIOnlyForAdminClients(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		env.cli(t, "pools", "create", "staff", "--signup=false")
		everyPool := env.createClient(t, "--name", "ops", "--admin")
		customersOnly := env.createClient(t, "--name", "xano", "--admin", "--admin-pools", "customers")
		plain := env.createClient(t, "--name", "plain", "--scopes", "read")
		token := func(c createdClient, scope string) string {
			code, _, b := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, c.ClientID, c.ClientSecret)
			if code != 200 {
				t.Fatalf("client_credentials for %s: %d %v", c.ClientID, code, b)
			}
			return b["access_token"].(string)
		}
		_, _, signup := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": clientID, "email": "dee@example.com", "password": "violet-tractor-47"}, nil)
		customer := signup["user"].(map[string]any)["id"].(string)
		var staffUser struct{ ID string }
		if err := json.Unmarshal([]byte(env.cli(t, "users", "create", "--pool", "staff", "--email", "sam@example.com", "--password", "staff-password-123", "--json")), &staffUser); err != nil || staffUser.ID == "" {
			t.Fatalf("users create: %v", err)
		}
		users := srv.URL + "/api/v1/admin/users"
		all, limited := bearerHeader(token(everyPool, "latchkey.admin")), bearerHeader(token(customersOnly, "latchkey.admin"))

		// Not an admin client, or an admin client's token without the scope: 403.
		for name, h := range map[string]map[string]string{
			"a plain client's token":             bearerHeader(token(plain, "read")),
			"an admin's token without the scope": bearerHeader(token(everyPool, "")),
		} {
			if code, hdr, b := apiCall(t, "GET", users+"/"+customer, nil, h); code != 403 || b["error"] != "insufficient_scope" || !strings.Contains(hdr.Get("WWW-Authenticate"), `scope="latchkey.admin"`) {
				t.Errorf("%s: %d %v %v", name, code, b, hdr)
			}
		}
		if _, errOut, code := env.cliCode(t, "", "clients", "create", "--name", "sneaky", "--scopes", "latchkey.admin"); code == 0 || !strings.Contains(errOut, "only for admin clients") {
			t.Errorf("a non-admin client registered latchkey.admin: exit %d %s", code, errOut)
		}

		// A user's token is refused even when it carries latchkey.admin from an admin-flagged first-party app:
		// an anonymous sign-up must never administer anything.
		setAdminByHand(t, env, clientID, []string{"openid", "profile", "email", "roles", "offline_access"})
		code, _, anon := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": clientID, "email": "eve@example.com",
			"password": "violet-tractor-47", "scope": "openid latchkey.admin"}, nil)
		if code != 201 || !strings.Contains(anon["scope"].(string), "latchkey.admin") {
			t.Fatalf("signup asking for latchkey.admin on the hand-edited client: %d %v", code, anon)
		}
		eve := bearerHeader(anon["access_token"].(string))
		for _, req := range []struct {
			method, path string
			body         any
		}{
			{"GET", "", nil}, {"GET", "/" + customer, nil}, {"PATCH", "/" + anon["user"].(map[string]any)["id"].(string), map[string]any{"roles": []string{"admin"}}},
		} {
			if code, _, b := apiCall(t, req.method, users+req.path, req.body, eve); code != 403 || b["error"] != "insufficient_scope" {
				t.Errorf("%s %s with a user's token carrying latchkey.admin: %d %v", req.method, req.path, code, b)
			}
		}

		// A pool-limited admin sees and changes only its pools' users.
		if code, _, b := apiCall(t, "GET", users+"/"+staffUser.ID, nil, limited); code != 404 {
			t.Errorf("customers admin reads a staff user: %d %v", code, b)
		}
		if code, _, b := apiCall(t, "PATCH", users+"/"+staffUser.ID, map[string]any{"roles": []string{"pwned"}, "disabled": true}, limited); code != 404 {
			t.Errorf("customers admin patches a staff user: %d %v", code, b)
		}
		if code, _, u := apiCall(t, "GET", users+"/"+staffUser.ID, nil, all); code != 200 || len(u["roles"].([]any)) != 0 {
			t.Errorf("staff user after the refused patch: %d %v", code, u)
		}
		for _, q := range []string{"?pool=staff", "?email=sam@example.com", "?pool=staff&email=sam@example.com"} {
			if code, _, b := apiCall(t, "GET", users+q, nil, limited); code != 403 || b["error"] != "insufficient_scope" {
				t.Errorf("customers admin GET %s: %d %v", q, code, b)
			}
		}
		listed := func(h map[string]string, q string) []string {
			code, _, b := apiCall(t, "GET", users+q, nil, h)
			if code != 200 {
				t.Fatalf("GET users%s: %d %v", q, code, b)
			}
			var ids []string
			for _, u := range b["users"].([]any) {
				ids = append(ids, u.(map[string]any)["id"].(string))
			}
			slices.Sort(ids)
			return ids
		}
		eveID := anon["user"].(map[string]any)["id"].(string)
		wantCustomers := []string{customer, eveID}
		slices.Sort(wantCustomers)
		if got := listed(limited, ""); !reflect.DeepEqual(got, wantCustomers) {
			t.Errorf("customers admin lists %v, want %v", got, wantCustomers)
		}
		if got := listed(limited, "?pool=customers&email=DEE@example.com"); !reflect.DeepEqual(got, []string{customer}) {
			t.Errorf("customers admin looks up dee: %v", got)
		}
		if got := listed(all, ""); len(got) != 3 {
			t.Errorf("every-pool admin lists %v, want 3 users", got)
		}
		if code, _, u := apiCall(t, "PATCH", users+"/"+customer, map[string]any{"roles": []string{"vip"}}, limited); code != 200 || u["roles"].([]any)[0] != "vip" {
			t.Errorf("customers admin patches a customer: %d %v", code, u)
		}

		// Admin power is read at each request: taking it away stops the live token at once.
		env.cli(t, "clients", "update", customersOnly.ClientID, "--admin=false")
		if code, _, b := apiCall(t, "GET", users+"/"+customer, nil, limited); code != 403 {
			t.Errorf("token of a client no longer admin: %d %v", code, b)
		}
	})
}

// clients create --admin / --admin-pools and clients update: round trip, and the rules refused with a reason.
func TestClientsAdminFlags(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		env.cli(t, "pools", "create", "staff")
		var c clientJSON
		if err := json.Unmarshal([]byte(env.cli(t, "clients", "create", "--name", "xano", "--admin", "--admin-pools", "customers,staff", "--json")), &c); err != nil {
			t.Fatal(err)
		}
		if !c.Admin || !reflect.DeepEqual(c.AdminPools, []string{"customers", "staff"}) || c.Scope != "latchkey.admin" ||
			!reflect.DeepEqual(c.GrantTypes, []string{"client_credentials"}) || c.ClientSecret == "" {
			t.Fatalf("clients create --admin = %+v", c)
		}
		get := func(id string) clientJSON {
			var got clientJSON
			if err := json.Unmarshal([]byte(env.cli(t, "clients", "get", id)), &got); err != nil {
				t.Fatal(err)
			}
			return got
		}
		if got := get(c.ClientID); !got.Admin || !reflect.DeepEqual(got.AdminPools, []string{"customers", "staff"}) {
			t.Fatalf("clients get = %+v", got)
		}
		env.cli(t, "clients", "update", c.ClientID, "--admin-pools", "staff")
		if got := get(c.ClientID); !reflect.DeepEqual(got.AdminPools, []string{"staff"}) {
			t.Errorf("after --admin-pools staff: %+v", got)
		}
		env.cli(t, "clients", "update", c.ClientID, "--admin-pools", "-")
		if got := get(c.ClientID); !got.Admin || len(got.AdminPools) != 0 || got.AdminPools == nil {
			t.Errorf("after --admin-pools -: %+v (want every pool, [])", got)
		}
		env.cli(t, "clients", "update", c.ClientID, "--admin=false")
		if got := get(c.ClientID); got.Admin || got.Scope != "" {
			t.Errorf("after --admin=false: %+v", got)
		}
		env.cli(t, "clients", "update", "--id", c.ClientID, "--admin")
		if got := get(c.ClientID); !got.Admin || got.Scope != "latchkey.admin" {
			t.Errorf("after --admin: %+v", got)
		}
		var listed []clientJSON
		if err := json.Unmarshal([]byte(env.cli(t, "clients", "list", "--json")), &listed); err != nil || len(listed) != 1 || !listed[0].Admin {
			t.Errorf("clients list --json = %+v, %v", listed, err)
		}

		spa := env.createClient(t, "--name", "spa", "--public", "--redirect-uris", spaCallback)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"clients", "create", "--name", "x", "--scopes", "openid latchkey.admin"}, "only for admin clients"},
			{[]string{"clients", "create", "--name", "x", "--admin", "--public", "--redirect-uris", spaCallback}, "cannot be public"},
			{[]string{"clients", "create", "--name", "x", "--admin", "--first-party"}, "cannot be a first-party app"},
			{[]string{"clients", "create", "--name", "x", "--admin", "--grant-types", "client_credentials,refresh_token"}, "only the client_credentials grant"},
			{[]string{"clients", "create", "--name", "x", "--admin-pools", "staff"}, "only for admin clients"},
			{[]string{"clients", "create", "--name", "x", "--admin", "--admin-pools", "nowhere"}, `unknown pool "nowhere"`},
			{[]string{"clients", "create", "--name", "x", "--admin", "--admin-pools", "staff,staff"}, "listed twice"},
			{[]string{"clients", "update", spa.ClientID, "--admin"}, "cannot be public"},
			{[]string{"clients", "update", spa.ClientID, "--admin-pools", "staff"}, "only for admin clients"},
			{[]string{"clients", "update", c.ClientID, "--admin-pools", "nowhere"}, `unknown pool "nowhere"`},
			{[]string{"clients", "update", "no-such-client", "--admin"}, "no client"},
			{[]string{"clients", "update", c.ClientID, "--admin=maybe"}, ""},
		} {
			_, errOut, code := env.cliCode(t, "", tc.args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("latchkey %s: exit %d, stderr %q; want a failure saying %q", strings.Join(tc.args, " "), code, errOut, tc.want)
			}
		}
		if got := get(c.ClientID); !got.Admin || len(got.AdminPools) != 0 {
			t.Errorf("a refused update changed the client: %+v", got)
		}
		if out := env.cli(t, "clients", "list", "--json"); strings.Count(out, `"client_id"`) != 2 {
			t.Errorf("a refused create left a client behind:\n%s", out)
		}
	})
}

// Only clients introspect (RFC 7662 §2.1): a user's access token is not a credential, wherever it is sent.
func TestIntrospectionCallersAreClients(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		rs := env.createClient(t, "--name", "resource-server")
		signup := func(email string) string {
			code, _, b := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": clientID, "email": email, "password": "violet-tractor-47"}, nil)
			if code != 201 {
				t.Fatalf("signup: %d %v", code, b)
			}
			return b["access_token"].(string)
		}
		mallory, victim := signup("mallory@example.com"), signup("victim@example.com")
		introspect := srv.URL + "/oauth2/introspect"
		send := func(target string, form url.Values, hdr map[string]string) (int, http.Header, map[string]any) {
			req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			return do(t, req)
		}
		for name, tc := range map[string]struct {
			target string
			form   url.Values
			hdr    map[string]string
		}{
			"Authorization: Bearer":  {introspect, url.Values{"token": {victim}}, bearerHeader(mallory)},
			"access_token in body":   {introspect, url.Values{"token": {victim}, "access_token": {mallory}}, nil},
			"access_token in query":  {introspect + "?access_token=" + url.QueryEscape(mallory), url.Values{"token": {victim}}, nil},
			"a client's own token":   {introspect, url.Values{"token": {victim}}, bearerHeader(ccToken(t, srv, rs))},
			"bearer and token alike": {introspect, url.Values{"token": {mallory}}, bearerHeader(mallory)},
		} {
			code, hdr, body := send(tc.target, tc.form, tc.hdr)
			if code != http.StatusUnauthorized || body["error"] != "invalid_client" || body["active"] != nil ||
				!strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("%s: %d %v %q, want 401 invalid_client", name, code, body, hdr.Get("WWW-Authenticate"))
			}
		}
		// Clients authenticate with client_secret_basic or client_secret_post, not both at once.
		if _, _, in := postForm(t, introspect, url.Values{"token": {victim}}, rs.ClientID, rs.ClientSecret); in["active"] != true {
			t.Errorf("client_secret_basic: %v", in)
		}
		if code, _, in := postForm(t, introspect, url.Values{"token": {victim}, "client_id": {rs.ClientID}, "client_secret": {rs.ClientSecret}}, "", ""); code != 200 || in["active"] != true {
			t.Errorf("client_secret_post: %d %v", code, in)
		}
		if code, _, in := postForm(t, introspect, url.Values{"token": {victim}, "client_id": {rs.ClientID}, "client_secret": {"wrong-wrong-wrong-wrong-wrong-wrong"}}, "", ""); code != 401 || in["active"] == true {
			t.Errorf("client_secret_post with a wrong secret: %d %v", code, in)
		}
		if code, _, in := postForm(t, introspect, url.Values{"token": {victim}, "client_secret": {rs.ClientSecret}}, rs.ClientID, rs.ClientSecret); code != 400 || in["error"] != "invalid_request" {
			t.Errorf("Basic and client_secret together: %d %v", code, in)
		}
		code, _, disco := get(t, srv.URL+"/.well-known/openid-configuration")
		if m := mustJSON(t, disco); code != 200 || !reflect.DeepEqual(m["introspection_endpoint_auth_methods_supported"], []any{"client_secret_basic", "client_secret_post"}) {
			t.Errorf("discovery introspection auth methods = %v", m["introspection_endpoint_auth_methods_supported"])
		}
	})
}

func ccToken(t *testing.T, srv *server, c createdClient) string {
	t.Helper()
	code, _, b := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.ClientSecret)
	if code != 200 {
		t.Fatalf("client_credentials: %d %v", code, b)
	}
	return b["access_token"].(string)
}

// RFC 7009 §2.1: a client naming another client's token is refused and told so; the token stays active.
func TestRevocationOfAnotherClientsToken(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		owner := env.createClient(t, "--name", "owner", "--scopes", "read")
		other := env.createClient(t, "--name", "other", "--scopes", "read")
		rs := env.createClient(t, "--name", "resource-server")
		_, _, signup := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		userAT, userRT := signup["access_token"].(string), signup["refresh_token"].(string)
		ownersAT := ccToken(t, srv, owner)
		revoke, introspect := srv.URL+"/oauth2/revoke", srv.URL+"/oauth2/introspect"
		active := func(tok string) bool {
			_, _, in := postForm(t, introspect, url.Values{"token": {tok}}, rs.ClientID, rs.ClientSecret)
			return in["active"] == true
		}
		for name, form := range map[string]url.Values{
			"a client_credentials access token": {"token": {ownersAT}},
			"a user's access token":             {"token": {userAT}, "token_type_hint": {"access_token"}},
			"a user's refresh token":            {"token": {userRT}, "token_type_hint": {"refresh_token"}},
		} {
			code, _, body := postForm(t, revoke, form, other.ClientID, other.ClientSecret)
			if code != http.StatusBadRequest || body["error"] != "unauthorized_client" {
				t.Errorf("%s revoked by another client: %d %v, want 400 unauthorized_client", name, code, body)
			}
		}
		if !active(ownersAT) || !active(userAT) || !active(userRT) {
			t.Fatal("a refused revocation revoked the token")
		}
		if code, _, body := postForm(t, revoke, url.Values{"token": {"lk_at_unknown.token"}}, other.ClientID, other.ClientSecret); code != 200 {
			t.Errorf("unknown token: %d %v, want 200", code, body)
		}
		if code, _, _ := postForm(t, revoke, url.Values{"token": {ownersAT}}, owner.ClientID, owner.ClientSecret); code != 200 || active(ownersAT) {
			t.Errorf("the owner's own revocation: %d, still active %v", code, active(ownersAT))
		}
	})
}

// When the token store fails, the token API, the admin API and revocation say it is our fault (5xx) instead of
// calling a good token invalid (which would sign the app's user out) or claiming a revocation that did not happen;
// and the cause is logged at ERROR. A table that is gone is a broken store, not an outage, so 500 is the honest
// answer here (revocation, where fosite calls every store error temporary, says 503); a database that cannot be
// reached answers 503 with Retry-After everywhere (TestFaultsNeverBecomeWrongAnswers).
func TestTokenStoreFailureIsAServerError(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		app := env.createClient(t, "--name", "app", "--first-party", "--pool", "customers", "--scopes", "openid profile email roles offline_access")
		admin := env.createClient(t, "--name", "ops", "--admin")
		var logs lockedBuffer
		srv := env.startServerLoggingTo(t, &logs)
		_, _, signup := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": app.ClientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		userAT := signup["access_token"].(string)
		code, _, tb := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"latchkey.admin"}}, admin.ClientID, admin.ClientSecret)
		if code != 200 {
			t.Fatalf("admin token: %d %v", code, tb)
		}
		adminAT := tb["access_token"].(string)

		execSQL(t, env, "ALTER TABLE oauth2_access RENAME TO oauth2_access_away")
		for name, call := range map[string]func() (int, http.Header, map[string]any){
			"/me": func() (int, http.Header, map[string]any) {
				return apiCall(t, "GET", srv.URL+"/api/v1/auth/me", nil, bearerHeader(userAT))
			},
			"admin GET user": func() (int, http.Header, map[string]any) {
				return apiCall(t, "GET", srv.URL+"/api/v1/admin/users", nil, bearerHeader(adminAT))
			},
			"revoke": func() (int, http.Header, map[string]any) {
				return postForm(t, srv.URL+"/oauth2/revoke", url.Values{"token": {adminAT}}, admin.ClientID, admin.ClientSecret)
			},
		} {
			code, hdr, body := call()
			ok := (code == http.StatusInternalServerError && body["error"] == "server_error") ||
				(code == http.StatusServiceUnavailable && body["error"] == "temporarily_unavailable" && hdr.Get("Retry-After") != "")
			if !ok {
				t.Errorf("%s while the token table is gone: %d %v Retry-After=%q, want 500 server_error or 503 with Retry-After", name, code, body, hdr.Get("Retry-After"))
			}
		}
		execSQL(t, env, "ALTER TABLE oauth2_access_away RENAME TO oauth2_access")
		if code, _, body := apiCall(t, "GET", srv.URL+"/api/v1/auth/me", nil, bearerHeader(userAT)); code != 200 {
			t.Fatalf("/me once the store is back: %d %v", code, body)
		}
		if code, _, body := apiCall(t, "GET", srv.URL+"/api/v1/admin/users", nil, bearerHeader(adminAT)); code != 200 {
			t.Fatalf("the admin token after the failed revocation: %d %v", code, body)
		}
		out := logs.String()
		for _, want := range []string{"api: look up access token", "admin api: look up access token"} {
			if !strings.Contains(out, want) || !strings.Contains(out, `"level":"ERROR"`) {
				t.Errorf("no ERROR log %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, userAT) || strings.Contains(out, adminAT) {
			t.Errorf("a token reached the log:\n%s", out)
		}
	})
}
