package e2e

import (
	"net/url"
	"regexp"
	"testing"
)

// A client that gains admin power gets a new secret, and the old one stops working: whoever knew it (the
// pool-limited admin that made the client, an app's developers) was trusted with what the client could do, not
// with administering users. Through the admin API and the CLI; narrowing a client's power keeps its secret.
func TestClientGainingAdminPowerGetsANewSecret(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		env.cli(t, "pools", "create", "staff")
		ops := env.createClient(t, "--name", "ops", "--admin")
		xano := env.createClient(t, "--name", "xano", "--admin", "--admin-pools", "customers")
		viaCLI := env.createClient(t, "--id", "worker", "--pool", "customers", "--scopes", "jobs")
		srv := env.startServer(t)
		root := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))
		limited := root.as(adminToken(t, srv.URL, xano))

		tokenWith := func(id, secret, scope string) int {
			t.Helper()
			code, _, _ := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, id, secret)
			return code
		}
		patch := func(id string, body map[string]any) string {
			t.Helper()
			code, _, b := root.call(t, "PATCH", "/clients/{id}", []string{id}, "", body, nil)
			if code != 200 {
				t.Fatalf("PATCH %s %v: %d %v", id, body, code, b)
			}
			s, _ := b["client_secret"].(string)
			return s
		}

		// The limited admin makes a client in its pool and so knows its secret.
		code, _, made := limited.call(t, "POST", "/clients", nil, "", map[string]any{"client_id": "shop", "pool": "customers", "scope": "orders"}, nil)
		known, _ := made["client_secret"].(string)
		if code != 201 || known == "" {
			t.Fatalf("limited admin creates a client: %d %v", code, made)
		}
		if s := patch("shop", map[string]any{"client_name": "Shop"}); s != "" {
			t.Errorf("an ordinary change answered a secret")
		}
		if tokenWith("shop", known, "orders") != 200 {
			t.Fatal("the secret does not work before the promotion")
		}
		// Promotion, limited to one pool: a new secret, the old refused.
		promoted := patch("shop", map[string]any{"admin": true, "admin_pools": []string{"customers"}})
		if promoted == "" || promoted == known {
			t.Fatalf("promotion answered secret %q", promoted)
		}
		if code := tokenWith("shop", known, "latchkey.admin"); code != 401 {
			t.Errorf("the old secret after the promotion: %d, want 401", code)
		}
		if code := tokenWith("shop", promoted, "latchkey.admin"); code != 200 {
			t.Errorf("the new secret: %d", code)
		}
		// Narrowing keeps the secret; widening to more pools, or to every pool, issues another.
		if s := patch("shop", map[string]any{"admin_pools": []string{"customers"}, "client_name": "Shop admin"}); s != "" {
			t.Errorf("no wider power, yet a new secret")
		}
		widened := patch("shop", map[string]any{"admin_pools": []string{"customers", "staff"}})
		if widened == "" || tokenWith("shop", promoted, "latchkey.admin") != 401 || tokenWith("shop", widened, "latchkey.admin") != 200 {
			t.Errorf("widening to another pool: secret %q", widened)
		}
		if s := patch("shop", map[string]any{"admin_pools": []string{"staff"}}); s != "" {
			t.Errorf("narrowing answered a secret")
		}
		everyPool := patch("shop", map[string]any{"admin_pools": []string{}})
		if everyPool == "" || tokenWith("shop", widened, "latchkey.admin") != 401 {
			t.Errorf("widening to every pool: secret %q", everyPool)
		}

		// The CLI: --admin on a client prints a new secret once; the old one stops working.
		out := env.cli(t, "clients", "update", "--id", viaCLI.ClientID, "--admin")
		m := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)
		if m == nil || m[1] == viaCLI.ClientSecret {
			t.Fatalf("clients update --admin printed %q", out)
		}
		if code := tokenWith(viaCLI.ClientID, viaCLI.ClientSecret, "latchkey.admin"); code != 401 {
			t.Errorf("the CLI-made client's old secret after --admin: %d, want 401", code)
		}
		if code := tokenWith(viaCLI.ClientID, m[1], "latchkey.admin"); code != 200 {
			t.Errorf("the CLI's new secret: %d", code)
		}
		if out := env.cli(t, "clients", "update", "--id", viaCLI.ClientID, "--admin-pools", "staff"); regexp.MustCompile(`client_secret`).MatchString(out) {
			t.Errorf("narrowing through the CLI printed a secret: %q", out)
		}
	})
}
