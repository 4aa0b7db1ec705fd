package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"
)

// shownClient is what `clients create|get|list --json` print.
type shownClient struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            *string  `json:"client_secret"`
	ClientName              string   `json:"client_name"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	RedirectURIs            []string `json:"redirect_uris"`
	Scope                   string   `json:"scope"`
	Audience                []string `json:"audience"`
	Public                  bool     `json:"public"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	AccessTokenFormat       string   `json:"access_token_format"`
}

func decodeJSON[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("output is not the expected JSON: %v\n%s", err, out)
	}
	return v
}

// refused runs a command that must fail with exit code want and a message containing every one of msgs.
func (e testEnv) refused(t *testing.T, want int, msgs []string, args ...string) string {
	t.Helper()
	out, errOut, code := e.cliCode(t, "", args...)
	if code != want {
		t.Fatalf("latchkey %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	for _, m := range msgs {
		if !strings.Contains(errOut, m) {
			t.Errorf("latchkey %s: stderr %q does not mention %q", strings.Join(args, " "), errOut, m)
		}
	}
	return errOut
}

func TestClientsCreate(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		for _, tc := range []struct {
			name  string
			args  []string
			check func(t *testing.T, c shownClient)
		}{
			{"defaults: confidential client_credentials client with a generated secret", []string{"--name", "svc"}, func(t *testing.T, c shownClient) {
				if c.ClientSecret == nil || len(*c.ClientSecret) < 43 {
					t.Errorf("client_secret = %v, want a generated secret of at least 43 characters", c.ClientSecret)
				}
				if len(c.ClientID) != 36 {
					t.Errorf("client_id = %q, want a UUID", c.ClientID)
				}
				if !slices.Equal(c.GrantTypes, []string{"client_credentials"}) || len(c.ResponseTypes) != 0 || c.Public ||
					c.TokenEndpointAuthMethod != "client_secret_basic" || c.ClientName != "svc" {
					t.Errorf("defaults = %+v", c)
				}
			}},
			{"public client: no secret, authorization code with refresh", []string{"--name", "spa", "--public", "--redirect-uris", "http://localhost:5173/cb"}, func(t *testing.T, c shownClient) {
				if c.ClientSecret != nil {
					t.Errorf("public client got a secret %q", *c.ClientSecret)
				}
				if !c.Public || c.TokenEndpointAuthMethod != "none" ||
					!slices.Equal(c.GrantTypes, []string{"authorization_code", "refresh_token"}) || !slices.Equal(c.ResponseTypes, []string{"code"}) ||
					!slices.Equal(c.RedirectURIs, []string{"http://localhost:5173/cb"}) {
					t.Errorf("public client = %+v", c)
				}
			}},
			{"chosen id, secret and settings are kept", []string{"--name", "api", "--id", "api-client", "--secret", strings.Repeat("s", 32),
				"--scopes", "read,write", "--audience", "https://api.example.com", "--token-endpoint-auth-method", "client_secret_post",
				"--access-token-format", "jwt"}, func(t *testing.T, c shownClient) {
				if c.ClientID != "api-client" || c.ClientSecret == nil || *c.ClientSecret != strings.Repeat("s", 32) ||
					c.Scope != "read write" || !slices.Equal(c.Audience, []string{"https://api.example.com"}) ||
					c.TokenEndpointAuthMethod != "client_secret_post" || c.AccessTokenFormat != "jwt" {
					t.Errorf("client = %+v", c)
				}
			}},
			{"confidential authorization code client", []string{"--name", "web", "--grant-types", "authorization_code refresh_token",
				"--redirect-uris", "https://app.example.com/cb,com.example.app:/cb"}, func(t *testing.T, c shownClient) {
				if c.ClientSecret == nil || !slices.Equal(c.ResponseTypes, []string{"code"}) || len(c.RedirectURIs) != 2 {
					t.Errorf("client = %+v", c)
				}
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out := env.cli(t, append([]string{"clients", "create", "--json"}, tc.args...)...)
				c := decodeJSON[shownClient](t, out)
				tc.check(t, c)
				got := decodeJSON[shownClient](t, env.cli(t, "clients", "get", c.ClientID))
				if got.ClientSecret != nil {
					t.Error("clients get shows a client secret")
				}
				if got.ClientID != c.ClientID || got.Scope != c.Scope || !slices.Equal(got.GrantTypes, c.GrantTypes) {
					t.Errorf("stored client %+v differs from the created %+v", got, c)
				}
			})
		}

		t.Run("text output shows the secret once", func(t *testing.T) {
			out := env.cli(t, "clients", "create", "--name", "text")
			if !strings.Contains(out, "client_id:") || !strings.Contains(out, "client_secret:") {
				t.Errorf("output = %q", out)
			}
		})

		env.cli(t, "clients", "create", "--name", "taken", "--id", "taken")
		before := len(decodeJSON[[]shownClient](t, env.cli(t, "clients", "list", "--json")))
		for _, tc := range []struct {
			name string
			args []string
			msgs []string
		}{
			{"short --secret", []string{"--name", "x", "--secret", strings.Repeat("s", 31)}, []string{"--secret", "32"}},
			{"duplicate --id", []string{"--name", "x", "--id", "taken"}, []string{`"taken"`, "already exists"}},
			{"unknown grant type", []string{"--name", "x", "--grant-types", "client_credentials,magic"}, []string{"--grant-types", `"magic"`}},
			{"password grant without --first-party", []string{"--name", "x", "--grant-types", "client_credentials,password"}, []string{"--grant-types", `"password"`, "first-party"}},
			{"implicit response type", []string{"--name", "x", "--grant-types", "authorization_code", "--redirect-uris", "https://a.example/cb", "--response-types", "token"}, []string{"--response-types", `"token"`}},
			{"unknown auth method", []string{"--name", "x", "--token-endpoint-auth-method", "tls_client_auth"}, []string{"--token-endpoint-auth-method"}},
			{"auth method none on a confidential client", []string{"--name", "x", "--token-endpoint-auth-method", "none"}, []string{"--token-endpoint-auth-method"}},
			{"unknown access token format", []string{"--name", "x", "--access-token-format", "paseto"}, []string{"--access-token-format"}},
			{"public client with client_credentials", []string{"--name", "x", "--public", "--grant-types", "client_credentials"}, []string{"--public", "client_credentials"}},
			{"public client with a secret", []string{"--name", "x", "--public", "--redirect-uris", "https://a.example/cb", "--secret", strings.Repeat("s", 40)}, []string{"--secret", "--public"}},
			{"authorization_code without redirect URIs", []string{"--name", "x", "--grant-types", "authorization_code"}, []string{"--redirect-uris"}},
			{"redirect URI with a fragment", []string{"--name", "x", "--grant-types", "authorization_code", "--redirect-uris", "https://a.example/cb#frag"}, []string{"--redirect-uris", "fragment"}},
			{"relative redirect URI", []string{"--name", "x", "--grant-types", "authorization_code", "--redirect-uris", "/cb"}, []string{"--redirect-uris"}},
			{"missing --name", []string{"--scopes", "read"}, []string{"--name"}},
			{"id with a colon", []string{"--name", "x", "--id", "a:b"}, []string{"--id"}},
			{"invalid scope token", []string{"--name", "x", "--scopes", `read "write"`}, []string{"--scopes"}},
			{"every problem at once", []string{"--grant-types", "magic", "--access-token-format", "paseto"}, []string{"--name", "--grant-types", "--access-token-format"}},
		} {
			t.Run(tc.name+" is refused", func(t *testing.T) {
				errOut := env.refused(t, 1, tc.msgs, append([]string{"clients", "create", "--json"}, tc.args...)...)
				if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
					t.Errorf("want one line, got %q", errOut)
				}
				if !strings.HasPrefix(errOut, "latchkey clients: ") {
					t.Errorf("message %q does not say which command failed", errOut)
				}
			})
		}
		t.Run("unknown flag is a usage error", func(t *testing.T) {
			env.refused(t, 2, []string{"-colour"}, "clients", "create", "--name", "x", "--colour", "blue")
		})
		if after := len(decodeJSON[[]shownClient](t, env.cli(t, "clients", "list", "--json"))); after != before {
			t.Errorf("refused creates left clients behind: %d before, %d after", before, after)
		}
	})
}

