package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The admin API round trip per resource, through the real server on both databases; every answer is checked
// against the served OpenAPI document (adminAPI.call).

func TestAdminAPIClientsRoundTrip(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		ops := env.createClient(t, "--name", "ops", "--admin")
		srv := env.startServer(t)
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))

		// Create: defaults as the CLI's, the secret answered once and working at the token endpoint.
		code, hdr, c := api.call(t, "POST", "/clients", nil, "", map[string]any{"client_id": "billing", "scope": "invoices.read", "pool": "customers"}, nil)
		secret, _ := c["client_secret"].(string)
		if code != 201 || secret == "" || c["client_name"] != "billing" || !slices.Equal(toStrings(c["grant_types"]), []string{"client_credentials"}) || hdr.Get("Location") != adminPrefix+"/clients/billing" {
			t.Fatalf("create client: %d %v %v", code, c, hdr)
		}
		if code, _, b := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"invoices.read"}}, "billing", secret); code != 200 {
			t.Fatalf("the new client's secret: %d %v", code, b)
		}
		if code, _, b := api.call(t, "POST", "/clients", nil, "", map[string]any{"client_id": "billing"}, nil); code != 409 || b["error"] != "conflict" {
			t.Errorf("duplicate id: %d %v", code, b)
		}
		// The client's own rules (models.Client.Validate), the field named.
		if code, _, b := api.call(t, "POST", "/clients", nil, "", map[string]any{"client_name": "web", "public": true, "redirect_uris": []string{"https://app.example.com/cb#fragment"}}, nil); code != 400 || b["field"] != "redirect_uris" {
			t.Errorf("bad redirect URI: %d %v", code, b)
		}
		if code, _, b := api.call(t, "POST", "/clients", nil, "", map[string]any{"client_name": "x", "colour": "red"}, nil); code != 400 {
			t.Errorf("unknown field: %d %v", code, b)
		}

		createdTag := hdr.Get("ETag")
		// Get: never the secret; a strong ETag, the one create answered.
		code, hdr, got := api.call(t, "GET", "/clients/{id}", []string{"billing"}, "", nil, nil)
		etag := hdr.Get("ETag")
		if etag != createdTag {
			t.Errorf("GET's ETag %s differs from create's %s", etag, createdTag)
		}
		if _, leaked := got["client_secret"]; code != 200 || leaked || !strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") {
			t.Fatalf("get client: %d %v etag %q", code, got, etag)
		}
		// List and filter.
		code, _, l := api.call(t, "GET", "/clients", nil, "?pool=customers", nil, nil)
		if code != 200 || !slices.Equal(ids(l["clients"], "client_id"), []string{"billing"}) || l["next_cursor"] != nil {
			t.Errorf("list clients of customers: %d %v", code, l)
		}
		if _, _, l := api.call(t, "GET", "/clients", nil, "?admin=true", nil, nil); !slices.Equal(ids(l["clients"], "client_id"), []string{ops.ClientID}) {
			t.Errorf("list admin clients: %v", l)
		}

		// Patch with the ETag: merged; with a stale one: 412 and nothing changed.
		code, hdr, p := api.call(t, "PATCH", "/clients/{id}", []string{"billing"}, "", map[string]any{"client_name": "Billing backend", "access_token_format": "jwt"}, map[string]string{"If-Match": etag})
		if code != 200 || p["client_name"] != "Billing backend" || p["scope"] != "invoices.read" || hdr.Get("ETag") == etag {
			t.Fatalf("patch client: %d %v", code, p)
		}
		newTag := hdr.Get("ETag")
		if code, _, b := api.call(t, "PATCH", "/clients/{id}", []string{"billing"}, "", map[string]any{"client_name": "stale"}, map[string]string{"If-Match": etag}); code != 412 || b["error"] != "precondition_failed" {
			t.Errorf("stale If-Match: %d %v", code, b)
		}
		if _, hdr, g := api.call(t, "GET", "/clients/{id}", []string{"billing"}, "", nil, nil); g["client_name"] != "Billing backend" || hdr.Get("ETag") != newTag {
			t.Errorf("after the refused patch: %v %s (want ETag %s)", g, hdr.Get("ETag"), newTag)
		}
		// Moving to client_secret_jwt needs the secret itself: a new one, shown this once.
		code, _, p = api.call(t, "PATCH", "/clients/{id}", []string{"billing"}, "", map[string]any{"token_endpoint_auth_method": "client_secret_jwt"}, nil)
		if jwtSecret, _ := p["client_secret"].(string); code != 200 || len(jwtSecret) < 64 || p["token_endpoint_auth_method"] != "client_secret_jwt" {
			t.Errorf("move to client_secret_jwt: %d %v", code, p)
		}
		api.call(t, "PATCH", "/clients/{id}", []string{"billing"}, "", map[string]any{"token_endpoint_auth_method": "client_secret_basic"}, nil)

		// Rotate: the old secret stops working, the new one works.
		code, _, r := api.call(t, "POST", "/clients/{id}/secret", []string{"billing"}, "", nil, nil)
		rotated, _ := r["client_secret"].(string)
		if code != 200 || rotated == "" || rotated == secret {
			t.Fatalf("rotate secret: %d %v", code, r)
		}
		if code, _, _ := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "billing", rotated); code != 200 {
			t.Errorf("rotated secret refused: %d", code)
		}
		if code, _, _ := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "billing", secret); code != 401 {
			t.Errorf("old secret after rotation: %d", code)
		}

		// Delete: a stale ETag is 412, the current one deletes.
		_, hdr, _ = api.call(t, "GET", "/clients/{id}", []string{"billing"}, "", nil, nil)
		if code, _, _ := api.call(t, "DELETE", "/clients/{id}", []string{"billing"}, "", nil, map[string]string{"If-Match": etag}); code != 412 {
			t.Errorf("delete with a stale ETag: %d", code)
		}
		if code, _, _ := api.call(t, "DELETE", "/clients/{id}", []string{"billing"}, "", nil, map[string]string{"If-Match": hdr.Get("ETag")}); code != 204 {
			t.Errorf("delete: %d", code)
		}
		if code, _, _ := api.call(t, "GET", "/clients/{id}", []string{"billing"}, "", nil, nil); code != 404 {
			t.Errorf("deleted client: %d", code)
		}
	})
}

func toStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func TestAdminAPIUsersRoundTrip(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, appID := noCodeFixture(t, env)
		ops := env.createClient(t, "--name", "ops", "--admin")
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))

		code, hdr, u := api.call(t, "POST", "/users", nil, "", map[string]any{"email": "dee@example.com", "password": "violet-tractor-47", "pool": "customers", "roles": []string{"customer"}, "extras": map[string]any{"plan": "pro"}}, nil)
		if code != 201 || u["email"] != "dee@example.com" || u["disabled"] != false || hdr.Get("ETag") == "" {
			t.Fatalf("create user: %d %v", code, u)
		}
		id := u["id"].(string)
		if _, h, _ := api.call(t, "GET", "/users/{id}", []string{id}, "", nil, nil); h.Get("ETag") != hdr.Get("ETag") {
			t.Errorf("GET's ETag %s differs from create's %s", h.Get("ETag"), hdr.Get("ETag"))
		}
		if code, _, b := api.call(t, "POST", "/users", nil, "", map[string]any{"email": "DEE@example.com", "password": "another-password-1", "pool": "customers"}, nil); code != 409 || b["error"] != "email_taken" {
			t.Errorf("duplicate email: %d %v", code, b)
		}
		if code, _, b := api.call(t, "POST", "/users", nil, "", map[string]any{"email": "not-an-address", "password": "violet-tractor-47", "pool": "customers"}, nil); code != 400 || b["field"] != "email" {
			t.Errorf("bad email: %d %v", code, b)
		}
		login := func(pw string) int {
			code, _, _ := apiCall(t, "POST", srv.URL+"/api/v1/auth/login", map[string]any{"client_id": appID, "email": "dee@example.com", "password": pw}, nil)
			return code
		}
		if login("violet-tractor-47") != 200 {
			t.Fatal("the created user cannot sign in")
		}
		if code, _, l := api.call(t, "GET", "/users", nil, "?email=dee@example.com&pool=customers&disabled=false", nil, nil); code != 200 || !slices.Equal(ids(l["users"], "id"), []string{id}) {
			t.Errorf("filter by email: %d %v", code, l)
		}
		if _, _, l := api.call(t, "GET", "/users", nil, "?pool=customers&disabled=true", nil, nil); len(ids(l["users"], "id")) != 0 {
			t.Errorf("filter disabled: %v", l)
		}

		// Sessions: minted and signed-in ones listed; all revoked at once.
		api.call(t, "POST", "/users/{id}/tokens", []string{id}, "", map[string]any{"client_id": appID}, nil)
		if code, _, s := api.call(t, "GET", "/users/{id}/sessions", []string{id}, "", nil, nil); code != 200 || len(s["sessions"].([]any)) != 2 {
			t.Errorf("sessions: %d %v", code, s)
		}
		if code, _, f := api.call(t, "GET", "/users/{id}/factors", []string{id}, "", nil, nil); code != 200 || len(f["factors"].([]any)) != 0 {
			t.Errorf("factors: %d %v", code, f)
		}
		if code, _, e := api.call(t, "DELETE", "/users/{id}/sessions", []string{id}, "", nil, nil); code != 200 || e["sessions_ended"] != float64(2) {
			t.Errorf("end all sessions: %d %v", code, e)
		}
		if _, _, s := api.call(t, "GET", "/users/{id}/sessions", []string{id}, "", nil, nil); len(s["sessions"].([]any)) != 0 {
			t.Errorf("sessions after revoking all: %v", s)
		}

		// Set the password: the old one stops working.
		if code, _, b := api.call(t, "PUT", "/users/{id}/password", []string{id}, "", map[string]any{"password": ""}, nil); code != 400 || b["field"] != "password" {
			t.Errorf("empty password: %d %v", code, b)
		}
		if code, _, _ := api.call(t, "PUT", "/users/{id}/password", []string{id}, "", map[string]any{"password": "new-password-for-dee"}, nil); code != 200 {
			t.Errorf("set password: %d", code)
		}
		if login("violet-tractor-47") == 200 || login("new-password-for-dee") != 200 {
			t.Error("the password did not change")
		}

		// ETag on get; If-Match on patch and delete.
		_, hdr, _ = api.call(t, "GET", "/users/{id}", []string{id}, "", nil, nil)
		tag := hdr.Get("ETag")
		if code, _, p := api.call(t, "PATCH", "/users/{id}", []string{id}, "", map[string]any{"name": "Dee"}, map[string]string{"If-Match": tag}); code != 200 || p["name"] != "Dee" {
			t.Errorf("patch with If-Match: %d %v", code, p)
		}
		if code, _, _ := api.call(t, "PATCH", "/users/{id}", []string{id}, "", map[string]any{"name": "Stale"}, map[string]string{"If-Match": tag}); code != 412 {
			t.Errorf("patch with a stale ETag: %d", code)
		}
		if code, _, _ := api.call(t, "DELETE", "/users/{id}", []string{id}, "", nil, map[string]string{"If-Match": tag}); code != 412 {
			t.Errorf("delete with a stale ETag: %d", code)
		}
		if code, _, _ := api.call(t, "DELETE", "/users/{id}", []string{id}, "", nil, nil); code != 204 {
			t.Errorf("delete: %d", code)
		}
		if code, _, _ := api.call(t, "GET", "/users/{id}", []string{id}, "", nil, nil); code != 404 {
			t.Errorf("deleted user: %d", code)
		}
	})
}

