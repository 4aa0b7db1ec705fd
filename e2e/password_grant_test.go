package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/handlers/throttle"
)

// Bubble's API Connector offers "OAuth2 Password Flow": grant_type=password at the token endpoint. Latchkey serves
// it to first-party clients that register it, and to no other: the same throttle, pools and sessions as the token
// API's login, the tokens the token endpoint issues for every other grant.

const (
	pwCarolPassword = "lantern-orchard-93"
	pwOtherPassword = "quartz-meadow-18"
)

// passwordFixture: a "customers" pool with carol in it; a "default"-pool carol with another password; a Bubble
// backend (confidential, client_secret_post as Bubble sends it), a confidential client_secret_basic app and a
// public app, all first-party in customers and registered for the grant; a first-party app without it and a
// third-party service. The throttle's clock is frozen.
type passwordFixture struct {
	env                     testEnv
	srv                     *server
	clock                   *testClock
	bubble, basic, public   createdClient
	withoutGrant, thirdPart createdClient
}

func newPasswordFixture(t *testing.T, env testEnv) *passwordFixture {
	t.Helper()
	env.cli(t, "pools", "create", "customers", "--default-roles", "customer")
	f := &passwordFixture{env: env, clock: &testClock{now: time.Now()}}
	scopes := "openid profile email roles offline_access"
	f.bubble = env.createClient(t, "--name", "bubble", "--first-party", "--pool", "customers", "--grant-types", "password,refresh_token",
		"--token-endpoint-auth-method", "client_secret_post", "--scopes", scopes)
	f.basic = env.createClient(t, "--name", "backend", "--first-party", "--pool", "customers", "--grant-types", "password", "--scopes", scopes)
	f.public = env.createClient(t, "--name", "mobile", "--first-party", "--public", "--pool", "customers",
		"--grant-types", "password,refresh_token", "--scopes", scopes)
	f.withoutGrant = env.createClient(t, "--name", "web", "--first-party", "--pool", "customers", "--scopes", scopes)
	f.thirdPart = env.createClient(t, "--name", "partner", "--grant-types", "client_credentials", "--scopes", "read")
	env.cli(t, "users", "create", "--pool", "customers", "--email", "carol@example.com", "--password", pwCarolPassword, "--name", "Carol")
	env.cli(t, "users", "create", "--email", "carol@example.com", "--password", pwOtherPassword)
	f.srv = startServerAt(t, env, f.clock, &testLogWriter{t: t})
	return f
}

func (f *passwordFixture) token() string { return f.srv.URL + "/oauth2/token" }

// grant asks for a password grant as c, authenticating the way c is registered.
func (f *passwordFixture) grant(t *testing.T, c createdClient, username, password string, extra url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
	for k, v := range extra {
		form[k] = v
	}
	switch c {
	case f.bubble:
		form.Set("client_id", c.ClientID)
		form.Set("client_secret", c.ClientSecret)
		return postForm(t, f.token(), form, "", "")
	case f.public:
		form.Set("client_id", c.ClientID)
		return postForm(t, f.token(), form, "", "")
	default:
		return postForm(t, f.token(), form, c.ClientID, c.ClientSecret)
	}
}