func TestClientsListGetDelete(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		if list := decodeJSON[[]shownClient](t, env.cli(t, "clients", "list", "--json")); len(list) != 0 {
			t.Fatalf("fresh database lists %v", list)
		}
		a := env.createClient(t, "--name", "alpha-svc", "--id", "alpha", "--scopes", "read")
		b := env.createClient(t, "--name", "beta-svc", "--id", "beta")

		t.Run("list shows every client without secrets", func(t *testing.T) {
			list := decodeJSON[[]shownClient](t, env.cli(t, "clients", "list", "--json"))
			var ids []string
			for _, c := range list {
				ids = append(ids, c.ClientID)
				if c.ClientSecret != nil {
					t.Errorf("list shows the secret of %s", c.ClientID)
				}
			}
			if !slices.Equal(ids, []string{"alpha", "beta"}) {
				t.Errorf("listed %v, want [alpha beta] oldest first", ids)
			}
			text := env.cli(t, "clients", "list")
			for _, s := range []string{"CLIENT ID", "alpha", "alpha-svc", "beta-svc", "client_credentials"} {
				if !strings.Contains(text, s) {
					t.Errorf("text list does not show %q:\n%s", s, text)
				}
			}
			if strings.Contains(text, a.ClientSecret) || strings.Contains(text, b.ClientSecret) {
				t.Error("text list shows a secret")
			}
		})

		for _, tc := range []struct {
			name string
			args []string
		}{
			{"get by positional id", []string{"clients", "get", "alpha"}},
			{"get by --id", []string{"clients", "get", "--id", "alpha"}},
			{"get with config flags before the id", []string{"clients", "get", "--log-level", "error", "alpha"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := decodeJSON[shownClient](t, env.cli(t, tc.args...))
				if c.ClientID != "alpha" || c.ClientName != "alpha-svc" || c.Scope != "read" {
					t.Errorf("got %+v", c)
				}
			})
		}

		for _, tc := range []struct {
			name string
			args []string
			msgs []string
		}{
			{"get of an unknown id", []string{"clients", "get", "nobody"}, []string{`no client with id "nobody"`}},
			{"get without an id", []string{"clients", "get"}, []string{"--id"}},
			{"get with two ids", []string{"clients", "get", "alpha", "beta"}, []string{"--id"}},
			{"delete of an unknown id", []string{"clients", "delete", "nobody"}, []string{`no client with id "nobody"`}},
			{"delete without an id", []string{"clients", "delete"}, []string{"--id"}},
		} {
			t.Run(tc.name+" fails", func(t *testing.T) { env.refused(t, 1, tc.msgs, tc.args...) })
		}

		t.Run("delete by --id then by positional id", func(t *testing.T) {
			if out := env.cli(t, "clients", "delete", "--id", "alpha"); !strings.Contains(out, "alpha") {
				t.Errorf("delete output = %q", out)
			}
			env.refused(t, 1, []string{`no client with id "alpha"`}, "clients", "get", "alpha")
			env.refused(t, 1, []string{`no client with id "alpha"`}, "clients", "delete", "alpha")
			env.cli(t, "clients", "delete", "beta")
			env.refused(t, 1, []string{`no client with id "beta"`}, "clients", "get", "--id", "beta")
			if list := decodeJSON[[]shownClient](t, env.cli(t, "clients", "list", "--json")); len(list) != 0 {
				t.Errorf("after deleting both, list = %v", list)
			}
		})
	})
}