func TestAdminAPIPoolsAndKeys(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		ops := env.createClient(t, "--name", "ops", "--admin")
		xano := env.createClient(t, "--name", "xano", "--admin", "--admin-pools", "customers")
		srv := env.startServer(t)
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))
		limited := api.as(adminToken(t, srv.URL, xano))

		code, hdr, p := api.call(t, "POST", "/pools", nil, "", map[string]any{"name": "staff", "default_roles": []string{"employee"}, "mfa": "required"}, nil)
		if code != 201 || p["mfa"] != "required" || p["signup_enabled"] != false {
			t.Fatalf("create pool: %d %v", code, p)
		}
		if code, _, b := api.call(t, "POST", "/pools", nil, "", map[string]any{"name": "Bad Name"}, nil); code != 400 {
			t.Errorf("bad pool name: %d %v", code, b)
		}
		if code, _, b := api.call(t, "POST", "/pools", nil, "", map[string]any{"name": "staff"}, nil); code != 409 {
			t.Errorf("duplicate pool: %d %v", code, b)
		}
		createdTag := hdr.Get("ETag")
		_, hdr, _ = api.call(t, "GET", "/pools/{name}", []string{"staff"}, "", nil, nil)
		tag := hdr.Get("ETag")
		if tag != createdTag {
			t.Errorf("GET's ETag %s differs from create's %s", tag, createdTag)
		}
		if code, _, p := api.call(t, "PATCH", "/pools/{name}", []string{"staff"}, "", map[string]any{"signup_enabled": true}, map[string]string{"If-Match": tag}); code != 200 || p["signup_enabled"] != true || p["mfa"] != "required" {
			t.Errorf("patch pool: %d %v", code, p)
		}
		if code, _, _ := api.call(t, "PATCH", "/pools/{name}", []string{"staff"}, "", map[string]any{"mfa": "off"}, map[string]string{"If-Match": tag}); code != 412 {
			t.Errorf("patch pool with a stale ETag: %d", code)
		}
		if code, _, b := api.call(t, "PATCH", "/pools/{name}", []string{"staff"}, "", map[string]any{"mfa": "sometimes"}, nil); code != 400 || b["field"] != "mfa" {
			t.Errorf("bad mfa policy: %d %v", code, b)
		}
		if _, _, l := api.call(t, "GET", "/pools", nil, "", nil, nil); len(ids(l["pools"], "name")) != 3 {
			t.Errorf("pools: %v", l)
		}

		// A pool-limited admin: its pool only; no new pools, no key rotation (keys are every pool's).
		if _, _, l := limited.call(t, "GET", "/pools", nil, "", nil, nil); !slices.Equal(ids(l["pools"], "name"), []string{"customers"}) {
			t.Errorf("limited admin lists pools: %v", l)
		}
		if code, _, _ := limited.call(t, "GET", "/pools/{name}", []string{"staff"}, "", nil, nil); code != 404 {
			t.Errorf("limited admin reads another pool: %d", code)
		}
		if code, _, _ := limited.call(t, "PATCH", "/pools/{name}", []string{"staff"}, "", map[string]any{"mfa": "off"}, nil); code != 404 {
			t.Errorf("limited admin patches another pool: %d", code)
		}
		if code, _, _ := limited.call(t, "POST", "/pools", nil, "", map[string]any{"name": "mine"}, nil); code != 403 {
			t.Errorf("limited admin creates a pool: %d", code)
		}
		if code, _, _ := limited.call(t, "POST", "/keys/rotation", nil, "", nil, nil); code != 403 {
			t.Errorf("limited admin rotates keys: %d", code)
		}

		// Keys: a scheduled rotation publishes the new keys first; they sign only from activates_at.
		_, _, before := api.call(t, "GET", "/keys", nil, "", nil, nil)
		code, _, s := api.call(t, "POST", "/keys/rotation", nil, "", nil, nil)
		scheduled := s["scheduled"].([]any)
		if code != 202 || len(scheduled) == 0 {
			t.Fatalf("rotate: %d %v", code, s)
		}
		_, _, jwks := get(t, srv.URL+"/.well-known/jwks.json")
		for _, k := range scheduled {
			k := k.(map[string]any)
			if k["state"] != "next" {
				t.Errorf("a scheduled key is %v, want next (publish before sign)", k["state"])
			}
			if !strings.Contains(string(jwks), k["kid"].(string)) {
				t.Errorf("scheduled key %v is not published", k["kid"])
			}
		}
		if _, _, after := api.call(t, "GET", "/keys", nil, "", nil, nil); len(after["keys"].([]any)) != len(before["keys"].([]any))+len(scheduled) {
			t.Errorf("keys after rotation: %v", after)
		}
	})
}

