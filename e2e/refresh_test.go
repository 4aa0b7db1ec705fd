package e2e

import (
	"database/sql"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRefreshTokenOnlyWithOfflineAccess(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		b := newBrowser(t, spaCallback)
		tok, _ := e.signedIn(t, b, "openid", "profile")
		if tok.RefreshToken != "" {
			t.Error("a refresh token was issued without offline_access")
		}
		tok, _ = e.signedIn(t, b, "openid", "offline_access")
		if tok.RefreshToken == "" {
			t.Error("no refresh token with offline_access")
		}
	})
}

// Tokens issued from a stored grant (a refresh, a code exchange) say what is true now: the user is read again,
// and a grant whose user or browser session is gone ends (issue 11, items 2, 5 and 10).

// freshFixture is the SPA of the OIDC edge tests (JWT access tokens) with a resource server that introspects, and
// a direct line to the database to move a session's clock.
type freshFixture struct {
	*edge
	rs createdClient
	db *sql.DB
	q  func(string) string // rewrites ? placeholders for the database's driver
}

func newFreshFixture(t *testing.T, env testEnv) *freshFixture {
	t.Helper()
	rs := env.createClient(t, "--name", "resource-server")
	e := newEdge(t, env, "--access-token-format", "jwt")
	db, q := rawDB(t, env)
	return &freshFixture{edge: e, rs: rs, db: db, q: q}
}

func (f *freshFixture) exec(t *testing.T, stmt string, args ...any) {
	t.Helper()
	if _, err := f.db.Exec(f.q(stmt), args...); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// introspect asks as the resource server.
func (f *freshFixture) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	code, _, in := postForm(t, f.srv.URL+"/oauth2/introspect", url.Values{"token": {token}}, f.rs.ClientID, f.rs.ClientSecret)
	if code != http.StatusOK {
		t.Fatalf("introspect: %d %v", code, in)
	}
	return in
}

// refreshWith refreshes at the token endpoint, with a scope parameter unless scope is empty.
func (f *freshFixture) refreshWith(t *testing.T, rt, scope string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return f.tokenCall(t, form)
}

// mustRefresh refreshes and returns the answer, failing the test unless it is 200.
func (f *freshFixture) mustRefresh(t *testing.T, rt, scope string) map[string]any {
	t.Helper()
	code, body := f.refreshWith(t, rt, scope)
	if code != http.StatusOK {
		t.Fatalf("refresh: %d %v", code, body)
	}
	return body
}

// jwtPayload decodes a JWT's claims without verifying it (where the test has verified it another way or only
// reads what the server said).
func jwtPayload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, raw)
}

// userClaims is what a token or introspection says about the user, in one comparable shape.
type userClaims struct {
	Roles  []string
	Plan   any
	Email  any
	Name   any
	Pool   any
	Active any
}

func claimsOf(m map[string]any) userClaims {
	c := userClaims{Email: m["email"], Name: m["name"], Pool: m["pool"], Active: m["active"]}
	if m["username"] != nil {
		c.Email = m["username"]
	}
	if roles, ok := m["roles"].([]any); ok {
		for _, r := range roles {
			c.Roles = append(c.Roles, r.(string))
		}
	}
	if extras, ok := m["extras"].(map[string]any); ok {
		c.Plan = extras["plan"]
	}
	return c
}