func TestPasswordGrant(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newPasswordFixture(t, env)

		for _, tc := range []struct {
			name        string
			client      createdClient
			scope       string
			wantRefresh bool
			wantID      bool
			wantScope   string
		}{
			{"Bubble: confidential, secret in the form, every scope of the client", f.bubble, "", true, true, "openid profile email roles offline_access"},
			{"confidential with HTTP Basic, no refresh_token grant", f.basic, "openid email offline_access", false, true, "openid email offline_access"},
			{"public, by client_id, narrower scope", f.public, "profile offline_access", true, false, "profile offline_access"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				extra := url.Values{}
				if tc.scope != "" {
					extra.Set("scope", tc.scope)
				}
				code, hdr, body := f.grant(t, tc.client, "Carol@Example.com", pwCarolPassword, extra)
				if code != http.StatusOK {
					t.Fatalf("password grant: %d %v", code, body)
				}
				if hdr.Get("Cache-Control") != "no-store" || !strings.EqualFold(fmt.Sprint(body["token_type"]), "bearer") || body["access_token"] == nil {
					t.Fatalf("token response: %v %v", hdr, body)
				}
				if _, ok := body["refresh_token"]; ok != tc.wantRefresh {
					t.Errorf("refresh_token present = %v, want %v", ok, tc.wantRefresh)
				}
				if _, ok := body["id_token"]; ok != tc.wantID {
					t.Errorf("id_token present = %v, want %v", ok, tc.wantID)
				}
				if body["scope"] != tc.wantScope {
					t.Errorf("scope = %v, want %q", body["scope"], tc.wantScope)
				}
				at := body["access_token"].(string)

				// The sign-in is a session of the user's, listed and revocable through the token API like a login.
				code, _, list := apiCall(t, "GET", f.srv.URL+"/api/v1/auth/sessions", nil, bearerHeader(at))
				if code != http.StatusOK {
					t.Fatalf("sessions with a password-grant token: %d %v", code, list)
				}
				var current string
				for _, s := range list["sessions"].([]any) {
					if s := s.(map[string]any); s["current"] == true {
						current = s["id"].(string)
					}
				}
				if current == "" {
					t.Fatalf("the password grant's session is not the current one in %v", list)
				}
				if tc.wantRefresh {
					form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body["refresh_token"].(string)}}
					var code int
					var rb map[string]any
					if tc.client == f.public {
						form.Set("client_id", tc.client.ClientID)
						code, _, rb = postForm(t, f.token(), form, "", "")
					} else {
						form.Set("client_id", tc.client.ClientID)
						form.Set("client_secret", tc.client.ClientSecret)
						code, _, rb = postForm(t, f.token(), form, "", "")
					}
					if code != http.StatusOK || rb["access_token"] == nil {
						t.Fatalf("refresh of a password grant: %d %v", code, rb)
					}
					at = rb["access_token"].(string) // the refresh revoked the first one
				}
				if code, _, b := apiCall(t, "DELETE", f.srv.URL+"/api/v1/auth/sessions/"+current, nil, bearerHeader(at)); code != http.StatusOK && code != http.StatusNoContent {
					t.Fatalf("end the session: %d %v", code, b)
				}
				if code, _, _ := apiCall(t, "GET", f.srv.URL+"/userinfo", nil, bearerHeader(at)); code != http.StatusUnauthorized {
					t.Errorf("userinfo after the session ended: %d, want 401", code)
				}
			})
		}

		t.Run("the tokens say who signed in, from the client's pool", func(t *testing.T) {
			code, _, body := f.grant(t, f.bubble, "carol@example.com", pwCarolPassword, nil)
			if code != http.StatusOK {
				t.Fatalf("password grant: %d %v", code, body)
			}
			code, _, ui := apiCall(t, "GET", f.srv.URL+"/userinfo", nil, bearerHeader(body["access_token"].(string)))
			if code != http.StatusOK || ui["email"] != "carol@example.com" || ui["name"] != "Carol" || ui["pool"] != "customers" {
				t.Fatalf("userinfo: %d %v", code, ui)
			}
			if _, ok := ui["roles"].([]any); !ok {
				t.Errorf("roles = %v, want a list (the roles scope is granted)", ui["roles"])
			}
			// The default pool's carol has another password, which is not a customer's.
			if code, _, body := f.grant(t, f.bubble, "carol@example.com", pwOtherPassword, nil); code != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Errorf("another pool's password: %d %v, want 400 invalid_grant", code, body)
			}
		})

		t.Run("wrong, unknown and disabled are one answer", func(t *testing.T) {
			env.cli(t, "users", "create", "--pool", "customers", "--email", "dave@example.com", "--password", pwOtherPassword)
			env.cli(t, "users", "disable", "--pool", "customers", "--email", "dave@example.com")
			var first map[string]any
			for i, creds := range [][2]string{
				{"carol@example.com", "not-her-password"},
				{"nobody@example.com", pwCarolPassword},
				{"dave@example.com", pwOtherPassword}, // the right password of a disabled account
				{"carol@example.com", strings.Repeat("x", 5000)},
			} {
				code, _, body := f.grant(t, f.public, creds[0], creds[1], nil)
				if code != http.StatusBadRequest || body["error"] != "invalid_grant" {
					t.Fatalf("%s: %d %v, want 400 invalid_grant", creds[0], code, body)
				}
				if i == 0 {
					first = body
				} else if fmt.Sprint(body) != fmt.Sprint(first) {
					t.Errorf("%s answered %v, unlike a wrong password's %v", creds[0], body, first)
				}
			}
		})

		t.Run("refused before any password is checked", func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				client createdClient
				extra  url.Values
				user   string
				status int
				err    string
			}{
				{"a first-party client not registered for the grant", f.withoutGrant, nil, "carol@example.com", 400, "unauthorized_client"},
				{"a third-party client", f.thirdPart, nil, "carol@example.com", 400, "unauthorized_client"},
				{"a wrong client secret", createdClient{ClientID: f.basic.ClientID, ClientSecret: "not-the-secret-not-the-secret-xx"}, nil, "carol@example.com", 401, "invalid_client"},
				{"a scope the client may not have", f.bubble, url.Values{"scope": {"openid admin"}}, "carol@example.com", 400, "invalid_scope"},
				{"no username", f.bubble, nil, "", 400, "invalid_request"},
				{"a repeated username", f.bubble, url.Values{"username": {"a@example.com", "b@example.com"}}, "carol@example.com", 400, "invalid_request"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					code, _, body := f.grant(t, tc.client, tc.user, pwCarolPassword, tc.extra)
					if code != tc.status || body["error"] != tc.err {
						t.Errorf("%d %v, want %d %s", code, body, tc.status, tc.err)
					}
				})
			}
		})

		t.Run("a client made third-party behind the rules' back is refused at the endpoint", func(t *testing.T) {
			sneaky := env.createClient(t, "--name", "sneaky", "--first-party", "--pool", "customers", "--grant-types", "password")
			execSQL(t, env, "UPDATE clients SET first_party = ? WHERE id = ?", false, sneaky.ClientID)
			code, _, body := postForm(t, f.token(), url.Values{"grant_type": {"password"}, "username": {"carol@example.com"},
				"password": {pwCarolPassword}}, sneaky.ClientID, sneaky.ClientSecret)
			if code != http.StatusBadRequest || body["error"] != "unauthorized_client" || !strings.Contains(fmt.Sprint(body["error_description"]), "first-party") {
				t.Errorf("%d %v, want 400 unauthorized_client naming first-party apps", code, body)
			}
		})

		t.Run("discovery lists the grant", func(t *testing.T) {
			_, _, raw := get(t, f.srv.URL+"/.well-known/openid-configuration")
			if !strings.Contains(fmt.Sprint(mustJSON(t, raw)["grant_types_supported"]), "password") {
				t.Errorf("grant_types_supported = %v", mustJSON(t, raw)["grant_types_supported"])
			}
		})
	})
}