func TestDeletingAClientRemovesItsTokens(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		svc := env.createClient(t, "--name", "svc", "--scopes", "read")
		other := env.createClient(t, "--name", "other", "--scopes", "read")
		rs := env.createClient(t, "--name", "rs")
		srv := env.startServer(t)
		ctx := context.Background()

		token := func(c createdClient) string {
			t.Helper()
			cc := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: srv.URL + "/oauth2/token", Scopes: []string{"read"}}
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatalf("token for %s: %v", c.ClientID, err)
			}
			return tok.AccessToken
		}
		active := func(tok string) any {
			t.Helper()
			code, _, in := postForm(t, srv.URL+"/oauth2/introspect", url.Values{"token": {tok}}, rs.ClientID, rs.ClientSecret)
			if code != http.StatusOK {
				t.Fatalf("introspect: %d %v", code, in)
			}
			return in["active"]
		}
		svcToken, otherToken := token(svc), token(other)
		if active(svcToken) != true || active(otherToken) != true {
			t.Fatal("fresh tokens are not active")
		}

		env.cli(t, "clients", "delete", svc.ClientID)

		if got := active(svcToken); got != false {
			t.Errorf("token of a deleted client introspects as active=%v", got)
		}
		if got := active(otherToken); got != true {
			t.Errorf("deleting one client deactivated another client's token (active=%v)", got)
		}
		code, _, body := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc.ClientID, svc.ClientSecret)
		if code != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("deleted client at the token endpoint: %d %v", code, body)
		}
	})
}

