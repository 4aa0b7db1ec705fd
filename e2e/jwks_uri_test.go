package e2e

import (
	"crypto/ecdsa"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// keyHost is a client's JWKS host: it publishes the public halves of the keys it is given, and counts requests.
type keyHost struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	body []byte
}

func newKeyHost(t *testing.T, keys ...assertionKey) *keyHost {
	h := &keyHost{}
	h.publish(t, keys...)
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		h.mu.Lock()
		defer h.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(h.body)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *keyHost) publish(t *testing.T, keys ...assertionKey) {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.key.(*ecdsa.PrivateKey).PublicKey, KeyID: k.kid})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.body = b
	h.mu.Unlock()
}

// A client registers its keys by URL; the server fetches them (once, then from its cache), follows a key
// rotation at the client's host, refuses to dial an internal address unless the operator allows it, and answers
// a host that fails with the client's error (401 invalid_client), never a 500.
func TestJWKSURI(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		k1, k2 := newES256Key(t, "k1"), newES256Key(t, "k2")
		host := newKeyHost(t, k1)
		jwksURI := host.URL + "/billing/jwks.json"
		cl := env.createClient(t, "--name", "Backend", "--grant-types", "client_credentials", "--scopes", "read",
			"--token-endpoint-auth-method", "private_key_jwt", "--jwks-uri", jwksURI, "--token-endpoint-auth-signing-alg", "ES256")
		if cl.ClientSecret != "" {
			t.Error("a private_key_jwt client was given a secret")
		}
		var shown map[string]any
		if err := json.Unmarshal([]byte(env.cli(t, "clients", "get", cl.ClientID)), &shown); err != nil || shown["jwks_uri"] != jwksURI || shown["jwks"] != nil {
			t.Fatalf("clients get: %v %v; want jwks_uri %s and no jwks", shown, err, jwksURI)
		}
		cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
		token := func(t *testing.T, srv *server, k assertionKey, clientID string) (int, map[string]any) {
			t.Helper()
			tokenURL := srv.URL + "/oauth2/token"
			code, _, body := postForm(t, tokenURL, withAssertion(cc, signAssertion(t, k, assertionClaims(clientID, tokenURL))), "", "")
			return code, body
		}
		refused := func(t *testing.T, what string, code int, body map[string]any) {
			t.Helper()
			if code != http.StatusUnauthorized || body["error"] != "invalid_client" {
				t.Errorf("%s: %d %v, want 401 invalid_client", what, code, body)
			}
		}

		// httptest listens on loopback: a server without the operator's permission does not dial it.
		var log lockedBuffer
		strict := env.startServerLoggingTo(t, &log)
		code, body := token(t, strict, k1, cl.ClientID)
		refused(t, "keys on a loopback host, not allowed", code, body)
		if n := host.hits.Load(); n != 0 {
			t.Fatalf("the JWKS host was reached %d times by a server not allowed to", n)
		}
		// The operator sees which client's host failed, at warn.
		if l := log.String(); !strings.Contains(l, `"level":"WARN","msg":"client JWK Set could not be fetched"`) ||
			!strings.Contains(l, cl.ClientID) || !strings.Contains(l, jwksURI) {
			t.Errorf("the log does not name the client and its jwks_uri at warn:\n%s", l)
		}

		allowing := testEnv{}
		for k, v := range env {
			allowing[k] = v
		}
		allowing["LATCHKEY_JWKS_URI_ALLOW_PRIVATE"] = "true"
		srv := allowing.startServer(t)
		for i := range 3 {
			if code, body := token(t, srv, k1, cl.ClientID); code != http.StatusOK || body["access_token"] == nil {
				t.Fatalf("assertion %d: %d %v, want 200 with an access token", i, code, body)
			}
		}
		if n := host.hits.Load(); n != 1 {
			t.Errorf("%d fetches for 3 assertions, want 1 (cached)", n)
		}

		t.Run("a key rotated at the host is fetched when first used", func(t *testing.T) {
			host.publish(t, k2)
			if code, body := token(t, srv, k2, cl.ClientID); code != http.StatusOK {
				t.Fatalf("assertion with the new kid: %d %v, want 200", code, body)
			}
			// The old key is gone from the set fetched: refused (and the forced refetch for it is rate-limited).
			code, body := token(t, srv, k1, cl.ClientID)
			refused(t, "assertion with the retired kid", code, body)
			if n := host.hits.Load(); n != 2 {
				t.Errorf("%d fetches, want 2 (one more for the new kid, none for the retired one)", n)
			}
		})

		t.Run("a JWKS host that is down is the client's failure", func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			deadURI := "http://" + ln.Addr().String() + "/jwks.json"
			ln.Close()
			down := env.createClient(t, "--name", "Down", "--grant-types", "client_credentials", "--scopes", "read",
				"--token-endpoint-auth-method", "private_key_jwt", "--jwks-uri", deadURI, "--token-endpoint-auth-signing-alg", "ES256")
			for i := range 2 {
				code, body := token(t, srv, k1, down.ClientID)
				refused(t, "keys on a host that is down", code, body)
				if desc, _ := body["error_description"].(string); i == 0 && !strings.Contains(desc, "jwks_uri") {
					t.Errorf("error_description %q does not say the jwks_uri failed", desc)
				}
			}
			// A host answering something else than a JWK Set: the same.
			garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte("<html>not keys</html>"))
			}))
			defer garbage.Close()
			env.cli(t, "clients", "update", down.ClientID, "--jwks-uri", garbage.URL)
			code, body := token(t, srv, k1, down.ClientID)
			refused(t, "keys on a host answering HTML", code, body)
		})
	})
}