func TestPasswordGrantIsFirstPartyOnlyAtRegistration(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		before := strings.Count(env.cli(t, "clients", "list", "--json"), `"client_id"`)
		env.refused(t, 1, []string{"--grant-types", `"password" is only for first-party apps`},
			"clients", "create", "--name", "bubble", "--grant-types", "password,refresh_token")
		env.refused(t, 1, []string{"--grant-types", `"password" is only for first-party apps`},
			"clients", "create", "--name", "spa", "--public", "--grant-types", "password")
		if after := strings.Count(env.cli(t, "clients", "list", "--json"), `"client_id"`); after != before {
			t.Errorf("refused registrations stored %d clients", after-before)
		}
		env.createClient(t, "--name", "bubble", "--first-party", "--grant-types", "password,refresh_token")
	})
}

// 40 guesses at once get the account's free attempts checked and 429 for the rest, as the token API's login does;
// they count on the same keys, so a burst at one is felt at the other.
func TestPasswordGrantBurstEvaluatesOnlyTheFreeAttempts(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newPasswordFixture(t, env)
		free := throttle.DefaultAccountPolicy.Free
		answers, counts := burst(t, 40, http.DefaultClient, func(i int) *http.Request {
			form := url.Values{"grant_type": {"password"}, "client_id": {f.bubble.ClientID}, "client_secret": {f.bubble.ClientSecret},
				"username": {"carol@example.com"}, "password": {fmt.Sprintf("wrong-guess-%d", i)}}
			req, _ := http.NewRequest(http.MethodPost, f.token(), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		})
		wantBurst(t, "40 parallel wrong passwords", counts, http.StatusBadRequest, free)
		for _, a := range answers {
			if a.status == http.StatusTooManyRequests && a.body["error"] != "slow_down" {
				t.Fatalf("a throttled answer: %v, want error slow_down", a.body)
			}
		}
		// The right password is refused while the account is blocked, here and at the token API.
		code, hdr, body := f.grant(t, f.public, "carol@example.com", pwCarolPassword, nil)
		if code != http.StatusTooManyRequests || hdr.Get("Retry-After") != "1" || body["error"] != "slow_down" {
			t.Fatalf("right password during the block: %d Retry-After=%q %v", code, hdr.Get("Retry-After"), body)
		}
		code, _, body = apiCall(t, "POST", f.srv.URL+"/api/v1/auth/login",
			map[string]any{"client_id": f.withoutGrant.ClientID, "email": "carol@example.com", "password": pwCarolPassword}, nil)
		if code != http.StatusTooManyRequests {
			t.Fatalf("token API login during the block: %d %v", code, body)
		}
		f.clock.Advance(throttle.DefaultAccountPolicy.Base)
		if code, _, body := f.grant(t, f.public, "carol@example.com", pwCarolPassword, nil); code != http.StatusOK {
			t.Fatalf("right password after the block: %d %v", code, body)
		}
		if code, _, body := f.grant(t, f.public, "carol@example.com", "wrong-again", nil); code != http.StatusBadRequest {
			t.Fatalf("a wrong password after a success: %d %v, want 400 (count reset)", code, body)
		}
	})
}