func TestRefreshCarriesTheUserAsTheyAreNow(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newFreshFixture(t, env)
		t.Run("token endpoint", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			tok, idClaims := f.signedIn(t, b)
			if got := claimsOf(idClaims); !slices.Equal(got.Roles, []string{"admin", "editor"}) || got.Plan != "pro" || got.Name != "Ada Lovelace" {
				t.Fatalf("ID token at sign-in = %v", idClaims)
			}

			// The operator takes a role away, changes a custom claim and the name; the address changes too (no
			// command does that yet, so the row is changed directly).
			env.cli(t, "users", "set-roles", "--email", adaEmail, "--roles", "editor")
			env.cli(t, "users", "set-claims", "--email", adaEmail, "--claims", "plan=free")
			env.cli(t, "users", "set-name", "--email", adaEmail, "--name", "Ada King")
			f.exec(t, "UPDATE users SET email = ?, email_normalized = ? WHERE email_normalized = ?", "ada@king.example", "ada@king.example", adaEmail)

			body := f.mustRefresh(t, tok.RefreshToken, "")
			at, _ := body["access_token"].(string)
			want := userClaims{Roles: []string{"editor"}, Plan: "free", Email: "ada@king.example", Name: "Ada King"}

			_, jwtClaims := verifyJWT(t, jwksKeys(t, f.srv.URL), at)
			if got := claimsOf(jwtClaims); !slices.Equal(got.Roles, want.Roles) || got.Plan != want.Plan {
				t.Errorf("refreshed JWT access token = %v, want roles %v and plan %v", jwtClaims, want.Roles, want.Plan)
			}
			in := f.introspect(t, at)
			if got := claimsOf(in); got.Active != true || !slices.Equal(got.Roles, want.Roles) || got.Plan != want.Plan || got.Email != want.Email {
				t.Errorf("introspection of the refreshed token = %v", in)
			}
			idt, err := f.verifier.Verify(t.Context(), body["id_token"].(string))
			if err != nil {
				t.Fatalf("refreshed ID token: %v", err)
			}
			id := map[string]any{}
			_ = idt.Claims(&id)
			if got := claimsOf(id); !slices.Equal(got.Roles, want.Roles) || got.Plan != want.Plan || got.Email != want.Email || got.Name != want.Name {
				t.Errorf("refreshed ID token = %v", id)
			}
			if id["sid"] != idClaims["sid"] || id["auth_time"] != idClaims["auth_time"] {
				t.Errorf("the refreshed ID token lost how the user authenticated: sid %v auth_time %v, was %v %v", id["sid"], id["auth_time"], idClaims["sid"], idClaims["auth_time"])
			}

			// A code exchange reads the user again too: a role changed between the sign-in and the exchange shows.
			conf := f.scoped("openid", "roles", "profile")
			verifier, state := "v-"+randomString(t)+randomString(t), randomString(t)
			q := callback(t, f.walk(newBrowser(t, spaCallback), f.authURL(conf, state, verifier), "ada@king.example", adaPassword).page)
			env.cli(t, "users", "set-roles", "--email", "ada@king.example", "--roles", "reviewer")
			exchanged, id2 := f.exchange(t, conf, q.Get("code"), verifier)
			if got := claimsOf(id2); !slices.Equal(got.Roles, []string{"reviewer"}) || got.Plan != want.Plan {
				t.Errorf("ID token of a code exchange after a role change = %v", id2)
			}
			if got := claimsOf(f.introspect(t, exchanged.AccessToken)); !slices.Equal(got.Roles, []string{"reviewer"}) {
				t.Errorf("access token of a code exchange after a role change: roles %v", got.Roles)
			}
		})
	})
}