// Registering keys by URL: the CLI takes --jwks-uri on create and update, refuses what the client rules refuse,
// and --jwks-uri "" removes it.
func TestJWKSURIRegistration(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		key := newES256Key(t, "k1")
		base := []string{"clients", "create", "--name", "x", "--grant-types", "client_credentials", "--token-endpoint-auth-method", "private_key_jwt"}
		for _, tc := range []struct {
			name    string
			args    []string
			mention string
		}{
			{"both ways", []string{"--jwks", jwksFile(t, key), "--jwks-uri", "https://keys.example/jwks"}, "--jwks-uri: is set together with jwks"},
			{"plain http", []string{"--jwks-uri", "http://keys.example/jwks"}, "--jwks-uri: \"http://keys.example/jwks\" must use https"},
			{"credentials", []string{"--jwks-uri", "https://me:pw@keys.example/jwks"}, "--jwks-uri:"},
			{"a fragment", []string{"--jwks-uri", "https://keys.example/jwks#k1"}, "has a fragment"},
		} {
			if _, stderr, code := env.cliCode(t, "", append(base, tc.args...)...); code == 0 || !strings.Contains(stderr, tc.mention) {
				t.Errorf("%s: exit %d, stderr %q; want it refused mentioning %q", tc.name, code, stderr, tc.mention)
			}
		}

		cl := env.createClient(t, "--name", "Backend", "--grant-types", "client_credentials",
			"--token-endpoint-auth-method", "private_key_jwt", "--jwks-uri", "https://keys.example/jwks")
		list := env.cli(t, "clients", "list", "--json")
		if !strings.Contains(list, `"jwks_uri": "https://keys.example/jwks"`) {
			t.Errorf("clients list --json does not show the jwks_uri:\n%s", list)
		}
		// Removing the URL of a private_key_jwt client leaves it without keys: refused.
		if _, stderr, code := env.cliCode(t, "", "clients", "update", cl.ClientID, "--jwks-uri", ""); code == 0 || !strings.Contains(stderr, "--jwks: is required for private_key_jwt") {
			t.Errorf("removing the only keys: exit %d, stderr %q", code, stderr)
		}
		// Switching to inline keys: give them and remove the URL in one update.
		out := env.cli(t, "clients", "update", cl.ClientID, "--jwks", jwksFile(t, key), "--jwks-uri", "", "--json")
		var updated map[string]any
		if err := json.Unmarshal([]byte(out), &updated); err != nil || updated["jwks_uri"] != nil || updated["jwks"] == nil {
			t.Errorf("after switching to inline keys: %s", out)
		}
		out = env.cli(t, "clients", "update", cl.ClientID, "--jwks", "-", "--jwks-uri", "https://keys.example/v2/jwks", "--json")
		updated = nil
		if err := json.Unmarshal([]byte(out), &updated); err != nil || updated["jwks_uri"] != "https://keys.example/v2/jwks" || updated["jwks"] != nil {
			t.Errorf("after switching back to a URL: %s", out)
		}
	})
}
