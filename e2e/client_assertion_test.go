package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkey/latchkey/models"
)

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionKey is a client's signing key, its kid and alg.
type assertionKey struct {
	key any
	kid string
	alg jose.SignatureAlgorithm
}

func newES256Key(t testing.TB, kid string) assertionKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return assertionKey{key: k, kid: kid, alg: jose.ES256}
}

// jwksFile writes the public JWK Set of keys to a file and returns "@path", as --jwks takes it.
func jwksFile(t testing.TB, keys ...assertionKey) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.key.(*ecdsa.PrivateKey).PublicKey, KeyID: k.kid, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.(interface{ TempDir() string }).TempDir(), "jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return "@" + path
}

// assertionClaims are an RFC 7523 client assertion's claims for client to aud, live for a minute.
func assertionClaims(client, aud string) map[string]any {
	now := time.Now()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return map[string]any{
		"iss": client, "sub": client, "aud": aud, "jti": base64.RawURLEncoding.EncodeToString(b),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	}
}

// signAssertion signs claims with k, built with go-jose as a client library does.
func signAssertion(t testing.TB, k assertionKey, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// withAssertion adds a client assertion to form.
func withAssertion(form url.Values, assertion string) url.Values {
	out := url.Values{}
	for k, v := range form {
		out[k] = v
	}
	out.Set("client_assertion_type", clientAssertionType)
	out.Set("client_assertion", assertion)
	return out
}

func TestPrivateKeyJWT(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		key := newES256Key(t, "k1")
		cl := env.createClient(t, "--name", "Backend", "--grant-types", "client_credentials", "--scopes", "read",
			"--token-endpoint-auth-method", "private_key_jwt", "--jwks", jwksFile(t, key))
		if cl.ClientSecret != "" {
			t.Errorf("a private_key_jwt client was given a secret")
		}
		srv := env.startServer(t)
		tokenURL := srv.URL + "/oauth2/token"
		cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}

		var accessToken string
		for _, aud := range []string{tokenURL, srv.URL} {
			code, _, body := postForm(t, tokenURL, withAssertion(cc, signAssertion(t, key, assertionClaims(cl.ClientID, aud))), "", "")
			if code != http.StatusOK || body["access_token"] == nil {
				t.Fatalf("client_credentials with an assertion for aud %s: %d %v, want 200 with an access token", aud, code, body)
			}
			accessToken = body["access_token"].(string)
		}

		t.Run("a jti is accepted once", func(t *testing.T) {
			a := signAssertion(t, key, assertionClaims(cl.ClientID, tokenURL))
			if code, _, body := postForm(t, tokenURL, withAssertion(cc, a), "", ""); code != http.StatusOK {
				t.Fatalf("first use: %d %v", code, body)
			}
			// fosite says jti_known; RFC 7523 §3.2 invalid_client (provider.assertionErrors).
			code, _, body := postForm(t, tokenURL, withAssertion(cc, a), "", "")
			if desc, _ := body["error_description"].(string); code != http.StatusUnauthorized || body["error"] != "invalid_client" || !strings.Contains(desc, "jti") {
				t.Errorf("replayed assertion: %d %v, want 401 invalid_client about the jti", code, body)
			}
			// And at another endpoint: the jti is spent everywhere.
			if code, _, body := postForm(t, srv.URL+"/oauth2/revoke", withAssertion(url.Values{"token": {"x"}}, a), "", ""); code != http.StatusUnauthorized || body["error"] != "invalid_client" {
				t.Errorf("replayed assertion at revocation: %d %v, want 401 invalid_client", code, body)
			}
		})

		t.Run("40 requests with one assertion at once: exactly one is served", func(t *testing.T) {
			a := signAssertion(t, key, assertionClaims(cl.ClientID, srv.URL))
			endpoints := []string{tokenURL, srv.URL + "/oauth2/introspect", srv.URL + "/oauth2/revoke"}
			codes := make([]int, 40)
			var wg sync.WaitGroup
			for i := range codes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					form := cc
					if i%3 != 0 {
						form = url.Values{"token": {"not-a-token"}}
					}
					codes[i], _, _ = postForm(t, endpoints[i%3], withAssertion(form, a), "", "")
				}()
			}
			wg.Wait()
			ok := 0
			for _, c := range codes {
				switch c {
				case http.StatusOK:
					ok++
				case http.StatusUnauthorized:
				default:
					t.Errorf("a replay answered %d, want 401", c)
				}
			}
			if ok != 1 {
				t.Errorf("%d of 40 concurrent uses of one assertion were served (%v), want exactly 1", ok, codes)
			}
		})

		other := newES256Key(t, "k2")
		hsKey, _ := json.Marshal(jose.JSONWebKey{Key: &key.key.(*ecdsa.PrivateKey).PublicKey, KeyID: "k1", Use: "sig"})
		for _, tc := range []struct {
			name      string
			assertion func() string
			want      string // the error answered
		}{
			{"wrong aud", func() string {
				return signAssertion(t, key, assertionClaims(cl.ClientID, "https://other.example/oauth2/token"))
			}, "invalid_client"},
			{"aud of another endpoint", func() string {
				return signAssertion(t, key, assertionClaims(cl.ClientID, srv.URL+"/oauth2/introspect"))
			}, "invalid_client"},
			{"expired", func() string {
				c := assertionClaims(cl.ClientID, tokenURL)
				c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-time.Minute).Unix()
				return signAssertion(t, key, c)
			}, "invalid_client"},
			{"exp over ten minutes away", func() string {
				c := assertionClaims(cl.ClientID, tokenURL)
				c["exp"] = time.Now().Add(11 * time.Minute).Unix()
				return signAssertion(t, key, c)
			}, "invalid_client"},
			{"no exp", func() string {
				c := assertionClaims(cl.ClientID, tokenURL)
				delete(c, "exp")
				return signAssertion(t, key, c)
			}, "invalid_client"},
			{"no jti", func() string {
				c := assertionClaims(cl.ClientID, tokenURL)
				delete(c, "jti")
				return signAssertion(t, key, c)
			}, "invalid_client"},
			{"iss is another client", func() string {
				c := assertionClaims(cl.ClientID, tokenURL)
				c["iss"] = "someone-else"
				return signAssertion(t, key, c)
			}, "invalid_client"},
			{"signed by a key the client did not register, under its kid", func() string {
				return signAssertion(t, assertionKey{key: other.key, kid: "k1", alg: jose.ES256}, assertionClaims(cl.ClientID, tokenURL))
			}, "invalid_client"},
			// fosite says invalid_request (its findPublicKey); RFC 7523 §3.2 invalid_client.
			{"unknown kid", func() string { return signAssertion(t, other, assertionClaims(cl.ClientID, tokenURL)) }, "invalid_client"},
			{"alg none", func() string {
				h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"k1"}`))
				p, _ := json.Marshal(assertionClaims(cl.ClientID, tokenURL))
				return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
			}, "invalid_client"},
			{"HS256 keyed with the public key", func() string {
				return signAssertion(t, assertionKey{key: hsKey, kid: "k1", alg: jose.HS256}, assertionClaims(cl.ClientID, tokenURL))
			}, "invalid_client"},
			{"not a JWT", func() string { return "not-a-jwt" }, "invalid_client"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, body := postForm(t, tokenURL, withAssertion(cc, tc.assertion()), "", "")
				if code != http.StatusUnauthorized || body["error"] != tc.want || body["access_token"] != nil {
					t.Errorf("%d %v, want 401 %s", code, body, tc.want)
				}
			})
		}

		t.Run("a key taken out of the JWK Set stops working at once", func(t *testing.T) {
			next := newES256Key(t, "k3")
			env.cli(t, "clients", "update", "--id", cl.ClientID, "--jwks", jwksFile(t, next)) // another node's CLI
			if code, _, body := postForm(t, tokenURL, withAssertion(cc, signAssertion(t, key, assertionClaims(cl.ClientID, tokenURL))), "", ""); code != http.StatusUnauthorized {
				t.Errorf("the removed key: %d %v, want 401", code, body)
			}
			if code, _, body := postForm(t, tokenURL, withAssertion(cc, signAssertion(t, next, assertionClaims(cl.ClientID, tokenURL))), "", ""); code != http.StatusOK {
				t.Errorf("the new key: %d %v, want 200", code, body)
			}
			env.cli(t, "clients", "update", "--id", cl.ClientID, "--jwks", jwksFile(t, key))
		})

		t.Run("a client secret is not a way in", func(t *testing.T) {
			for _, pass := range []string{"", "guess"} {
				if code, _, body := postForm(t, tokenURL, cc, cl.ClientID, pass); code != http.StatusUnauthorized || body["error"] != "invalid_client" {
					t.Errorf("HTTP Basic with secret %q: %d %v, want 401 invalid_client", pass, code, body)
				}
			}
		})

		t.Run("introspection and revocation with an assertion", func(t *testing.T) {
			introspect := func(a string) (int, map[string]any) {
				code, _, body := postForm(t, srv.URL+"/oauth2/introspect", withAssertion(url.Values{"token": {accessToken}}, a), "", "")
				return code, body
			}
			if code, body := introspect(signAssertion(t, key, assertionClaims(cl.ClientID, srv.URL))); code != http.StatusOK || body["active"] != true || body["client_id"] != cl.ClientID {
				t.Fatalf("introspection: %d %v, want the token active", code, body)
			}
			// The endpoint's own URL is an audience there, and only there.
			if code, body := introspect(signAssertion(t, key, assertionClaims(cl.ClientID, srv.URL+"/oauth2/introspect"))); code != http.StatusOK || body["active"] != true {
				t.Errorf("introspection with aud the introspection endpoint: %d %v, want the token active", code, body)
			}
			if code, body := introspect(signAssertion(t, key, assertionClaims(cl.ClientID, srv.URL+"/oauth2/revoke"))); code != http.StatusUnauthorized || body["active"] != nil {
				t.Errorf("introspection with aud the revocation endpoint: %d %v, want 401", code, body)
			}
			if code, body := introspect(signAssertion(t, key, assertionClaims(cl.ClientID, "https://other.example"))); code != http.StatusUnauthorized || body["active"] != nil {
				t.Errorf("introspection with a wrong aud: %d %v, want 401", code, body)
			}
			if code, body := introspect(signAssertion(t, other, assertionClaims(cl.ClientID, srv.URL))); code != http.StatusUnauthorized || body["active"] != nil {
				t.Errorf("introspection with an unknown key: %d %v, want 401", code, body)
			}
			code, _, body := postForm(t, srv.URL+"/oauth2/introspect", withAssertion(url.Values{"token": {accessToken}},
				signAssertion(t, key, assertionClaims(cl.ClientID, srv.URL))), cl.ClientID, "x")
			if code != http.StatusBadRequest {
				t.Errorf("introspection with an assertion and HTTP Basic: %d %v, want 400", code, body)
			}
			if code, _, body := postForm(t, srv.URL+"/oauth2/revoke", withAssertion(url.Values{"token": {accessToken}},
				signAssertion(t, key, assertionClaims(cl.ClientID, tokenURL))), "", ""); code != http.StatusOK {
				t.Fatalf("revocation: %d %v", code, body)
			}
			if code, body := introspect(signAssertion(t, key, assertionClaims(cl.ClientID, tokenURL))); code != http.StatusOK || body["active"] != false {
				t.Errorf("introspection after revocation: %d %v, want inactive", code, body)
			}
		})
	})
}

func TestPrivateKeyJWTPushedAuthorization(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		key := newES256Key(t, "web")
		cl := env.createClient(t, "--name", "Web App", "--grant-types", "authorization_code",
			"--redirect-uris", "https://app.example/cb", "--scopes", "openid",
			"--token-endpoint-auth-method", "private_key_jwt", "--jwks", jwksFile(t, key))
		srv := env.startServer(t)
		params := url.Values{
			"response_type": {"code"}, "client_id": {cl.ClientID}, "redirect_uri": {"https://app.example/cb"}, "scope": {"openid"},
			"state": {"state-123456"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
		}
		code, _, body := postForm(t, srv.URL+"/oauth2/par", withAssertion(params, signAssertion(t, key, assertionClaims(cl.ClientID, srv.URL))), "", "")
		if uri, _ := body["request_uri"].(string); code != http.StatusCreated || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") {
			t.Fatalf("PAR with an assertion: %d %v, want 201 with a request_uri", code, body)
		}
		if code, _, body := postForm(t, srv.URL+"/oauth2/par", withAssertion(params, signAssertion(t, newES256Key(t, "web"), assertionClaims(cl.ClientID, srv.URL))), "", ""); code != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("PAR with an assertion by another key: %d %v, want 401 invalid_client", code, body)
		}
	})
}

func TestPrivateKeyJWTRegistration(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		key := newES256Key(t, "k1")
		priv, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.key, KeyID: "k1"}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name    string
			args    []string
			mention string
		}{
			{"a private key", []string{"--jwks", string(priv)}, "--jwks: key 0: JWK has the private or symmetric key member"},
			{"no keys", []string{}, "--jwks: is required for private_key_jwt"},
			{"a secret", []string{"--jwks", jwksFile(t, key), "--secret", strings.Repeat("s", 40)}, "--secret makes no sense"},
			{"an HMAC alg", []string{"--jwks", jwksFile(t, key), "--token-endpoint-auth-signing-alg", "HS256"}, "--token-endpoint-auth-signing-alg"},
		} {
			args := append([]string{"clients", "create", "--name", "x", "--grant-types", "client_credentials", "--token-endpoint-auth-method", "private_key_jwt"}, tc.args...)
			if _, stderr, code := env.cliCode(t, "", args...); code == 0 || !strings.Contains(stderr, tc.mention) {
				t.Errorf("%s: exit %d, stderr %q; want it refused mentioning %q", tc.name, code, stderr, tc.mention)
			}
		}

		// A client registered with a secret moves to private_key_jwt; its secret then no longer works.
		cl := env.createClient(t, "--name", "Backend", "--grant-types", "client_credentials", "--scopes", "read")
		out := env.cli(t, "clients", "update", "--id", cl.ClientID, "--token-endpoint-auth-method", "private_key_jwt", "--jwks", jwksFile(t, key), "--json")
		var shown map[string]any
		if err := json.Unmarshal([]byte(out), &shown); err != nil {
			t.Fatal(err)
		}
		if shown["token_endpoint_auth_method"] != "private_key_jwt" || shown["jwks"] == nil {
			t.Errorf("clients update --json = %s, want private_key_jwt and the JWK Set", out)
		}
		srv := env.startServer(t)
		cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
		if code, _, body := postForm(t, srv.URL+"/oauth2/token", cc, cl.ClientID, cl.ClientSecret); code != http.StatusUnauthorized {
			t.Errorf("the old secret: %d %v, want 401", code, body)
		}
		if code, _, body := postForm(t, srv.URL+"/oauth2/token", withAssertion(cc, signAssertion(t, key, assertionClaims(cl.ClientID, srv.URL+"/oauth2/token"))), "", ""); code != http.StatusOK {
			t.Errorf("an assertion: %d %v, want 200", code, body)
		}

		_, _, raw := get(t, srv.URL+"/.well-known/openid-configuration")
		meta := mustJSON(t, raw)
		for _, field := range []string{"token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
			methods, _ := meta[field].([]any)
			if !slices.Contains(methods, any("private_key_jwt")) || !slices.Contains(methods, any("client_secret_jwt")) {
				t.Errorf("%s = %v, want private_key_jwt and client_secret_jwt", field, methods)
			}
		}
		want, _ := json.Marshal(slices.Concat(models.ClientAssertionSigningAlgs, models.ClientSecretJWTSigningAlgs))
		for _, field := range []string{"token_endpoint_auth_signing_alg_values_supported", "introspection_endpoint_auth_signing_alg_values_supported", "revocation_endpoint_auth_signing_alg_values_supported"} {
			if got, _ := json.Marshal(meta[field]); string(got) != string(want) {
				t.Errorf("%s = %s, want %s (what a registration may use)", field, got, want)
			}
		}
	})
}
