package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
)

// The client and claim rules live on the domain types and bind the store; the CLI only reports them, each field
// named as its flag. These cases are the ones the CLI used to check (or not) on its own.
func TestClientRulesThroughTheCLI(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		rsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		rsJWK := writePublicJWK(t, &rsKey.PublicKey, "rs-enc")
		spa := env.createClient(t, "--name", "spa", "--public", "--redirect-uris", "https://spa.example/cb")
		before := strings.Count(env.cli(t, "clients", "list", "--json"), `"client_id"`)

		for _, tc := range []struct {
			name string
			args []string
			msgs []string
		}{
			{"access token encryption without JWT access tokens",
				[]string{"clients", "create", "--name", "x", "--access-token-encryption-jwk", "@" + rsJWK, "--access-token-encryption-alg", "ECDH-ES"},
				[]string{"--access-token-encryption-alg", "access_token_format jwt"}},
			{"an allowed origin with a path (the store's rule, now reported by flag)",
				[]string{"clients", "create", "--name", "x", "--allowed-origins", "https://app.example/"},
				[]string{"--allowed-origins", `"https://app.example/"`}},
			{"an unreadable JWK file with another problem",
				[]string{"clients", "create", "--name", "x", "--encryption-jwk", "@/nonexistent/key.jwk", "--grant-types", "magic"},
				[]string{"--encryption-jwk", "--grant-types"}},
			{"an update breaking an admin rule is refused by the store, naming the flags",
				[]string{"clients", "update", spa.ClientID, "--admin"},
				[]string{"--public: an admin client cannot be public", "--grant-types"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				errOut := env.refused(t, 1, tc.msgs, tc.args...)
				if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
					t.Errorf("want one line, got %q", errOut)
				}
			})
		}
		if after := strings.Count(env.cli(t, "clients", "list", "--json"), `"client_id"`); after != before {
			t.Errorf("refused commands left %d clients, want %d", after, before)
		}
		if got := decodeJSON[clientJSON](t, env.cli(t, "clients", "get", spa.ClientID)); got.Admin || !got.Public {
			t.Errorf("a refused update changed the client: %+v", got)
		}

		t.Run("registered claim names are refused by the store for users create and set-claims", func(t *testing.T) {
			env.refused(t, 1, []string{`"sub"`, "registered claim"},
				"users", "create", "--email", "eve@example.com", "--password", "a long enough password", "--claims", "sub=someone-else")
			if out := env.cli(t, "users", "list"); strings.Contains(out, "eve@example.com") {
				t.Errorf("a refused create stored the user:\n%s", out)
			}
			env.cli(t, "users", "create", "--email", "ada@example.com", "--password", "a long enough password", "--claims", "plan=pro")
			env.refused(t, 1, []string{`"iss"`, "registered claim"},
				"users", "set-claims", "--email", "ada@example.com", "--claims", "iss=https://evil.example")
			if out := env.cli(t, "users", "get", "ada@example.com"); strings.Contains(out, "evil.example") || !strings.Contains(out, `"plan": "pro"`) {
				t.Errorf("a refused set-claims changed the extras:\n%s", out)
			}
		})
	})
}
