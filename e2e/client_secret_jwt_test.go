package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// hmacAssertion is an RFC 7523 client assertion for client to aud, MACed with secret, as a client library
// builds one.
func hmacAssertion(t testing.TB, alg jose.SignatureAlgorithm, secret, client, aud string) string {
	t.Helper()
	return signAssertion(t, assertionKey{key: []byte(secret), alg: alg}, assertionClaims(client, aud))
}

// sealedSecret is a client's client_secret_sealed column, read behind the server's back.
func sealedSecret(t *testing.T, env testEnv, id string) string {
	t.Helper()
	db, q := rawDB(t, env)
	var sealed string
	if err := db.QueryRow(q("SELECT client_secret_sealed FROM clients WHERE id = ?"), id).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	return sealed
}

func TestClientSecretJWT(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env["LATCHKEY_LOG_LEVEL"] = "debug" // every record a refusal writes, to look for the secret in
		cl := env.createClient(t, "--name", "Backend", "--grant-types", "client_credentials", "--scopes", "read",
			"--token-endpoint-auth-method", "client_secret_jwt")
		if len(cl.ClientSecret) < 64 {
			t.Fatalf("client_secret_jwt client secret %q: want at least 64 characters (an HS512 key)", cl.ClientSecret)
		}
		sealed := sealedSecret(t, env, cl.ClientID)
		if sealed == "" || strings.Contains(sealed, cl.ClientSecret) {
			t.Fatalf("sealed secret %q: want it set and not the secret", sealed)
		}
		logs := &lockedBuffer{}
		srv := env.startServerLoggingTo(t, logs)
		tokenURL := srv.URL + "/oauth2/token"
		cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
		ctx := context.Background()
		secrets := []string{cl.ClientSecret}

		// golang.org/x/oauth2 sends the client_id in the form and the assertion as endpoint parameters.
		token := func(secret string) (*oauth2.Token, error) {
			cfg := clientcredentials.Config{ClientID: cl.ClientID, TokenURL: tokenURL, Scopes: []string{"read"}, AuthStyle: oauth2.AuthStyleInParams,
				EndpointParams: url.Values{"client_assertion_type": {clientAssertionType}, "client_assertion": {hmacAssertion(t, jose.HS256, secret, cl.ClientID, tokenURL)}}}
			return cfg.Token(ctx)
		}
		tok, err := token(cl.ClientSecret)
		if err != nil || !strings.HasPrefix(tok.AccessToken, "lk_at_") {
			t.Fatalf("client credentials with a client_secret_jwt assertion: %v, %v", tok, err)
		}
		if code, _, body := postForm(t, tokenURL, withAssertion(cc, hmacAssertion(t, jose.HS256, cl.ClientSecret, cl.ClientID, srv.URL)), "", ""); code != http.StatusOK {
			t.Errorf("aud the issuer: %d %v, want 200", code, body)
		}

		t.Run("a jti is accepted once", func(t *testing.T) {
			a := hmacAssertion(t, jose.HS256, cl.ClientSecret, cl.ClientID, srv.URL)
			if code, _, body := postForm(t, tokenURL, withAssertion(cc, a), "", ""); code != http.StatusOK {
				t.Fatalf("first use: %d %v", code, body)
			}
			for _, endpoint := range []string{tokenURL, srv.URL + "/oauth2/revoke", srv.URL + "/oauth2/introspect"} {
				form := cc
				if !strings.HasSuffix(endpoint, "/token") {
					form = url.Values{"token": {"x"}}
				}
				// Introspection answers a refused caller request_unauthorized, as fosite's introspection writer does
				// a wrong secret (handlers/oauth/introspect.go).
				want := "invalid_client"
				if strings.HasSuffix(endpoint, "/introspect") {
					want = "request_unauthorized"
				}
				if code, _, body := postForm(t, endpoint, withAssertion(form, a), "", ""); code != http.StatusUnauthorized || body["error"] != want {
					t.Errorf("replayed at %s: %d %v, want 401 %s", endpoint, code, body, want)
				}
			}
		})

		t.Run("40 requests with one assertion at once: exactly one is answered", func(t *testing.T) {
			a := hmacAssertion(t, jose.HS256, cl.ClientSecret, cl.ClientID, tokenURL)
			codes := make([]int, 40)
			var wg sync.WaitGroup
			for i := range codes {
				wg.Go(func() { codes[i], _, _ = postForm(t, tokenURL, withAssertion(cc, a), "", "") })
			}
			wg.Wait()
			count := map[int]int{}
			for _, c := range codes {
				count[c]++
			}
			if count[http.StatusOK] != 1 || count[http.StatusUnauthorized] != len(codes)-1 {
				t.Errorf("answers %v, want one 200 and %d 401", count, len(codes)-1)
			}
		})

		key := newES256Key(t, "k1")
		for _, tc := range []struct {
			name      string
			assertion func() string
		}{
			{"wrong secret", func() string { return hmacAssertion(t, jose.HS256, strings.Repeat("x", 64), cl.ClientID, tokenURL) }},
			{"wrong aud", func() string {
				return hmacAssertion(t, jose.HS256, cl.ClientSecret, cl.ClientID, "https://other.example/oauth2/token")
			}},
			{"expired", func() string {
				c := assertionClaims(cl.ClientID, tokenURL)
				c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-time.Minute).Unix()
				return signAssertion(t, assertionKey{key: []byte(cl.ClientSecret), alg: jose.HS256}, c)
			}},
			{"exp over ten minutes away", func() string {
				c := assertionClaims(cl.ClientID, tokenURL)
				c["exp"] = time.Now().Add(11 * time.Minute).Unix()
				return signAssertion(t, assertionKey{key: []byte(cl.ClientSecret), alg: jose.HS256}, c)
			}},
			{"HS512 for a client registered HS256", func() string {
				return hmacAssertion(t, jose.HS512, cl.ClientSecret, cl.ClientID, tokenURL)
			}},
			{"alg none", func() string {
				h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
				p, _ := json.Marshal(assertionClaims(cl.ClientID, tokenURL))
				return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
			}},
			{"ES256", func() string { return signAssertion(t, key, assertionClaims(cl.ClientID, tokenURL)) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, body := postForm(t, tokenURL, withAssertion(cc, tc.assertion()), "", "")
				if code != http.StatusUnauthorized || body["error"] != "invalid_client" || body["access_token"] != nil {
					t.Errorf("%d %v, want 401 invalid_client", code, body)
				}
			})
		}

		t.Run("the secret itself is not a way in", func(t *testing.T) {
			if code, _, body := postForm(t, tokenURL, cc, cl.ClientID, cl.ClientSecret); code != http.StatusUnauthorized || body["error"] != "invalid_client" {
				t.Errorf("client_secret_basic: %d %v, want 401 invalid_client", code, body)
			}
			post := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}, "client_id": {cl.ClientID}, "client_secret": {cl.ClientSecret}}
			if code, _, body := postForm(t, tokenURL, post, "", ""); code != http.StatusUnauthorized || body["error"] != "invalid_client" {
				t.Errorf("client_secret_post: %d %v, want 401 invalid_client", code, body)
			}
		})

		t.Run("introspection and revocation with an assertion", func(t *testing.T) {
			introspect := func(a string) (int, map[string]any) {
				code, _, body := postForm(t, srv.URL+"/oauth2/introspect", withAssertion(url.Values{"token": {tok.AccessToken}}, a), "", "")
				return code, body
			}
			if code, body := introspect(hmacAssertion(t, jose.HS256, cl.ClientSecret, cl.ClientID, srv.URL)); code != http.StatusOK || body["active"] != true || body["client_id"] != cl.ClientID {
				t.Fatalf("introspection: %d %v, want the token active", code, body)
			}
			if code, body := introspect(hmacAssertion(t, jose.HS256, "wrong-"+cl.ClientSecret, cl.ClientID, srv.URL)); code != http.StatusUnauthorized || body["active"] != nil {
				t.Errorf("introspection with a wrong secret: %d %v, want 401", code, body)
			}
			if code, _, body := postForm(t, srv.URL+"/oauth2/revoke", withAssertion(url.Values{"token": {tok.AccessToken}},
				hmacAssertion(t, jose.HS256, cl.ClientSecret, cl.ClientID, tokenURL)), "", ""); code != http.StatusOK {
				t.Fatalf("revocation: %d %v", code, body)
			}
			if code, _, body := postForm(t, srv.URL+"/oauth2/revoke", withAssertion(url.Values{"token": {tok.AccessToken}},
				hmacAssertion(t, jose.HS256, "wrong-"+cl.ClientSecret, cl.ClientID, tokenURL)), "", ""); code != http.StatusUnauthorized {
				t.Errorf("revocation with a wrong secret: %d %v, want 401", code, body)
			}
			if code, body := introspect(hmacAssertion(t, jose.HS256, cl.ClientSecret, cl.ClientID, tokenURL)); code != http.StatusOK || body["active"] != false {
				t.Errorf("introspection after revocation: %d %v, want inactive", code, body)
			}
		})

		t.Run("a rotated secret is sealed again; the old one stops at once", func(t *testing.T) {
			var rotated struct {
				Secret string `json:"client_secret"`
			}
			if err := json.Unmarshal([]byte(env.cli(t, "clients", "rotate-secret", "--id", cl.ClientID, "--json")), &rotated); err != nil || len(rotated.Secret) < 64 {
				t.Fatalf("rotate-secret: %v, secret %q", err, rotated.Secret)
			}
			secrets = append(secrets, rotated.Secret)
			if _, err := token(cl.ClientSecret); err == nil {
				t.Error("the old secret still signs assertions")
			}
			if _, err := token(rotated.Secret); err != nil {
				t.Errorf("the new secret: %v", err)
			}
			if got := sealedSecret(t, env, cl.ClientID); got == sealed || got == "" {
				t.Errorf("sealed secret after rotation = %q, want a new one", got)
			}
			cl.ClientSecret = rotated.Secret
		})

		t.Run("switching away clears the sealed secret; switching back issues a new one", func(t *testing.T) {
			env.cli(t, "clients", "update", "--id", cl.ClientID, "--token-endpoint-auth-method", "client_secret_basic")
			if got := sealedSecret(t, env, cl.ClientID); got != "" {
				t.Errorf("sealed secret of a client_secret_basic client = %q, want none", got)
			}
			if code, _, body := postForm(t, tokenURL, cc, cl.ClientID, cl.ClientSecret); code != http.StatusOK {
				t.Errorf("client_secret_basic after the switch: %d %v", code, body)
			}
			if _, err := token(cl.ClientSecret); err == nil {
				t.Error("an HMAC assertion authenticates a client_secret_basic client")
			}
			var back struct {
				Secret string `json:"client_secret"`
				Alg    string `json:"token_endpoint_auth_signing_alg"`
			}
			out := env.cli(t, "clients", "update", "--id", cl.ClientID, "--token-endpoint-auth-method", "client_secret_jwt", "--token-endpoint-auth-signing-alg", "HS512", "--json")
			if err := json.Unmarshal([]byte(out), &back); err != nil || len(back.Secret) < 64 || back.Secret == cl.ClientSecret || back.Alg != "HS512" {
				t.Fatalf("switch back: %v; secret %q, alg %q; want a new secret and HS512", err, back.Secret, back.Alg)
			}
			secrets = append(secrets, back.Secret)
			if code, _, body := postForm(t, tokenURL, cc, cl.ClientID, cl.ClientSecret); code != http.StatusUnauthorized {
				t.Errorf("the old secret over HTTP Basic: %d %v, want 401", code, body)
			}
			if code, _, body := postForm(t, tokenURL, withAssertion(cc, hmacAssertion(t, jose.HS512, back.Secret, cl.ClientID, tokenURL)), "", ""); code != http.StatusOK {
				t.Errorf("HS512 with the new secret: %d %v, want 200", code, body)
			}
		})

		srv.stop(t)
		for i, s := range append(secrets, sealed) {
			if strings.Contains(logs.String(), s) {
				t.Errorf("secret %d appears in the server's log", i)
			}
		}
		if !strings.Contains(logs.String(), "invalid_client") {
			t.Error("the log holds no refusal: the check above looked at nothing")
		}
	})
}

