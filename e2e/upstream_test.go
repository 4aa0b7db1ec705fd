package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"
)

// Sign in with another provider, end to end: the upstream is a second Latchkey (real OpenID Connect, its own
// database and secret), or an httptest server imitating GitHub's three endpoints.

// secondDB is another database of the same kind as env's, for a second server.
func secondDB(t *testing.T, env testEnv) string {
	if strings.HasPrefix(env["LATCHKEY_DATABASE_URL"], "sqlite://") {
		return databases()[0].url(t)
	}
	return freshPostgresSchema(t)
}

// upstreamFixture is a downstream Latchkey (the edge, with its SPA) whose default pool signs in with provider
// "corp", another Latchkey.
type upstreamFixture struct {
	*edge
	up *server
}

func newUpstreamFixture(t *testing.T, env testEnv) *upstreamFixture {
	t.Helper()
	down := newEdge(t, env)
	// Here: ada with a password and a verified email (so linking her keeps her password), carol and erin with
	// passwords and unverified emails. Upstream: ada and erin verified, carol not.
	env.cli(t, "users", "delete", "--email", adaEmail)
	env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword, "--roles", "admin,editor",
		"--name", "Ada Lovelace", "--claims", "plan=pro", "--email-verified")
	env.cli(t, "users", "create", "--email", "erin@example.com", "--password", "erin downstream pw")
	upEnv := newTestEnv(t, secondDB(t, env))
	upEnv["LATCHKEY_SECRET"] = "upstream-system-secret-0123456789abcdef"
	upEnv.cli(t, "users", "create", "--email", adaEmail, "--password", "ada upstream pw", "--email-verified")
	upEnv.cli(t, "users", "create", "--email", "carol@example.com", "--password", "carol upstream pw") // unverified
	upEnv.cli(t, "users", "create", "--email", "erin@example.com", "--password", "erin upstream pw", "--email-verified")
	upEnv.cli(t, "users", "create", "--email", "bob@example.com", "--password", "bob upstream pw", "--email-verified",
		"--name", "Bob Upstream", "--roles", "staff")
	up := upEnv.startServer(t)
	c := upEnv.createClient(t, "--name", "Downstream Latchkey", "--first-party", "--grant-types", "authorization_code",
		"--redirect-uris", down.srv.URL+"/login/upstream/callback", "--scopes", "openid email profile roles")
	env.cli(t, "users", "create", "--email", "carol@example.com", "--password", "carol downstream pw")
	env.cli(t, "providers", "create", "--id", "corp", "--kind", "oidc", "--display-name", "Corp", "--issuer-url", up.URL,
		"--client-id", c.ClientID, "--client-secret", c.ClientSecret, "--scopes", "openid email profile roles",
		"--claim-roles", "roles")
	return &upstreamFixture{edge: down, up: up}
}

// startUpstream opens the SPA's authorization request in b and presses the "Sign in with <name>" button of the
// sign-in page; it returns where the browser ends up (the upstream's sign-in page) and the request's PKCE verifier.
func (f *upstreamFixture) startUpstream(t *testing.T, b *browserClient, provider string) (page, oauth2.Config, string) {
	t.Helper()
	conf := f.scoped("openid", "email", "profile", "roles")
	verifier := oauth2.GenerateVerifier()
	p := b.get(f.authURL(conf, randomString(t), verifier))
	for _, form := range formsOf(t, p.body) {
		if form.action == "/login/upstream/"+provider {
			return post(b, p, form.action, form.values), conf, verifier
		}
	}
	t.Fatalf("no button for provider %s on the sign-in page:\n%s", provider, p.body)
	return page{}, conf, verifier
}

// signInUpstream signs in on the upstream's page (as email) and, back downstream, allows consent.
func (f *upstreamFixture) signInUpstream(t *testing.T, b *browserClient, p page, email, password string) page {
	t.Helper()
	if !strings.HasPrefix(p.url.String(), f.up.URL) || !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("not at the upstream's sign-in page: %v (%d)\n%s", p.url, p.status, p.body)
	}
	p = b.submit(p, map[string]string{"email": email, "password": password})
	if strings.Contains(p.body, `value="allow"`) {
		p = b.submit(p, nil, "decision", "allow")
	}
	return p
}