// A pool-limited admin client manages the clients and users of its pools and nothing else: others are not found
// (404), and it cannot make admin clients or anything outside its pools (403).
func TestAdminAPIPoolLimitedAdmin(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		env.cli(t, "pools", "create", "staff")
		env.createClient(t, "--id", "shop", "--pool", "customers")
		env.createClient(t, "--id", "hr", "--pool", "staff")
		env.createClient(t, "--id", "root-admin", "--pool", "customers", "--admin")
		xano := env.createClient(t, "--id", "xano", "--pool", "customers", "--admin", "--admin-pools", "customers")
		staffUser := strings.TrimSpace(env.cli(t, "users", "create", "--pool", "staff", "--email", "sam@example.com", "--password", "staff-password-123", "--json"))
		srv := env.startServer(t)
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, xano))

		if _, _, l := api.call(t, "GET", "/clients", nil, "", nil, nil); !slices.Equal(ids(l["clients"], "client_id"), []string{"shop"}) {
			t.Errorf("limited admin lists clients: %v", l)
		}
		for _, id := range []string{"hr", "root-admin", "xano"} {
			if code, _, _ := api.call(t, "GET", "/clients/{id}", []string{id}, "", nil, nil); code != 404 {
				t.Errorf("limited admin reads client %s: %d", id, code)
			}
			if code, _, _ := api.call(t, "POST", "/clients/{id}/secret", []string{id}, "", nil, nil); code != 404 {
				t.Errorf("limited admin rotates the secret of %s: %d", id, code)
			}
			if code, _, _ := api.call(t, "DELETE", "/clients/{id}", []string{id}, "", nil, nil); code != 404 {
				t.Errorf("limited admin deletes %s: %d", id, code)
			}
		}
		for name, body := range map[string]map[string]any{
			"an admin client":              {"client_id": "sneaky", "pool": "customers", "admin": true},
			"a client of another pool":     {"client_id": "sneaky", "pool": "staff"},
			"a client of the default pool": {"client_id": "sneaky"},
		} {
			if code, _, b := api.call(t, "POST", "/clients", nil, "", body, nil); code != 403 {
				t.Errorf("limited admin creates %s: %d %v", name, code, b)
			}
		}
		if code, _, _ := api.call(t, "PATCH", "/clients/{id}", []string{"shop"}, "", map[string]any{"admin": true}, nil); code != 403 {
			t.Errorf("limited admin makes its client admin: %d", code)
		}
		if code, _, _ := api.call(t, "PATCH", "/clients/{id}", []string{"shop"}, "", map[string]any{"pool": "staff"}, nil); code != 403 {
			t.Errorf("limited admin moves its client to another pool: %d", code)
		}
		if code, _, c := api.call(t, "POST", "/clients", nil, "", map[string]any{"client_id": "shop-2", "pool": "customers"}, nil); code != 201 || c["client_secret"] == "" {
			t.Errorf("limited admin creates a client of its pool: %d %v", code, c)
		}

		var sam struct{ ID string }
		if err := json.Unmarshal([]byte(staffUser), &sam); err != nil {
			t.Fatal(err)
		}
		for _, req := range []struct{ method, tpl string }{
			{"GET", "/users/{id}"}, {"DELETE", "/users/{id}"}, {"GET", "/users/{id}/factors"}, {"DELETE", "/users/{id}/sessions"},
		} {
			if code, _, _ := api.call(t, req.method, req.tpl, []string{sam.ID}, "", nil, nil); code != 404 {
				t.Errorf("limited admin %s %s of a staff user: %d", req.method, req.tpl, code)
			}
		}
		if code, _, _ := api.call(t, "PUT", "/users/{id}/password", []string{sam.ID}, "", map[string]any{"password": "taken-over-123"}, nil); code != 404 {
			t.Errorf("limited admin sets a staff user's password: %d", code)
		}
		if code, _, _ := api.call(t, "POST", "/users", nil, "", map[string]any{"email": "x@example.com", "password": "violet-tractor-47", "pool": "staff"}, nil); code != 403 {
			t.Errorf("limited admin creates a staff user: %d", code)
		}
	})
}