func TestClientSecretJWTPushedAuthorization(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		cl := env.createClient(t, "--name", "Web App", "--grant-types", "authorization_code",
			"--redirect-uris", "https://app.example/cb", "--scopes", "openid",
			"--token-endpoint-auth-method", "client_secret_jwt")
		srv := env.startServer(t)
		params := url.Values{
			"response_type": {"code"}, "client_id": {cl.ClientID}, "redirect_uri": {"https://app.example/cb"}, "scope": {"openid"},
			"state": {"state-123456"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
		}
		code, _, body := postForm(t, srv.URL+"/oauth2/par", withAssertion(params, hmacAssertion(t, jose.HS256, cl.ClientSecret, cl.ClientID, srv.URL)), "", "")
		if uri, _ := body["request_uri"].(string); code != http.StatusCreated || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") {
			t.Fatalf("PAR with an assertion: %d %v, want 201 with a request_uri", code, body)
		}
		if code, _, body := postForm(t, srv.URL+"/oauth2/par", withAssertion(params, hmacAssertion(t, jose.HS256, strings.Repeat("y", 64), cl.ClientID, srv.URL)), "", ""); code != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("PAR with a wrong secret: %d %v, want 401 invalid_client", code, body)
		}
	})
}

func TestClientSecretJWTRegistration(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		key := newES256Key(t, "k1")
		for _, tc := range []struct {
			name    string
			args    []string
			mention string
		}{
			{"a public client", []string{"--public", "--grant-types", "authorization_code", "--redirect-uris", "https://app.example/cb"}, "--token-endpoint-auth-method"},
			{"an RSA alg", []string{"--token-endpoint-auth-signing-alg", "RS256"}, "--token-endpoint-auth-signing-alg"},
			{"a JWK Set", []string{"--jwks", jwksFile(t, key)}, "--jwks"},
			{"a secret too short to key HS512", []string{"--secret", strings.Repeat("s", 40)}, "at least 64"},
		} {
			args := append([]string{"clients", "create", "--name", "x", "--token-endpoint-auth-method", "client_secret_jwt"}, tc.args...)
			if _, stderr, code := env.cliCode(t, "", args...); code == 0 || !strings.Contains(stderr, tc.mention) {
				t.Errorf("%s: exit %d, stderr %q; want it refused mentioning %q", tc.name, code, stderr, tc.mention)
			}
		}
		if _, stderr, code := env.cliCode(t, "", "clients", "create", "--name", "x", "--token-endpoint-auth-signing-alg", "HS256"); code == 0 || !strings.Contains(stderr, "--token-endpoint-auth-signing-alg") {
			t.Errorf("HS256 for a client_secret_basic client: exit %d, stderr %q; want it refused", code, stderr)
		}

		// A private_key_jwt client moves to client_secret_jwt: its keys go, its alg resets, it gets a secret.
		pk := env.createClient(t, "--name", "Keys", "--grant-types", "client_credentials", "--scopes", "read",
			"--token-endpoint-auth-method", "private_key_jwt", "--jwks", jwksFile(t, key))
		var moved struct {
			Secret string `json:"client_secret"`
			Method string `json:"token_endpoint_auth_method"`
		}
		out := env.cli(t, "clients", "update", "--id", pk.ClientID, "--token-endpoint-auth-method", "client_secret_jwt", "--jwks", "-", "--json")
		if err := json.Unmarshal([]byte(out), &moved); err != nil || moved.Method != "client_secret_jwt" || len(moved.Secret) < 64 {
			t.Fatalf("clients update to client_secret_jwt = %s (%v), want the method and a new secret", out, err)
		}
		secret := strings.Repeat("operator-chosen-", 5)
		env.cli(t, "clients", "rotate-secret", "--id", pk.ClientID, "--secret", secret)
		srv := env.startServer(t)
		cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
		if code, _, body := postForm(t, srv.URL+"/oauth2/token", withAssertion(cc, signAssertion(t, key, assertionClaims(pk.ClientID, srv.URL+"/oauth2/token"))), "", ""); code != http.StatusUnauthorized {
			t.Errorf("the removed key: %d %v, want 401", code, body)
		}
		if code, _, body := postForm(t, srv.URL+"/oauth2/token", withAssertion(cc, hmacAssertion(t, jose.HS256, secret, pk.ClientID, srv.URL+"/oauth2/token")), "", ""); code != http.StatusOK {
			t.Errorf("the operator's secret: %d %v, want 200", code, body)
		}
	})
}

// A database that cannot record the assertion's jti (SQLite locked past its busy timeout by another process) is
// an outage: 503 with Retry-After, never invalid_client; and the jti is not spent, so the client's retry works.
func TestClientSecretJWTOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	cl := env.createClient(t, "--name", "Backend", "--grant-types", "client_credentials", "--scopes", "read",
		"--token-endpoint-auth-method", "client_secret_jwt")
	srv := env.startServer(t)
	tokenURL := srv.URL + "/oauth2/token"
	form := withAssertion(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}},
		hmacAssertion(t, jose.HS256, cl.ClientSecret, cl.ClientID, tokenURL))

	db, _ := rawDB(t, env)
	ctx := context.Background()
	lock, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	code, hdr, body := postForm(t, tokenURL, form, "", "")
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("while the database is locked: %d %v Retry-After=%q, want 503 with Retry-After", code, body, hdr.Get("Retry-After"))
	}
	if code, _, body := postForm(t, tokenURL, form, "", ""); code != http.StatusOK {
		t.Errorf("the same assertion once the database is back: %d %v, want 200 (the jti was not spent)", code, body)
	}
}