func TestClientsRotateSecret(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		svc := env.createClient(t, "--name", "svc", "--scopes", "read")
		env.cli(t, "clients", "create", "--name", "spa", "--id", "spa", "--public", "--redirect-uris", "http://localhost:5173/cb")
		srv := env.startServer(t)
		tokenStatus := func(secret string) (int, map[string]any) {
			t.Helper()
			code, _, body := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc.ClientID, secret)
			return code, body
		}
		if code, body := tokenStatus(svc.ClientSecret); code != http.StatusOK {
			t.Fatalf("original secret: %d %v", code, body)
		}

		rotated := decodeJSON[createdClient](t, env.cli(t, "clients", "rotate-secret", "--json", svc.ClientID))
		if rotated.ClientID != svc.ClientID || len(rotated.ClientSecret) < 43 || rotated.ClientSecret == svc.ClientSecret {
			t.Fatalf("rotate-secret printed %+v", rotated)
		}
		chosen := strings.Repeat("c", 32)
		for _, tc := range []struct {
			name   string
			secret string
			status int
		}{
			{"old secret is refused", svc.ClientSecret, http.StatusUnauthorized},
			{"new secret works", rotated.ClientSecret, http.StatusOK},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if code, body := tokenStatus(tc.secret); code != tc.status {
					t.Errorf("token endpoint: %d %v, want %d", code, body, tc.status)
				} else if code == http.StatusUnauthorized && body["error"] != "invalid_client" {
					t.Errorf("error = %v, want invalid_client", body["error"])
				}
			})
		}

		t.Run("rotate to a chosen secret with --id and text output", func(t *testing.T) {
			out := env.cli(t, "clients", "rotate-secret", "--id", svc.ClientID, "--secret", chosen)
			if !strings.Contains(out, chosen) {
				t.Errorf("output does not show the new secret: %q", out)
			}
			if code, _ := tokenStatus(chosen); code != http.StatusOK {
				t.Errorf("chosen secret: %d", code)
			}
			if code, _ := tokenStatus(rotated.ClientSecret); code != http.StatusUnauthorized {
				t.Errorf("previous secret: %d, want 401", code)
			}
		})

		for _, tc := range []struct {
			name string
			args []string
			msgs []string
		}{
			{"public client", []string{"spa"}, []string{`"spa"`, "public"}},
			{"unknown client", []string{"nobody"}, []string{`no client with id "nobody"`}},
			{"short chosen secret", []string{"--secret", "short", svc.ClientID}, []string{"--secret", "32"}},
			{"no client id", nil, []string{"--id"}},
		} {
			t.Run(tc.name+" is refused", func(t *testing.T) {
				env.refused(t, 1, tc.msgs, append([]string{"clients", "rotate-secret"}, tc.args...)...)
			})
		}
		if code, _ := tokenStatus(chosen); code != http.StatusOK {
			t.Errorf("a refused rotation changed the secret: %d", code)
		}
	})
}

// shownUser is what `users create|list --json` print.
type shownUser struct {
	ID    string   `json:"id"`
	Email string   `json:"email"`
	Roles []string `json:"roles"`
}