// Of concurrent writes carrying the same ETag exactly one wins; the others get 412 (the check is the update's
// own condition, not a read before it).
func TestAdminAPIConcurrentIfMatchOneWins(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		ops := env.createClient(t, "--name", "ops", "--admin")
		env.createClient(t, "--id", "shop", "--pool", "customers")
		srv := env.startServer(t)
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))
		_, _, u := api.call(t, "POST", "/users", nil, "", map[string]any{"email": "dee@example.com", "password": "violet-tractor-47", "pool": "customers"}, nil)
		for _, res := range []struct{ tpl, id, field string }{
			{"/users/{id}", u["id"].(string), "name"},
			{"/clients/{id}", "shop", "client_name"},
			{"/pools/{id}", "customers", ""},
		} {
			tpl := res.tpl
			body := func(i int) map[string]any { return map[string]any{res.field: fmt.Sprintf("writer %d", i)} }
			if res.field == "" {
				tpl = "/pools/{name}"
				body = func(i int) map[string]any { return map[string]any{"default_roles": []string{fmt.Sprintf("r%d", i)}} }
			}
			_, hdr, _ := api.call(t, "GET", tpl, []string{res.id}, "", nil, nil)
			const writers = 8
			codes := make([]int, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					codes[i], _, _ = api.call(t, "PATCH", tpl, []string{res.id}, "", body(i), map[string]string{"If-Match": hdr.Get("ETag")})
				}()
			}
			wg.Wait()
			won, refused := 0, 0
			for _, c := range codes {
				switch c {
				case 200:
					won++
				case 412:
					refused++
				}
			}
			if won != 1 || refused != writers-1 {
				t.Errorf("%s: %d writers won and %d got 412 (codes %v), want exactly one winner", tpl, won, refused, codes)
			}
		}
	})
}

