package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

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

func TestAdminAPISetsExtrasAndRoles(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		admin := env.createClient(t, "--name", "xano", "--admin")
		plain := env.createClient(t, "--name", "plain", "--scopes", "read")
		_, _, signup := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": clientID, "email": "dee@example.com", "password": "violet-tractor-47"}, nil)
		userID := signup["user"].(map[string]any)["id"].(string)
		userAT := signup["access_token"].(string)
		token := func(c createdClient, scope string) string {
			_, _, b := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, c.ClientID, c.ClientSecret)
			return b["access_token"].(string)
		}
		adminAT := token(admin, "latchkey.admin")
		users := srv.URL + "/api/v1/admin/users/"

		if code, _, _ := apiCall(t, "PATCH", users+userID, map[string]any{"roles": []string{"admin"}}, bearerHeader(token(plain, "read"))); code != 403 {
			t.Fatalf("a token without latchkey.admin: %d", code)
		}
		if code, _, _ := apiCall(t, "PATCH", users+userID, map[string]any{"roles": []string{"admin"}}, bearerHeader(userAT)); code != 403 {
			t.Fatalf("a user's own token: %d", code)
		}
		code, _, u := apiCall(t, "PATCH", users+userID, map[string]any{"roles": []string{"customer", "vip"}, "extras": map[string]any{"plan": "pro", "seats": 5}}, bearerHeader(adminAT))
		if code != 200 || u["extras"].(map[string]any)["plan"] != "pro" {
			t.Fatalf("admin patch: %d %v", code, u)
		}
		for _, bad := range []map[string]any{
			{"extras": map[string]any{"sub": "someone-else"}},
			{"extras": map[string]any{"blob": strings.Repeat("x", 5000)}},
			{"name": strings.Repeat("n", 201)},
		} {
			if code, _, b := apiCall(t, "PATCH", users+userID, bad, bearerHeader(adminAT)); code != 400 {
				t.Errorf("patch %v: %d %v", bad, code, b)
			}
		}
		if code, _, _ := apiCall(t, "PATCH", users+"usr_nobody", map[string]any{"name": "x"}, bearerHeader(adminAT)); code != 404 {
			t.Errorf("unknown user: %d", code)
		}
		// The user's /me and new JWT claims show the change; the extras never shadow registered claims.
		_, _, me := apiCall(t, "GET", srv.URL+"/api/v1/auth/me", nil, bearerHeader(userAT))
		if me["extras"].(map[string]any)["seats"] != float64(5) || len(me["roles"].([]any)) != 2 {
			t.Fatalf("me after admin patch: %v", me)
		}
		_, _, list := apiCall(t, "GET", srv.URL+"/api/v1/admin/users?pool=customers&email=DEE@example.com", nil, bearerHeader(adminAT))
		if found, _ := list["users"].([]any); len(found) != 1 {
			t.Fatalf("lookup by email: %v", list)
		}
	})
}

// One change, one transaction: an admin PATCH that the store refuses for any field leaves the user entirely as
// it was, whichever fields came first; one it accepts changes every field at once, disabling included.
func TestAdminPatchIsOneChange(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		admin := env.createClient(t, "--name", "xano", "--admin")
		_, _, signup := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": clientID, "email": "dee@example.com", "password": "violet-tractor-47"}, nil)
		userID := signup["user"].(map[string]any)["id"].(string)
		userAT := signup["access_token"].(string)
		_, _, tok := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"latchkey.admin"}}, admin.ClientID, admin.ClientSecret)
		adminAT, _ := tok["access_token"].(string)
		userURL := srv.URL + "/api/v1/admin/users/" + userID
		current := func() map[string]any {
			t.Helper()
			code, _, u := apiCall(t, "GET", userURL, nil, bearerHeader(adminAT))
			if code != http.StatusOK {
				t.Fatalf("admin get user: %d %v", code, u)
			}
			return u
		}
		before := current()

		valid := map[string]any{"extras": map[string]any{"plan": "pro"}, "roles": []string{"customer", "vip"}, "disabled": true}
		for _, tc := range []struct {
			name string
			bad  map[string]any
		}{
			{"a name with a NUL byte", map[string]any{"name": "Dee\x00"}},
			{"a name over 200 characters", map[string]any{"name": strings.Repeat("n", 201)}},
			{"extras over the size limit", map[string]any{"extras": map[string]any{"blob": strings.Repeat("x", 5000)}}},
			{"extras with an empty key", map[string]any{"extras": map[string]any{"": "v"}}},
			{"extras naming a registered claim", map[string]any{"extras": map[string]any{"sub": "someone-else"}}},
		} {
			patch := map[string]any{}
			for k, v := range valid {
				patch[k] = v
			}
			for k, v := range tc.bad {
				patch[k] = v
			}
			code, _, body := apiCall(t, "PATCH", userURL, patch, bearerHeader(adminAT))
			if code != http.StatusBadRequest || body["error"] != "invalid_request" {
				t.Errorf("%s: %d %v, want 400 invalid_request", tc.name, code, body)
			}
			if after := current(); !reflect.DeepEqual(after, before) {
				t.Errorf("%s: the refused patch changed the user:\n got  %v\n want %v", tc.name, after, before)
			}
		}
		// Not disabled after all (the admin API does not show the flag): the user's token still works.
		if code, _, me := apiCall(t, "GET", srv.URL+"/api/v1/auth/me", nil, bearerHeader(userAT)); code != http.StatusOK {
			t.Fatalf("me after refused patches: %d %v", code, me)
		}

		patch := map[string]any{"name": "Dee Lee"}
		for k, v := range valid {
			patch[k] = v
		}
		code, _, u := apiCall(t, "PATCH", userURL, patch, bearerHeader(adminAT))
		if code != http.StatusOK || u["name"] != "Dee Lee" ||
			!reflect.DeepEqual(u["roles"], []any{"customer", "vip"}) || !reflect.DeepEqual(u["extras"], map[string]any{"plan": "pro"}) {
			t.Fatalf("valid patch: %d %v", code, u)
		}
		if after := current(); !reflect.DeepEqual(after, u) {
			t.Errorf("stored user %v, want the patch's answer %v", after, u)
		}
		// Disabling in the same change ended the user's tokens.
		if code, _, _ := apiCall(t, "GET", srv.URL+"/api/v1/auth/me", nil, bearerHeader(userAT)); code != http.StatusUnauthorized {
			t.Errorf("me after the user was disabled: %d, want 401", code)
		}
	})
}
