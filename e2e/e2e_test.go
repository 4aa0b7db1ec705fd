package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// forEachDB runs fn once per backend, each with a fresh database.
func forEachDB(t *testing.T, fn func(t *testing.T, env testEnv)) {
	for _, db := range databases() {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			fn(t, newTestEnv(t, db.url(t)))
		})
	}
}

func TestClientCredentialsIntrospectRevoke(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		billing := env.createClient(t, "--name", "billing-svc", "--scopes", "read write", "--audience", "https://api.example.com")
		rs := env.createClient(t, "--name", "resource-server")
		postClient := env.createClient(t, "--name", "poster", "--scopes", "read", "--token-endpoint-auth-method", "client_secret_post")
		srv := env.startServer(t)
		ctx := context.Background()

		for _, tc := range []struct {
			name   string
			client createdClient
			style  oauth2.AuthStyle
			params url.Values
			scopes []string
			aud    []string
		}{
			{"client_secret_basic with resource indicator", billing, oauth2.AuthStyleInHeader,
				url.Values{"resource": {"https://api.example.com"}}, []string{"read"}, []string{"https://api.example.com"}},
			{"client_secret_basic with two scopes", billing, oauth2.AuthStyleInHeader, nil, []string{"read", "write"}, nil},
			{"client_secret_post", postClient, oauth2.AuthStyleInParams, nil, []string{"read"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cc := clientcredentials.Config{
					ClientID: tc.client.ClientID, ClientSecret: tc.client.ClientSecret,
					TokenURL: srv.URL + "/oauth2/token", Scopes: tc.scopes, AuthStyle: tc.style, EndpointParams: tc.params,
				}
				tok, err := cc.Token(ctx)
				if err != nil {
					t.Fatalf("client credentials grant: %v", err)
				}
				if !strings.HasPrefix(tok.AccessToken, "lk_at_") || tok.TokenType != "bearer" && tok.TokenType != "Bearer" {
					t.Errorf("token = %q type %q, want an lk_at_ bearer token", tok.AccessToken, tok.TokenType)
				}
				if tok.RefreshToken != "" {
					t.Error("client_credentials must not issue a refresh token")
				}
				if d := time.Until(tok.Expiry); d < 50*time.Minute || d > 61*time.Minute {
					t.Errorf("expires in %v, want about 1h", d)
				}

				code, _, in := postForm(t, srv.URL+"/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, rs.ClientID, rs.ClientSecret)
				if code != 200 || in["active"] != true {
					t.Fatalf("introspect: %d %v", code, in)
				}
				if in["client_id"] != tc.client.ClientID || in["sub"] != tc.client.ClientID || in["scope"] != strings.Join(tc.scopes, " ") || !strings.EqualFold(in["token_type"].(string), "bearer") {
					t.Errorf("introspection = %v", in)
				}
				if tc.aud != nil {
					if aud, _ := in["aud"].([]any); len(aud) != 1 || aud[0] != tc.aud[0] {
						t.Errorf("aud = %v, want %v", in["aud"], tc.aud)
					}
				}

				revoke := url.Values{"token": {tok.AccessToken}}
				user, pass := tc.client.ClientID, tc.client.ClientSecret
				if tc.style == oauth2.AuthStyleInParams {
					revoke.Set("client_id", user)
					revoke.Set("client_secret", pass)
					user, pass = "", ""
				}
				if code, _, body := postForm(t, srv.URL+"/oauth2/revoke", revoke, user, pass); code != 200 {
					t.Fatalf("revoke: %d %v", code, body)
				}
				_, _, in = postForm(t, srv.URL+"/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, rs.ClientID, rs.ClientSecret)
				if in["active"] != false || len(in) != 1 {
					t.Errorf("after revocation introspection = %v, want only active=false", in)
				}
			})
		}
	})
}

// jwksKeys fetches and parses the published key set.
func jwksKeys(t *testing.T, base string) jose.JSONWebKeySet {
	t.Helper()
	code, _, body := get(t, base+"/.well-known/jwks.json")
	if code != 200 {
		t.Fatalf("jwks: %d", code)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	return set
}

// verifyJWT checks a JWT access token against the JWKS and returns its header kid and claims.
func verifyJWT(t *testing.T, set jose.JSONWebKeySet, token string) (string, map[string]any) {
	t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("parse JWT: %v", err)
	}
	hdr := jws.Signatures[0].Protected
	if typ := hdr.ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
		t.Errorf("typ = %v, want at+jwt", typ)
	}
	keys := set.Key(hdr.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q is not in the JWKS", hdr.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("JWT does not verify against the JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return hdr.KeyID, claims
}