// federated runs the whole flow for email and returns the downstream ID token's claims.
func (f *upstreamFixture) federated(t *testing.T, email, password string) map[string]any {
	t.Helper()
	b := newBrowser(t, spaCallback)
	p, conf, verifier := f.startUpstream(t, b, "corp")
	q := callback(t, f.signInUpstream(t, b, p, email, password))
	_, claims := f.exchange(t, conf, q.Get("code"), verifier)
	return claims
}

// toCallback starts a sign-in with corp in b, which stops at the callback cb, signing in upstream (as ada) if
// asked, and returns the page that reached the callback.
func (f *upstreamFixture) toCallback(t *testing.T, b *browserClient, cb string) page {
	t.Helper()
	p, _, _ := f.startUpstream(t, b, "corp")
	if strings.Contains(p.body, `name="password"`) {
		p = b.submit(p, map[string]string{"email": adaEmail, "password": "ada upstream pw"})
	}
	if p.url == nil || !strings.HasPrefix(p.url.String(), cb) {
		t.Fatalf("did not reach the callback: %v\n%s", p.url, p.body)
	}
	return p
}

func userID(t *testing.T, env testEnv, email string) string {
	t.Helper()
	var u struct {
		ID            string `json:"id"`
		EmailVerified bool   `json:"email_verified"`
	}
	if err := json.Unmarshal([]byte(env.cli(t, "users", "get", "--email", email, "--json")), &u); err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func wantRefusal(t *testing.T, p page, status int, text string) {
	t.Helper()
	if p.status != status || !strings.Contains(p.body, text) || !strings.Contains(p.body, "<h1>") {
		t.Fatalf("want our %d page saying %q; got %d at %v:\n%s", status, text, p.status, p.url, p.body)
	}
}

func TestUpstreamOIDC(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newUpstreamFixture(t, env)

		t.Run("links by a verified email, and signs in as that user again", func(t *testing.T) {
			for range 2 {
				claims := f.federated(t, adaEmail, "ada upstream pw")
				if claims["sub"] != userID(t, env, adaEmail) || claims["email"] != adaEmail {
					t.Fatalf("claims = %v; want the downstream ada", claims)
				}
				if amr, _ := claims["amr"].([]any); len(amr) != 1 || amr[0] != "fed" {
					t.Errorf("amr = %v; want [fed]", claims["amr"])
				}
			}
			// Her password still works, with amr pwd.
			if _, claims := f.signedIn(t, newBrowser(t, spaCallback), "openid"); claims["amr"].([]any)[0] != "pwd" {
				t.Errorf("password sign-in amr = %v", claims["amr"])
			}
		})

		t.Run("refuses to link by an unverified email", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			p, _, _ := f.startUpstream(t, b, "corp")
			wantRefusal(t, f.signInUpstream(t, b, p, "carol@example.com", "carol upstream pw"), http.StatusForbidden, "cannot be linked")
		})

		t.Run("creates a user only when the pool allows sign-up", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			p, _, _ := f.startUpstream(t, b, "corp")
			wantRefusal(t, f.signInUpstream(t, b, p, "bob@example.com", "bob upstream pw"), http.StatusForbidden, "no account here")
			env.cli(t, "pools", "update", "--name", "default", "--signup", "true")
			claims := f.federated(t, "bob@example.com", "bob upstream pw")
			roles, _ := claims["roles"].([]any)
			if claims["email"] != "bob@example.com" || claims["email_verified"] != true || claims["name"] != "Bob Upstream" ||
				len(roles) != 1 || roles[0] != "staff" || claims["sub"] != userID(t, env, "bob@example.com") {
				t.Fatalf("new user's claims = %v", claims)
			}
		})

		t.Run("state is single-use, bound to the browser, and never forged", func(t *testing.T) {
			cb := f.srv.URL + "/login/upstream/callback"
			b := newBrowser(t, cb) // stops at the callback, which it is handed, and at the SPA's
			b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
				if strings.HasPrefix(req.URL.String(), cb) || strings.HasPrefix(req.URL.String(), spaCallback) {
					return errReachedApp
				}
				return nil
			}
			p := f.toCallback(t, b, cb)
			good := p.url.String()
			forged := cb + "?" + url.Values{"code": {p.url.Query().Get("code")}, "state": {"forged"}}.Encode()
			wantRefusal(t, b.get(forged), http.StatusBadRequest, "has expired")
			// Another browser with the real state: refused, and the state is burnt for this one too.
			wantRefusal(t, newBrowser(t, spaCallback).get(good), http.StatusBadRequest, "has expired")
			wantRefusal(t, b.get(good), http.StatusBadRequest, "has expired")

			// Once in the right browser, then replayed.
			good = f.toCallback(t, b, cb).url.String()
			if p = b.get(good); p.url == nil || !strings.HasPrefix(p.url.String(), spaCallback) {
				t.Fatalf("first use: %d %v\n%s", p.status, p.url, p.body)
			}
			wantRefusal(t, b.get(good), http.StatusBadRequest, "has expired")
		})

		t.Run("upstream errors and bad codes are our pages", func(t *testing.T) {
			cb := f.srv.URL + "/login/upstream/callback"
			b := newBrowser(t, cb)
			state := f.toCallback(t, b, cb).url.Query().Get("state")
			denied := cb + "?" + url.Values{"error": {"access_denied"}, "state": {state}}.Encode()
			wantRefusal(t, b.get(denied), http.StatusForbidden, "did not sign you in")

			state = f.toCallback(t, b, cb).url.Query().Get("state")
			bad := cb + "?" + url.Values{"code": {"not-a-code"}, "state": {state}}.Encode()
			wantRefusal(t, b.get(bad), http.StatusBadRequest, "did not confirm who you are")
		})
	})
}