func TestUsers(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		const pw = "correct horse battery staple"
		users := func() []shownUser {
			t.Helper()
			return decodeJSON[[]shownUser](t, env.cli(t, "users", "list", "--json"))
		}
		if len(users()) != 0 {
			t.Fatal("fresh database has users")
		}

		ada := decodeJSON[shownUser](t, env.cli(t, "users", "create", "--json", "--email", "Ada@Example.com", "--password", pw, "--roles", "admin,billing"))
		if !strings.HasPrefix(ada.ID, "usr_") || ada.Email != "Ada@Example.com" || !slices.Equal(ada.Roles, []string{"admin", "billing"}) {
			t.Errorf("created %+v", ada)
		}
		out, errOut, code := env.cliCode(t, pw+"\n", "users", "create", "--json", "--email", "grace@example.com", "--password-stdin")
		if code != 0 {
			t.Fatalf("--password-stdin: exit %d: %s", code, errOut)
		}
		grace := decodeJSON[shownUser](t, out)
		if grace.Email != "grace@example.com" || grace.Roles == nil {
			t.Errorf("created %+v", grace)
		}
		if out := env.cli(t, "users", "create", "--email", "linus@example.com", "--password", pw); !strings.Contains(out, "linus@example.com") {
			t.Errorf("text output = %q", out)
		}

		for _, tc := range []struct {
			name  string
			stdin string
			args  []string
			msgs  []string
		}{
			{"same email differing in case", "", []string{"--email", "ada@EXAMPLE.COM", "--password", pw}, []string{"already exists"}},
			{"same email with surrounding space", "", []string{"--email", " grace@example.com ", "--password", pw}, []string{"already exists"}},
			{"no password", "", []string{"--email", "x@example.com"}, []string{"--email", "--password"}},
			{"no email", "", []string{"--password", pw}, []string{"--email"}},
			{"both password flags", pw + "\n", []string{"--email", "x@example.com", "--password", pw, "--password-stdin"}, []string{"--password-stdin"}},
			{"empty standard input", "", []string{"--email", "x@example.com", "--password-stdin"}, []string{"--password-stdin"}},
			{"malformed email", "", []string{"--email", "not-an-email", "--password", pw}, []string{"email"}},
		} {
			t.Run("create with "+tc.name+" is refused", func(t *testing.T) {
				out, errOut, code := env.cliCode(t, tc.stdin, append([]string{"users", "create"}, tc.args...)...)
				if code != 1 {
					t.Fatalf("exit %d, want 1\nstdout %s\nstderr %s", code, out, errOut)
				}
				for _, m := range tc.msgs {
					if !strings.Contains(errOut, m) {
						t.Errorf("stderr %q does not mention %q", errOut, m)
					}
				}
				if strings.Contains(errOut, pw) {
					t.Error("the error message shows the password")
				}
			})
		}

		t.Run("list shows every user", func(t *testing.T) {
			var emails []string
			for _, u := range users() {
				emails = append(emails, u.Email)
			}
			if !slices.Equal(emails, []string{"Ada@Example.com", "grace@example.com", "linus@example.com"}) {
				t.Errorf("users = %v", emails)
			}
			text := env.cli(t, "users", "list")
			if !strings.Contains(text, ada.ID) || !strings.Contains(text, "admin,billing") || strings.Contains(text, pw) {
				t.Errorf("text list:\n%s", text)
			}
		})

		for _, tc := range []struct {
			name string
			args []string
			gone string
		}{
			{"delete by --email ignoring case", []string{"--email", "ADA@example.com"}, "Ada@Example.com"},
			{"delete by --id", []string{"--id", grace.ID}, "grace@example.com"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				env.cli(t, append([]string{"users", "delete"}, tc.args...)...)
				for _, u := range users() {
					if u.Email == tc.gone {
						t.Errorf("%s is still listed", tc.gone)
					}
				}
			})
		}
		t.Run("delete by positional id", func(t *testing.T) {
			list := users()
			if len(list) != 1 {
				t.Fatalf("users = %v", list)
			}
			env.cli(t, "users", "delete", list[0].ID)
			if len(users()) != 0 {
				t.Error("user still listed")
			}
		})
		for _, tc := range []struct {
			name string
			args []string
			msg  string
		}{
			{"unknown email", []string{"--email", "nobody@example.com"}, `no user with email "nobody@example.com"`},
			{"unknown id", []string{"--id", "usr_nobody"}, `no user with id "usr_nobody"`},
			{"deleted user", []string{ada.ID}, "no user with id"},
			{"nothing", nil, "--id"},
		} {
			t.Run("delete of "+tc.name+" fails", func(t *testing.T) {
				env.refused(t, 1, []string{tc.msg}, append([]string{"users", "delete"}, tc.args...)...)
			})
		}
	})
}

// shownKey is one entry of `keys list --json`.
type shownKey struct {
	KID, Alg, State string
	NotAfter        *string `json:"published_until"`
}