func TestJWTAccessTokensAndKeyRotationAcrossNodes(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		api := env.createClient(t, "--name", "api-client", "--scopes", "read", "--audience", "billing-api", "--access-token-format", "jwt")
		rs := env.createClient(t, "--name", "rs")
		nodeA := env.startServer(t)
		nodeB := env.startServer(t)
		ctx := context.Background()

		cc := clientcredentials.Config{ClientID: api.ClientID, ClientSecret: api.ClientSecret, TokenURL: nodeA.URL + "/oauth2/token",
			Scopes: []string{"read"}, EndpointParams: url.Values{"audience": {"billing-api"}}}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		oldKID, claims := verifyJWT(t, jwksKeys(t, nodeA.URL), tok.AccessToken)
		for k, want := range map[string]any{"iss": nodeA.URL, "sub": api.ClientID, "client_id": api.ClientID, "aud": "billing-api", "scope": "read"} {
			if claims[k] != want {
				t.Errorf("claim %s = %v, want %v", k, claims[k], want)
			}
		}
		for _, k := range []string{"exp", "iat", "jti"} {
			if claims[k] == nil {
				t.Errorf("claim %s missing", k)
			}
		}

		// Node B sees what node A issued: same database, no shared memory.
		if _, _, in := postForm(t, nodeB.URL+"/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, rs.ClientID, rs.ClientSecret); in["active"] != true {
			t.Fatalf("node B introspection of node A's JWT = %v", in)
		}

		// Rotate at once through the CLI; both nodes pick it up on their next refresh (forced here instead of waiting).
		env.cli(t, "keys", "rotate", "--now")
		for _, n := range []*server{nodeA, nodeB} {
			if err := n.app.Keys().Reload(ctx); err != nil {
				t.Fatal(err)
			}
		}
		set := jwksKeys(t, nodeB.URL)
		if len(set.Key(oldKID)) != 1 {
			t.Fatal("the retired key left the JWKS while tokens it signed are still valid")
		}
		cc.TokenURL = nodeB.URL + "/oauth2/token"
		tok2, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		newKID, _ := verifyJWT(t, set, tok2.AccessToken)
		if newKID == oldKID {
			t.Error("tokens after rotation are still signed with the old key")
		}
		// The pre-rotation token still introspects as active on both nodes; revocation works for JWTs too.
		for _, n := range []*server{nodeA, nodeB} {
			if _, _, in := postForm(t, n.URL+"/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, rs.ClientID, rs.ClientSecret); in["active"] != true {
				t.Fatalf("pre-rotation JWT on %s: %v", n.URL, in)
			}
		}
		postForm(t, nodeA.URL+"/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, api.ClientID, api.ClientSecret)
		if _, _, in := postForm(t, nodeB.URL+"/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, rs.ClientID, rs.ClientSecret); in["active"] != false {
			t.Fatalf("revoked JWT still active on node B: %v", in)
		}
	})
}

func TestDiscoveryAdvertisesOnlyWhatWorks(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	srv := env.startServer(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		code, hdr, body := get(t, srv.URL+path)
		if code != 200 || hdr.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s: %d, CORS %q", path, code, hdr.Get("Access-Control-Allow-Origin"))
		}
		m := mustJSON(t, body)
		if m["issuer"] != srv.URL {
			t.Errorf("issuer = %v", m["issuer"])
		}
		if g := fmt.Sprint(m["grant_types_supported"]); g != "[authorization_code refresh_token client_credentials]" {
			t.Errorf("grant_types_supported = %v", g)
		}
		if g := fmt.Sprint(m["response_types_supported"]); g != "[code]" {
			t.Errorf("response_types_supported = %v (no implicit or hybrid flows)", g)
		}
		if g := fmt.Sprint(m["code_challenge_methods_supported"]); g != "[S256]" {
			t.Errorf("code_challenge_methods_supported = %v (plain must not be offered)", g)
		}
		for k, v := range m {
			if !strings.HasSuffix(k, "_endpoint") && k != "jwks_uri" {
				continue
			}
			// Every advertised endpoint is mounted: an empty POST gets an OAuth error or a document, never a 404.
			resp, err := http.Post(v.(string), "application/x-www-form-urlencoded", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 404 || resp.StatusCode >= 500 {
				t.Errorf("%s (%s) answered %d", k, v, resp.StatusCode)
			}
		}
	}

	code, hdr, body := get(t, srv.URL+"/.well-known/jwks.json")
	if code != 200 || !strings.Contains(hdr.Get("Cache-Control"), "max-age") || hdr.Get("ETag") == "" {
		t.Fatalf("jwks: %d %v", code, hdr)
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	var algs []string
	for _, k := range raw.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS key %v publishes private member %q", k["kid"], private)
			}
		}
		algs = append(algs, k["alg"].(string))
	}
	slices.Sort(algs)
	if !slices.Equal(algs, []string{"ES256", "RS256"}) {
		t.Errorf("JWKS algorithms = %v, want ES256 and RS256", algs)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/.well-known/jwks.json", nil)
	req.Header.Set("If-None-Match", hdr.Get("ETag"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional JWKS request: %v %v", resp.StatusCode, err)
	}

	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/nope": 404} {
		if code, _, _ := get(t, srv.URL+path); code != want {
			t.Errorf("GET %s = %d, want %d", path, code, want)
		}
	}
}