// fakeGitHub imitates GitHub's authorize, token and user API endpoints for one user, checking the client's
// credentials and PKCE.
type fakeGitHub struct {
	*httptest.Server
	mu         sync.Mutex
	challenges map[string]string // code -> code_challenge
	primary    string
	verified   bool
}

func newFakeGitHub(t *testing.T, clientID, secret string) *fakeGitHub {
	g := &fakeGitHub{challenges: map[string]string{}, primary: "grace@example.com", verified: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != clientID || q.Get("code_challenge_method") != "S256" {
			http.Error(w, "bad request", 400)
			return
		}
		code := randomString(t)
		g.mu.Lock()
		g.challenges[code] = q.Get("code_challenge")
		g.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		g.mu.Lock()
		challenge, ok := g.challenges[r.PostForm.Get("code")]
		delete(g.challenges, r.PostForm.Get("code"))
		g.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		w.Header().Set("Content-Type", "application/json")
		if !ok || r.PostForm.Get("client_id") != clientID || r.PostForm.Get("client_secret") != secret ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != challenge {
			_, _ = w.Write([]byte(`{"error":"bad_verification_code"}`)) // GitHub answers 200
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"gho_test","token_type":"bearer","scope":"read:user,user:email"}`))
	})
	api := func(body func() any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer gho_test" {
				http.Error(w, `{"message":"Bad credentials"}`, 401)
				return
			}
			_ = json.NewEncoder(w).Encode(body())
		}
	}
	mux.HandleFunc("GET /user", api(func() any { return map[string]any{"id": 4242, "login": "grace", "name": "Grace Hopper"} }))
	mux.HandleFunc("GET /user/emails", api(func() any {
		g.mu.Lock()
		defer g.mu.Unlock()
		return []map[string]any{
			{"email": "other@example.com", "primary": false, "verified": true},
			{"email": g.primary, "primary": true, "verified": g.verified},
		}
	}))
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

func TestUpstreamGitHub(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := &upstreamFixture{edge: newEdge(t, env)}
		gh := newFakeGitHub(t, "gh-client", "gh-secret")
		f.up = &server{URL: gh.URL}
		env.cli(t, "pools", "update", "--name", "default", "--signup", "true")
		env.cli(t, "users", "create", "--email", "mallory@example.com", "--password", "mallory pw")
		env.cli(t, "providers", "create", "--id", "github", "--kind", "github", "--display-name", "GitHub",
			"--client-id", "gh-client", "--client-secret", "gh-secret", "--github-auth-url", gh.URL+"/login/oauth/authorize",
			"--github-token-url", gh.URL+"/login/oauth/access_token", "--github-api-url", gh.URL)

		// The fake approves at once: back downstream, consent, tokens for a new user with GitHub's verified email.
		b := newBrowser(t, spaCallback)
		p, conf, verifier := f.startUpstream(t, b, "github")
		if strings.Contains(p.body, `value="allow"`) {
			p = b.submit(p, nil, "decision", "allow")
		}
		_, claims := f.exchange(t, conf, callback(t, p).Get("code"), verifier)
		if claims["email"] != "grace@example.com" || claims["email_verified"] != true || claims["sub"] != userID(t, env, "grace@example.com") {
			t.Fatalf("claims = %v", claims)
		}

		// A primary email GitHub has not verified never links to the user who has it here.
		gh.mu.Lock()
		gh.primary, gh.verified = "mallory@example.com", false
		gh.mu.Unlock()
		env.cli(t, "providers", "update", "--id", "github", "--display-name", "GitHub Enterprise")
		b = newBrowser(t, spaCallback)
		p, _, _ = f.startUpstream(t, b, "github")
		// 4242 is linked to grace already: the link wins over the email (consent is on record: straight back).
		if p.url == nil || !strings.HasPrefix(p.url.String(), spaCallback) {
			t.Fatalf("linked account: %d %v\n%s", p.status, p.url, p.body)
		}
		env.cli(t, "providers", "delete", "--id", "github") // links go with it
		env.cli(t, "providers", "create", "--id", "github", "--kind", "github", "--display-name", "GitHub",
			"--client-id", "gh-client", "--client-secret", "gh-secret", "--github-auth-url", gh.URL+"/login/oauth/authorize",
			"--github-token-url", gh.URL+"/login/oauth/access_token", "--github-api-url", gh.URL)
		p, _, _ = f.startUpstream(t, newBrowser(t, spaCallback), "github")
		wantRefusal(t, p, http.StatusForbidden, "cannot be linked")
	})
}

// The providers commands name bad input by its flag, and never show the client secret.
func TestProvidersCLI(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--id", "x", "--kind", "saml", "--display-name", "X", "--client-id", "c", "--client-secret", "s"}, "--kind"},
			{[]string{"--id", "x", "--kind", "oidc", "--display-name", "X", "--issuer-url", "http://sso.example.com", "--client-id", "c", "--client-secret", "s"}, "--issuer-url: must be https"},
			{[]string{"--id", "x", "--kind", "oidc", "--display-name", "X", "--issuer-url", "https://sso.example.com", "--client-id", "c", "--client-secret", "s", "--scopes", "email"}, "--scopes: must include openid"},
			{[]string{"--id", "x", "--kind", "github", "--display-name", "X", "--client-id", "c"}, "--client-secret"},
			{[]string{"--id", "x", "--kind", "github", "--pool", "nope", "--display-name", "X", "--client-id", "c", "--client-secret", "s"}, "unknown pool"},
		} {
			_, errOut, code := env.cliCode(t, "", append([]string{"providers", "create"}, tc.args...)...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("providers create %v: exit %d, stderr %q; want %q", tc.args, code, errOut, tc.want)
			}
		}
		if _, errOut, code := env.cliCode(t, "", "providers", "create", "--id", "gh", "--kind", "github", "--display-name", "GitHub",
			"--client-id", "c", "--client-secret-stdin"); code == 0 || !strings.Contains(errOut, "no client-secret on standard input") {
			t.Errorf("empty stdin: exit %d, %s", code, errOut)
		}
		_, errOut, code := env.cliCode(t, "very-secret-value\n", "providers", "create", "--id", "gh2", "--kind", "github",
			"--display-name", "GitHub", "--client-id", "c", "--client-secret-stdin")
		out := env.cli(t, "providers", "list", "--json") + env.cli(t, "providers", "list")
		if code != 0 || !strings.Contains(out, `"id": "gh2"`) || strings.Contains(out, "very-secret") || strings.Contains(out, "sealed") {
			t.Errorf("create: %d %s; list:\n%s", code, errOut, out)
		}
	})
}