// One owner for a client's defaults and rules: the same request through the CLI and through the admin API makes
// the same client.
func TestAdminAPIClientsMatchTheCLI(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		ops := env.createClient(t, "--name", "ops", "--admin")
		cases := []struct {
			args []string
			body map[string]any
		}{
			{[]string{"--public", "--redirect-uris", "https://spa.example/cb", "--scopes", "openid profile"},
				map[string]any{"public": true, "redirect_uris": []string{"https://spa.example/cb"}, "scope": "openid profile"}},
			{[]string{"--first-party", "--pool", "customers", "--scopes", "openid offline_access"},
				map[string]any{"first_party": true, "pool": "customers", "scope": "openid offline_access"}},
			{[]string{"--admin", "--admin-pools", "customers", "--scopes", "read"},
				map[string]any{"admin": true, "admin_pools": []string{"customers"}, "scope": "read"}},
		}
		for i, c := range cases {
			env.createClient(t, append([]string{"--id", fmt.Sprintf("cli-%d", i)}, c.args...)...)
		}
		srv := env.startServer(t)
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))
		for i, c := range cases {
			c.body["client_id"] = fmt.Sprintf("api-%d", i)
			if code, _, b := api.call(t, "POST", "/clients", nil, "", c.body, nil); code != 201 {
				t.Fatalf("create %v: %d %v", c.body, code, b)
			}
			_, _, viaCLI := api.call(t, "GET", "/clients/{id}", []string{fmt.Sprintf("cli-%d", i)}, "", nil, nil)
			_, _, viaAPI := api.call(t, "GET", "/clients/{id}", []string{fmt.Sprintf("api-%d", i)}, "", nil, nil)
			for _, m := range []map[string]any{viaCLI, viaAPI} {
				for _, k := range []string{"client_id", "client_name", "created_at", "updated_at"} {
					delete(m, k)
				}
			}
			if a, b := fmt.Sprint(viaCLI), fmt.Sprint(viaAPI); a != b {
				t.Errorf("case %d: the CLI made\n%s\nthe API made\n%s", i, a, b)
			}
		}
	})
}