func TestKeys(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv := env.startServer(t)

		first := decodeJSON[[]shownKey](t, env.cli(t, "keys", "list", "--json"))
		byAlg := map[string]shownKey{}
		for _, k := range first {
			if k.State != "active" || k.NotAfter != nil {
				t.Errorf("key after first start: %+v, want active with no end of publication", k)
			}
			byAlg[k.Alg] = k
		}
		if len(first) != 2 || byAlg["RS256"].KID == "" || byAlg["ES256"].KID == "" {
			t.Fatalf("keys after first start = %+v, want one active RS256 and one active ES256", first)
		}
		set := jwksKeys(t, srv.URL)
		for _, k := range first {
			if len(set.Key(k.KID)) != 1 {
				t.Errorf("listed key %s is not the one the server publishes", k.KID)
			}
		}
		if text := env.cli(t, "keys", "list"); !strings.Contains(text, byAlg["RS256"].KID) || !strings.Contains(text, "active") {
			t.Errorf("text list:\n%s", text)
		}

		rotated := decodeJSON[[]shownKey](t, env.cli(t, "keys", "rotate", "--now", "--json"))
		again := decodeJSON[[]shownKey](t, env.cli(t, "keys", "list", "--json"))
		for name, list := range map[string][]shownKey{"rotate --json": rotated, "list after rotate": again} {
			states := map[string]int{}
			for _, k := range list {
				states[k.State+" "+k.Alg]++
				old := k.KID == byAlg["RS256"].KID || k.KID == byAlg["ES256"].KID
				if old != (k.State == "retired") {
					t.Errorf("%s: key %+v: only the previous keys should be retired", name, k)
				}
				if (k.State == "retired") != (k.NotAfter != nil) {
					t.Errorf("%s: key %+v: a retired key needs an end of publication, an active one none", name, k)
				}
			}
			want := map[string]int{"active RS256": 1, "active ES256": 1, "retired RS256": 1, "retired ES256": 1}
			if len(list) != 4 || len(states) != 4 {
				t.Errorf("%s: %d keys %v, want %v", name, len(list), states, want)
			}
			for k, n := range want {
				if states[k] != n {
					t.Errorf("%s: %d %s keys, want %d", name, states[k], k, n)
				}
			}
		}
		if out := env.cli(t, "keys", "rotate", "--now"); !strings.Contains(out, "rotated") || !strings.Contains(out, "retired") {
			t.Errorf("text rotate output:\n%s", out)
		}
		if n := len(decodeJSON[[]shownKey](t, env.cli(t, "keys", "list", "--json"))); n != 6 {
			t.Errorf("after two rotations %d keys are listed, want 6 (2 active, 4 retired still published)", n)
		}
	})
}

func TestCommandDispatch(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderrHas  []string
		stderrNone bool
	}{
		{"version", []string{"version"}, 0, "latchkey dev\n", nil, true},
		{"help", []string{"help"}, 0, "", []string{"usage: latchkey", "clients"}, false},
		{"--help", []string{"--help"}, 0, "", []string{"usage: latchkey"}, false},
		{"no command", nil, 2, "", []string{"usage: latchkey"}, false},
		{"unknown command", []string{"frobnicate"}, 2, "", []string{`unknown command "frobnicate"`, "usage: latchkey"}, false},
		{"clients without a subcommand", []string{"clients"}, 2, "", []string{"usage: latchkey clients", "create", "rotate-secret"}, false},
		{"clients with an unknown subcommand", []string{"clients", "frobnicate"}, 2, "", []string{`unknown subcommand "frobnicate"`}, false},
		{"users without a subcommand", []string{"users"}, 2, "", []string{"usage: latchkey users"}, false},
		{"keys without a subcommand", []string{"keys"}, 2, "", []string{"usage: latchkey keys", "rotate"}, false},
		{"clients -h", []string{"clients", "-h"}, 2, "", []string{"usage: latchkey clients"}, false},
		{"subcommand -h", []string{"clients", "create", "-h"}, 2, "", []string{"-grant-types", "LATCHKEY_ISSUER"}, false},
		{"serve with a stray flag", []string{"serve", "--no-such-flag"}, 2, "", []string{"no-such-flag"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := env.cliCode(t, "", tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tc.code, errOut)
			}
			if tc.stdout != "" && out != tc.stdout {
				t.Errorf("stdout = %q, want %q", out, tc.stdout)
			}
			if tc.stdout == "" && out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
			if tc.stderrNone && errOut != "" {
				t.Errorf("stderr = %q, want nothing", errOut)
			}
			for _, s := range tc.stderrHas {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr does not mention %q:\n%s", s, errOut)
				}
			}
		})
	}
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