// A store that fails is a fault, never invalid_grant: a throttle that cannot be consulted is 503 with Retry-After
// (the throttle never fails open); a table gone under the sign-in is server_error, or 503 when storage could not
// be reached (the token endpoint's rule for every grant).
func TestPasswordGrantStoreFailuresAreFaults(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newPasswordFixture(t, env)
		fault := func(what string) {
			t.Helper()
			code, hdr, body := f.grant(t, f.bubble, "carol@example.com", pwCarolPassword, nil)
			ok := (code == http.StatusInternalServerError && body["error"] == "server_error") ||
				(code == http.StatusServiceUnavailable && body["error"] == "temporarily_unavailable" && hdr.Get("Retry-After") != "")
			if !ok {
				t.Fatalf("%s: %d Retry-After=%q %v, want 500 server_error or 503 with Retry-After", what, code, hdr.Get("Retry-After"), body)
			}
		}
		execSQL(t, env, "ALTER TABLE oauth2_access RENAME TO oauth2_access_away")
		fault("access tokens cannot be stored")
		execSQL(t, env, "ALTER TABLE oauth2_access_away RENAME TO oauth2_access")
		execSQL(t, env, "ALTER TABLE browser_sessions RENAME TO browser_sessions_away")
		fault("sessions cannot be stored")
		execSQL(t, env, "ALTER TABLE browser_sessions_away RENAME TO browser_sessions")
		if code, _, body := f.grant(t, f.bubble, "carol@example.com", pwCarolPassword, nil); code != http.StatusOK {
			t.Fatalf("once the store is back: %d %v", code, body)
		}

		execSQL(t, env, "DROP TABLE login_throttle")
		code, hdr, body := f.grant(t, f.bubble, "carol@example.com", pwCarolPassword, nil)
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || body["error"] != "temporarily_unavailable" {
			t.Fatalf("throttle unavailable: %d Retry-After=%q %v, want 503 temporarily_unavailable", code, hdr.Get("Retry-After"), body)
		}
	})
}