func TestTokenAPIRefreshCarriesTheUserAsTheyAreNow(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		rs := env.createClient(t, "--name", "resource-server")
		srv, clientID := noCodeFixture(t, env)
		api := srv.URL + "/api/v1/auth"
		code, _, signup := apiCall(t, "POST", api+"/signup", map[string]any{
			"client_id": clientID, "email": "dee@example.com", "password": "violet-tractor-47", "name": "Dee",
		}, nil)
		if code != http.StatusCreated {
			t.Fatalf("signup: %d %v", code, signup)
		}
		introspect := func(tok string) map[string]any {
			_, _, in := postForm(t, srv.URL+"/oauth2/introspect", url.Values{"token": {tok}}, rs.ClientID, rs.ClientSecret)
			return in
		}
		if got := claimsOf(introspect(signup["access_token"].(string))); !slices.Equal(got.Roles, []string{"customer"}) {
			t.Fatalf("roles at sign-up: %v", got.Roles)
		}

		env.cli(t, "users", "set-roles", "--email", "dee@example.com", "--pool", "customers", "--roles", "vip")
		env.cli(t, "users", "set-claims", "--email", "dee@example.com", "--pool", "customers", "--claims", "plan=gold")
		env.cli(t, "users", "set-name", "--email", "dee@example.com", "--pool", "customers", "--name", "Dee Dee")

		code, _, body := apiCall(t, "POST", api+"/refresh", map[string]any{"refresh_token": signup["refresh_token"]}, nil)
		if code != http.StatusOK {
			t.Fatalf("token API refresh: %d %v", code, body)
		}
		in := introspect(body["access_token"].(string))
		if got := claimsOf(in); got.Active != true || !slices.Equal(got.Roles, []string{"vip"}) || got.Plan != "gold" || got.Pool != "customers" {
			t.Errorf("introspection after a token API refresh = %v", in)
		}
		id := jwtPayload(t, body["id_token"].(string))
		if got := claimsOf(id); !slices.Equal(got.Roles, []string{"vip"}) || got.Plan != "gold" || got.Name != "Dee Dee" {
			t.Errorf("ID token after a token API refresh = %v", id)
		}
	})
}

// A grant ends with its user: a disabled or deleted user's refresh is invalid_grant and the grant's access token
// is no longer active.
func TestRefreshEndsWithTheUser(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newFreshFixture(t, env)
		for _, tc := range []struct {
			name string
			act  []string
		}{
			{"disabled", []string{"users", "disable", "--email", adaEmail}},
			{"deleted", []string{"users", "delete", "--email", adaEmail}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tok, _ := f.signedIn(t, newBrowser(t, spaCallback))
				env.cli(t, tc.act...)
				f.mustRefreshFail(t, tok.RefreshToken, "refresh after the user was "+tc.name)
				if in := f.introspect(t, tok.AccessToken); in["active"] != false {
					t.Errorf("access token of a %s user: %v", tc.name, in)
				}
				if in := f.introspect(t, tok.RefreshToken); in["active"] != false {
					t.Errorf("refresh token of a %s user: %v", tc.name, in)
				}
				if tc.name == "disabled" {
					env.cli(t, "users", "enable", "--email", adaEmail)
					f.mustRefreshFail(t, tok.RefreshToken, "re-enabling does not bring an ended grant back")
				}
			})
		}
	})
}

// A grant ends with its browser session: ended, idle-expired or past its absolute expiry, the refresh token is
// refused and the grant revoked. A refresh through a live session counts as activity.
func TestRefreshEndsWithTheSession(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newFreshFixture(t, env)
		past := time.Now().UTC().Add(-time.Minute)
		for _, tc := range []struct {
			name string
			end  func(t *testing.T, sid string)
		}{
			{"idle expiry passed", func(t *testing.T, sid string) {
				f.exec(t, "UPDATE browser_sessions SET idle_expires_at = ? WHERE id = ?", past, sid)
			}},
			{"absolute expiry passed", func(t *testing.T, sid string) {
				f.exec(t, "UPDATE browser_sessions SET expires_at = ?, idle_expires_at = ? WHERE id = ?", past, past, sid)
			}},
			{"ended by the operator", func(t *testing.T, sid string) { env.cli(t, "sessions", "revoke", "--id", sid) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tok, claims := f.signedIn(t, newBrowser(t, spaCallback))
				tc.end(t, claims["sid"].(string))
				f.mustRefreshFail(t, tok.RefreshToken, tc.name)
				if in := f.introspect(t, tok.AccessToken); in["active"] != false {
					t.Errorf("the grant's access token after a refused refresh: %v", in)
				}
				if in := f.introspect(t, tok.RefreshToken); in["active"] != false {
					t.Errorf("the grant's refresh token after a refused refresh: %v", in)
				}
			})
		}

		t.Run("a refresh is activity", func(t *testing.T) {
			tok, claims := f.signedIn(t, newBrowser(t, spaCallback))
			sid := claims["sid"].(string)
			soon := time.Now().UTC().Add(time.Minute)
			f.exec(t, "UPDATE browser_sessions SET last_active_at = ?, idle_expires_at = ? WHERE id = ?", past, soon, sid)
			f.mustRefresh(t, tok.RefreshToken, "")
			var idle time.Time
			if err := f.db.QueryRow(f.q("SELECT idle_expires_at FROM browser_sessions WHERE id = ?"), sid).Scan(&idle); err != nil {
				t.Fatal(err)
			}
			if !idle.After(soon.Add(time.Hour)) {
				t.Errorf("idle expiry after a refresh = %v, want about a week from now (was %v)", idle, soon)
			}
		})
	})
}

