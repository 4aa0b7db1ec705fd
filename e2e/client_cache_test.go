package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

// TestCachedClientsNeverOutliveTheirSecret drives the client cache through its dangerous moments on a node that
// has every client cached: a secret rotated by another process (the CLI), a client deleted by it, a wrong
// secret, and the same through a second node. Each must answer exactly as a server without a cache would.
func TestCachedClientsNeverOutliveTheirSecret(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		svc := env.createClient(t, "--name", "svc", "--grant-types", "client_credentials", "--scopes", "read")
		rs := env.createClient(t, "--name", "rs")
		nodeA, nodeB := env.startServer(t), env.startServer(t)

		token := func(t *testing.T, base string, c createdClient) (int, string) {
			t.Helper()
			code, _, body := postForm(t, base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, c.ClientID, c.ClientSecret)
			tok, _ := body["access_token"].(string)
			if code != http.StatusOK && body["error"] != "invalid_client" {
				t.Errorf("token endpoint: %d %v, want 200 or invalid_client", code, body)
			}
			return code, tok
		}
		introspect := func(t *testing.T, base string, caller createdClient, tok string) (int, map[string]any) {
			t.Helper()
			code, _, body := postForm(t, base+"/oauth2/introspect", url.Values{"token": {tok}}, caller.ClientID, caller.ClientSecret)
			return code, body
		}
		revoke := func(t *testing.T, base string, c createdClient, tok string) int {
			t.Helper()
			code, _, _ := postForm(t, base+"/oauth2/revoke", url.Values{"token": {tok}}, c.ClientID, c.ClientSecret)
			return code
		}
		rotate := func(t *testing.T, c createdClient) createdClient {
			t.Helper()
			var out createdClient
			if err := json.Unmarshal([]byte(env.cli(t, "clients", "rotate-secret", c.ClientID, "--json")), &out); err != nil || out.ClientSecret == "" {
				t.Fatalf("rotate-secret printed no secret: %v", err)
			}
			return out
		}

		// Warm both nodes' caches with every client, through every endpoint that may use them.
		var tok string
		for _, n := range []*server{nodeA, nodeB} {
			for range 3 {
				var code int
				if code, tok = token(t, n.URL, svc); code != http.StatusOK {
					t.Fatalf("warm-up token: %d", code)
				}
				if code, in := introspect(t, n.URL, rs, tok); code != http.StatusOK || in["active"] != true {
					t.Fatalf("warm-up introspection: %d %v", code, in)
				}
			}
		}
		if code := revoke(t, nodeB.URL, svc, tok); code != http.StatusOK {
			t.Fatalf("warm-up revocation: %d", code)
		}

		// A wrong secret is refused even though the client is cached.
		wrong := createdClient{ClientID: svc.ClientID, ClientSecret: svc.ClientSecret + "x"}
		if code, _ := token(t, nodeB.URL, wrong); code != http.StatusUnauthorized {
			t.Errorf("wrong secret against a cached client: %d, want 401", code)
		}

		// Another process rotates both secrets. On both nodes, at once: old secrets refused everywhere, new
		// ones accepted everywhere.
		_, live := token(t, nodeA.URL, svc)
		oldSvc, oldRS := svc, rs
		svc, rs = rotate(t, svc), rotate(t, rs)
		for _, n := range []*server{nodeA, nodeB} {
			if code, _ := token(t, n.URL, oldSvc); code != http.StatusUnauthorized {
				t.Errorf("%s: token with the rotated-out secret: %d, want 401", n.URL, code)
			}
			if code, in := introspect(t, n.URL, oldRS, live); code != http.StatusUnauthorized || in["active"] == true {
				t.Errorf("%s: introspection with the rotated-out secret: %d %v, want 401", n.URL, code, in)
			}
			if code := revoke(t, n.URL, oldSvc, live); code != http.StatusUnauthorized {
				t.Errorf("%s: revocation with the rotated-out secret: %d, want 401", n.URL, code)
			}
			if code, in := introspect(t, n.URL, rs, live); code != http.StatusOK || in["active"] != true {
				t.Errorf("%s: a refused revocation revoked the token anyway, or the new secret failed: %d %v", n.URL, code, in)
			}
			if code, _ := token(t, n.URL, svc); code != http.StatusOK {
				t.Errorf("%s: token with the new secret: %d, want 200", n.URL, code)
			}
		}
		if code := revoke(t, nodeB.URL, svc, live); code != http.StatusOK {
			t.Errorf("revocation with the new secret: %d", code)
		}
		if _, in := introspect(t, nodeA.URL, rs, live); in["active"] != false {
			t.Errorf("revoked token still active: %v", in)
		}

		// Deleted by another process while cached: refused at once, and no token row written for it.
		for _, n := range []*server{nodeA, nodeB} {
			token(t, n.URL, svc)
		}
		env.cli(t, "clients", "delete", svc.ClientID)
		for _, n := range []*server{nodeA, nodeB} {
			if code, tok := token(t, n.URL, svc); code != http.StatusUnauthorized || tok != "" {
				t.Errorf("%s: token for a deleted client: %d %q, want 401", n.URL, code, tok)
			}
		}
	})
}