// The token API's refresh is the same grant: an expired session ends it there too.
func TestTokenAPIRefreshEndsWithTheSession(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		db, q := rawDB(t, env)
		api := srv.URL + "/api/v1/auth"
		_, _, signup := apiCall(t, "POST", api+"/signup", map[string]any{
			"client_id": clientID, "email": "dee@example.com", "password": "violet-tractor-47",
		}, nil)
		sid, _ := signup["session_id"].(string)
		if _, err := db.Exec(q("UPDATE browser_sessions SET idle_expires_at = ? WHERE id = ?"), time.Now().UTC().Add(-time.Minute), sid); err != nil {
			t.Fatal(err)
		}
		code, _, body := apiCall(t, "POST", api+"/refresh", map[string]any{"refresh_token": signup["refresh_token"]}, nil)
		if code != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("token API refresh through an idle-expired session: %d %v, want 400 invalid_grant", code, body)
		}
	})
}

// An operator's password reset ends every session of the user, and with them every grant.
func TestOperatorPasswordResetEndsSessions(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newFreshFixture(t, env)
		a, _ := f.signedIn(t, newBrowser(t, spaCallback))
		b, _ := f.signedIn(t, newBrowser(t, spaCallback))
		if out := env.cli(t, "sessions", "list", "--user", adaEmail, "--json"); strings.Count(out, `"id"`) != 2 {
			t.Fatalf("sessions before the reset: %s", out)
		}
		_, errOut, code := env.cliCode(t, "new-password-for-ada\n", "users", "set-password", "--email", adaEmail, "--password-stdin")
		if code != 0 || !strings.Contains(errOut, "ended 2 session(s)") {
			t.Fatalf("set-password: exit %d, stderr %q", code, errOut)
		}
		if out := strings.TrimSpace(env.cli(t, "sessions", "list", "--user", adaEmail, "--json")); out != "[]" {
			t.Errorf("sessions after the reset: %s, want none", out)
		}
		for _, tok := range []string{a.RefreshToken, b.RefreshToken} {
			f.mustRefreshFail(t, tok, "refresh after an operator's password reset")
		}
		for _, tok := range []string{a.AccessToken, b.AccessToken} {
			if in := f.introspect(t, tok); in["active"] != false {
				t.Errorf("access token after an operator's password reset: %v", in)
			}
		}
	})
}

// RFC 6749 §6: a refresh may ask for less than the grant holds, never for more.
func TestRefreshScopeNarrowing(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newFreshFixture(t, env)
		tok, _ := f.signedIn(t, newBrowser(t, spaCallback), "openid", "email", "roles", "offline_access")
		whole := "openid email roles offline_access"

		// Wider: refused, and nothing spent.
		code, body := f.refreshWith(t, tok.RefreshToken, "openid profile")
		if code != http.StatusBadRequest || body["error"] != "invalid_scope" {
			t.Fatalf("refresh asking for a scope the grant lacks: %d %v, want 400 invalid_scope", code, body)
		}
		if in := f.introspect(t, tok.AccessToken); in["active"] != true {
			t.Errorf("access token after a refused wider refresh: %v", in)
		}

		// Narrower: the new access token, the response and introspection say the narrower scope.
		body = f.mustRefresh(t, tok.RefreshToken, "openid email")
		if body["scope"] != "openid email" {
			t.Errorf("response scope = %v, want openid email", body["scope"])
		}
		at, _ := body["access_token"].(string)
		_, jwtClaims := verifyJWT(t, jwksKeys(t, f.srv.URL), at)
		if jwtClaims["scope"] != "openid email" || jwtClaims["roles"] != nil {
			t.Errorf("narrowed JWT access token = %v", jwtClaims)
		}
		in := f.introspect(t, at)
		if in["scope"] != "openid email" || in["roles"] != nil {
			t.Errorf("introspection of the narrowed token = %v", in)
		}
		if id := jwtPayload(t, body["id_token"].(string)); id["roles"] != nil || id["email"] != adaEmail {
			t.Errorf("ID token of the narrowed refresh = %v", id)
		}

		// The new refresh token keeps the grant's whole scope (§6), so the next refresh may ask for all of it.
		rt, _ := body["refresh_token"].(string)
		if in := f.introspect(t, rt); in["scope"] != whole {
			t.Errorf("refresh token after a narrowed refresh: scope %v, want %q", in["scope"], whole)
		}
		body = f.mustRefresh(t, rt, "")
		if body["scope"] != whole {
			t.Errorf("refresh without scope after a narrowed one: %v, want %q", body["scope"], whole)
		}
		in = f.introspect(t, body["access_token"].(string))
		if got := claimsOf(in); !slices.Equal(got.Roles, []string{"admin", "editor"}) {
			t.Errorf("roles are back with the roles scope: %v", in)
		}
		// Narrowing away offline_access still rotates the refresh token, which still holds offline_access.
		body = f.mustRefresh(t, body["refresh_token"].(string), "openid")
		if body["scope"] != "openid" || body["refresh_token"] == nil {
			t.Errorf("refresh narrowed to openid: %v", body)
		}
		f.mustRefresh(t, body["refresh_token"].(string), "roles")
	})
}

// A storage failure while reading the user or the session is a server error, never invalid_grant: nothing is
// revoked and the refresh token is not spent.
func TestRefreshStorageFailureSpendsNothing(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newFreshFixture(t, env)
		tok, _ := f.signedIn(t, newBrowser(t, spaCallback))
		sqlite := strings.HasPrefix(env["LATCHKEY_DATABASE_URL"], "sqlite://")
		for _, tc := range []struct {
			name         string
			break_, mend []string
		}{
			// A row that cannot be decoded.
			{"the user cannot be read",
				[]string{`UPDATE users SET roles = 'not json'`}, []string{`UPDATE users SET roles = '["admin","editor"]'`}},
			// A session last active long ago (so the refresh writes to it) in a table that refuses writes.
			{"the session cannot be written", ifElse(sqlite,
				[]string{`UPDATE browser_sessions SET last_active_at = '1999-01-01 00:00:00+00:00'`,
					`CREATE TRIGGER refuse BEFORE UPDATE ON browser_sessions BEGIN SELECT RAISE(ABORT, 'refused'); END`},
				[]string{`UPDATE browser_sessions SET last_active_at = '1999-01-01 00:00:00+00'`,
					`ALTER TABLE browser_sessions ADD CONSTRAINT refuse CHECK (last_active_at < '2000-01-01') NOT VALID`}),
				ifElse(sqlite, []string{`DROP TRIGGER refuse`}, []string{`ALTER TABLE browser_sessions DROP CONSTRAINT refuse`})},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, stmt := range tc.break_ {
					f.exec(t, stmt)
				}
				code, body := f.refreshWith(t, tok.RefreshToken, "")
				for _, stmt := range tc.mend {
					f.exec(t, stmt)
				}
				if code < 500 || body["error"] != "server_error" {
					t.Errorf("refresh: %d %v, want a 5xx server_error", code, body)
				}
				if in := f.introspect(t, tok.AccessToken); in["active"] != true {
					t.Errorf("access token after the failed refresh: %v", in)
				}
			})
		}
		f.mustRefresh(t, tok.RefreshToken, "")
	})
}

func ifElse[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}
