package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2/clientcredentials"
)

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

// listedKey is one object of `keys list --json` / `keys rotate --json`.
type listedKey struct {
	KID            string     `json:"kid"`
	Alg            string     `json:"alg"`
	State          string     `json:"state"`
	ActivatesAt    time.Time  `json:"activates_at"`
	RetiresAt      *time.Time `json:"retires_at"`
	PublishedUntil *time.Time `json:"published_until"`
}

// fastKeysEnv is an environment whose key lifecycle runs in seconds: reload every second, JWKS cached for a
// second, so a scheduled key signs 3 s after the rotation.
func fastKeysEnv(env testEnv) testEnv {
	return env.with("LATCHKEY_KEY_RELOAD_INTERVAL", "1s", "LATCHKEY_JWKS_MAX_AGE", "1s")
}

func keysByAlg(t *testing.T, list []listedKey, state string) map[string]listedKey {
	t.Helper()
	out := map[string]listedKey{}
	for _, k := range list {
		if k.State == state {
			if _, dup := out[k.Alg]; dup {
				t.Fatalf("two %s %s keys in %+v", state, k.Alg, list)
			}
			out[k.Alg] = k
		}
	}
	return out
}

// cachingVerifier verifies JWTs the way a resource server does: against a node's JWKS, fetched again only when
// the copy it holds is older than the max-age the node announced.
type cachingVerifier struct {
	t       *testing.T
	base    string
	set     jose.JSONWebKeySet
	fetched time.Time
	maxAge  time.Duration
}

func (v *cachingVerifier) keys() jose.JSONWebKeySet {
	v.t.Helper()
	if !v.fetched.IsZero() && time.Since(v.fetched) < v.maxAge {
		return v.set
	}
	fetched := time.Now()
	code, hdr, body := get(v.t, v.base+"/.well-known/jwks.json")
	if code != http.StatusOK {
		v.t.Fatalf("jwks of %s: %d", v.base, code)
	}
	cc := hdr.Get("Cache-Control")
	if cc != "public, max-age=1" {
		v.t.Fatalf("jwks Cache-Control = %q, want public, max-age=1 (LATCHKEY_JWKS_MAX_AGE)", cc)
	}
	v.set = jose.JSONWebKeySet{}
	if err := json.Unmarshal(body, &v.set); err != nil {
		v.t.Fatalf("jwks: %v", err)
	}
	v.fetched, v.maxAge = fetched, time.Second
	return v.set
}

// verify reports the token's kid and whether it verifies against the cached set.
func (v *cachingVerifier) verify(token string) (string, bool) {
	v.t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		v.t.Fatalf("parse JWT: %v", err)
	}
	kid := jws.Signatures[0].Header.KeyID
	set := v.keys()
	ks := set.Key(kid)
	if len(ks) != 1 {
		return kid, false
	}
	_, err = jws.Verify(ks[0])
	return kid, err == nil
}

// Two nodes on one database rotate through the whole lifecycle while tokens are minted on both and checked
// against each node's JWKS as a caching verifier holds it: at no moment does one fail.
//
// Not parallel: the switch is timed by wall-clock key reloads (every second), and a CPU starved by other tests
// delays a reload past the activation moment the test checks.
func TestKeyRotationNeverLeavesAJWTUnverifiable(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		env = fastKeysEnv(env)
		api := env.createClient(t, "--name", "api", "--scopes", "read", "--access-token-format", "jwt")
		rs := env.createClient(t, "--name", "rs")
		nodes := []*server{env.startServer(t), env.startServer(t)}
		ctx := context.Background()
		mint := func(n *server) string {
			t.Helper()
			cc := clientcredentials.Config{ClientID: api.ClientID, ClientSecret: api.ClientSecret, TokenURL: n.URL + "/oauth2/token", Scopes: []string{"read"}}
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatalf("token from %s: %v", n.URL, err)
			}
			return tok.AccessToken
		}
		verifiers := []*cachingVerifier{{t: t, base: nodes[0].URL}, {t: t, base: nodes[1].URL}}
		for i := range nodes { // warm the caches with the pre-rotation key set
			verifiers[i].keys()
		}

		before := decodeJSON[[]listedKey](t, env.cli(t, "keys", "list", "--json"))
		rotatedAt := time.Now()
		after := decodeJSON[[]listedKey](t, env.cli(t, "keys", "rotate", "--json"))
		oldKeys, newKeys := keysByAlg(t, after, "active"), keysByAlg(t, after, "next")
		if len(after) != 4 || len(oldKeys) != 2 || len(newKeys) != 2 {
			t.Fatalf("keys rotate --json = %+v, want the two active keys and two next ones", after)
		}
		for alg, k := range keysByAlg(t, before, "active") {
			if oldKeys[alg].KID != k.KID {
				t.Fatalf("the %s key active before the rotation is %s, after it %s is", alg, k.KID, oldKeys[alg].KID)
			}
		}
		activatesAt := newKeys["RS256"].ActivatesAt
		// 2 x reload interval + JWKS max-age, counted from the rotation.
		if d := activatesAt.Sub(rotatedAt); d < 3*time.Second-50*time.Millisecond || d > 4*time.Second {
			t.Fatalf("new keys activate %v after the rotation, want 3s (2 x 1s reload + 1s max-age)", d)
		}
		for alg, k := range oldKeys {
			if k.RetiresAt == nil || !k.RetiresAt.Equal(newKeys[alg].ActivatesAt) || k.PublishedUntil == nil || !k.PublishedUntil.After(activatesAt) {
				t.Fatalf("old %s key %+v: it must retire when its successor activates and stay published after", alg, k)
			}
		}
		oldKID, newKID := oldKeys["RS256"].KID, newKeys["RS256"].KID

		// Mint on both nodes through the switch, verifying each token against the other node's cached JWKS
		// and its own; stop a second after both nodes have signed with the new key.
		deadline := time.Now().Add(20 * time.Second)
		switched := map[int]time.Time{}
		var minted, failed int
		var newToken string
		for {
			if time.Now().After(deadline) {
				t.Fatalf("after 20s the nodes switched at %v (activation at %v)", switched, activatesAt)
			}
			if len(switched) == 2 && time.Since(activatesAt) > time.Second {
				break
			}
			for i, n := range nodes {
				start := time.Now()
				token := mint(n)
				end := time.Now()
				minted++
				for j, v := range verifiers {
					if kid, ok := v.verify(token); !ok {
						failed++
						t.Errorf("a token node %d signed with %s at %v does not verify against node %d's cached JWKS",
							i, kid, start.Sub(activatesAt), j)
					}
				}
				kid, _ := verifiers[i].verify(token)
				switch {
				case end.Before(activatesAt) && kid != oldKID:
					t.Fatalf("node %d signed with %s %v before the activation moment, want the old key %s", i, kid, activatesAt.Sub(end), oldKID)
				case !start.Before(activatesAt) && kid != newKID:
					t.Fatalf("node %d signed with %s %v after the activation moment, want the new key %s", i, kid, start.Sub(activatesAt), newKID)
				}
				if kid == newKID {
					if _, ok := switched[i]; !ok {
						switched[i] = start
					}
					if i == 0 {
						newToken = token
					}
				}
			}
		}
		t.Logf("%d tokens minted through the switch, %d failed verification", minted, failed)
		// The other node accepts the new key's tokens too.
		if _, _, in := postForm(t, nodes[1].URL+"/oauth2/introspect", url.Values{"token": {newToken}}, rs.ClientID, rs.ClientSecret); in["active"] != true {
			t.Fatalf("node 1 introspects node 0's new-key token as %v", in)
		}
		list := decodeJSON[[]listedKey](t, env.cli(t, "keys", "list", "--json"))
		if got := keysByAlg(t, list, "active"); got["RS256"].KID != newKID || got["ES256"].KID != newKeys["ES256"].KID {
			t.Errorf("after activation the active keys are %+v", got)
		}
		if got := keysByAlg(t, list, "retired"); got["RS256"].KID != oldKID || got["RS256"].PublishedUntil == nil {
			t.Errorf("after activation the retired keys are %+v", got)
		}
	})
}

// `keys rotate --now` signs at once. A node that has not reloaded since meets the new kid in a token it is
// asked to introspect and looks in the database before calling the token inactive.
func TestKeysRotateNowAndUnknownKIDReload(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		// Timer reloads an hour apart: within the test, only the unknown-kid path can teach a node new keys.
		env = env.with("LATCHKEY_KEY_RELOAD_INTERVAL", "1h")
		api := env.createClient(t, "--name", "api", "--scopes", "read", "--access-token-format", "jwt")
		rs := env.createClient(t, "--name", "rs")
		signer, lagging := env.startServer(t), env.startServer(t)
		ctx := context.Background()

		before := time.Now()
		out := env.cli(t, "keys", "rotate", "--now")
		if !strings.Contains(out, "breaks caches") {
			t.Errorf("keys rotate --now does not warn that it breaks caches:\n%s", out)
		}
		after := time.Now()
		list := decodeJSON[[]listedKey](t, env.cli(t, "keys", "list", "--json"))
		active, retired := keysByAlg(t, list, "active"), keysByAlg(t, list, "retired")
		if len(list) != 4 || len(active) != 2 || len(retired) != 2 {
			t.Fatalf("after keys rotate --now: %+v, want two active and two retired keys", list)
		}
		for alg, k := range active {
			if k.ActivatesAt.Before(before.Add(-time.Second)) || k.ActivatesAt.After(after) {
				t.Errorf("--now %s key activates at %v, want during the command", alg, k.ActivatesAt)
			}
			if r := retired[alg]; r.RetiresAt == nil || !r.RetiresAt.Equal(k.ActivatesAt) || r.PublishedUntil == nil {
				t.Errorf("retired %s key %+v", alg, r)
			}
		}

		if err := signer.app.Keys().Reload(ctx); err != nil {
			t.Fatal(err)
		}
		cc := clientcredentials.Config{ClientID: api.ClientID, ClientSecret: api.ClientSecret, TokenURL: signer.URL + "/oauth2/token", Scopes: []string{"read"}}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if kid, _ := verifyJWT(t, jwksKeys(t, signer.URL), tok.AccessToken); kid != active["RS256"].KID {
			t.Fatalf("the reloaded node signs with %s, want the new key %s", kid, active["RS256"].KID)
		}
		if _, ok := lagging.app.Keys().PublicKey(""); ok {
			t.Fatal("empty kid found")
		}
		if k, err := lagging.app.Keys().SigningKey("RS256"); err != nil || k.KeyID != retired["RS256"].KID {
			t.Fatalf("the lagging node already signs with %v (%v): the test cannot tell the unknown-kid path apart", k, err)
		}

		// 40 resource servers ask the lagging node at once.
		var wg sync.WaitGroup
		results := make([]any, 40)
		for i := range results {
			wg.Go(func() {
				_, _, in := postForm(t, lagging.URL+"/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, rs.ClientID, rs.ClientSecret)
				results[i] = in["active"]
			})
		}
		wg.Wait()
		for i, r := range results {
			if r != true {
				t.Fatalf("introspection %d on the lagging node: active = %v, want true", i, r)
			}
		}
		if _, ok := lagging.app.Keys().PublicKey(active["ES256"].KID); !ok {
			t.Error("the lagging node's reload did not bring every new key")
		}

		// A JWT naming a kid nobody has is simply inactive: no error, no 5xx.
		forged := forgeJWT(t, "no-such-kid")
		code, _, in := postForm(t, lagging.URL+"/oauth2/introspect", url.Values{"token": {forged}}, rs.ClientID, rs.ClientSecret)
		if code != http.StatusOK || in["active"] != false {
			t.Fatalf("introspection of a JWT with an unknown kid = %d %v", code, in)
		}
	})
}

func forgeJWT(t *testing.T, kid string) string {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(`{"sub":"x","exp":1893456000}`))
	if err != nil {
		t.Fatal(err)
	}
	token, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestKeysListJSONShape(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	for _, args := range [][]string{{"keys", "list", "--json"}, {"keys", "rotate", "--json"}} {
		var objs []map[string]any
		if err := json.Unmarshal([]byte(env.cli(t, args...)), &objs); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if len(objs) == 0 {
			t.Fatalf("%v printed no keys", args)
		}
		for _, o := range objs {
			var fields []string
			for k := range o {
				fields = append(fields, k)
			}
			slices.Sort(fields)
			want := []string{"activates_at", "alg", "created_at", "kid", "published_until", "retires_at", "state"}
			if !slices.Equal(fields, want) {
				t.Fatalf("%v: object fields %v, want %v", args, fields, want)
			}
			if s := o["state"]; s != "next" && s != "active" && s != "retired" {
				t.Errorf("%v: state %v", args, s)
			}
			if _, err := time.Parse(time.RFC3339Nano, o["activates_at"].(string)); err != nil {
				t.Errorf("%v: activates_at: %v", args, err)
			}
			if newest := o["state"] == "next" || (len(objs) == 2 && o["state"] == "active"); newest != (o["retires_at"] == nil) {
				t.Errorf("%v: %v: only the newest key of an algorithm has no retires_at", args, o)
			}
		}
	}
	if out := env.cli(t, "keys", "list"); !strings.Contains(out, "ACTIVATES") || !strings.Contains(out, "next") {
		t.Errorf("keys list text:\n%s", out)
	}
}

func TestKeySettingsValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		kv   []string
		want []string
	}{
		{"reload interval zero", []string{"LATCHKEY_KEY_RELOAD_INTERVAL", "0s"}, []string{"LATCHKEY_KEY_RELOAD_INTERVAL"}},
		{"reload interval under a second", []string{"LATCHKEY_KEY_RELOAD_INTERVAL", "200ms"}, []string{"LATCHKEY_KEY_RELOAD_INTERVAL"}},
		{"reload interval over an hour", []string{"LATCHKEY_KEY_RELOAD_INTERVAL", "2h"}, []string{"LATCHKEY_KEY_RELOAD_INTERVAL"}},
		{"reload interval not a duration", []string{"LATCHKEY_KEY_RELOAD_INTERVAL", "often"}, []string{"LATCHKEY_KEY_RELOAD_INTERVAL", "duration"}},
		{"jwks max-age zero", []string{"LATCHKEY_JWKS_MAX_AGE", "0s"}, []string{"LATCHKEY_JWKS_MAX_AGE"}},
		{"jwks max-age negative", []string{"LATCHKEY_JWKS_MAX_AGE", "-5m"}, []string{"LATCHKEY_JWKS_MAX_AGE"}},
		{"jwks max-age not whole seconds", []string{"LATCHKEY_JWKS_MAX_AGE", "1500ms"}, []string{"LATCHKEY_JWKS_MAX_AGE", "seconds"}},
		{"jwks max-age over a day", []string{"LATCHKEY_JWKS_MAX_AGE", "48h"}, []string{"LATCHKEY_JWKS_MAX_AGE"}},
		{"jwks max-age not a duration", []string{"LATCHKEY_JWKS_MAX_AGE", "300"}, []string{"LATCHKEY_JWKS_MAX_AGE"}},
		{"rotation not longer than the activation delay", []string{"LATCHKEY_KEY_ROTATION", "1h", "LATCHKEY_JWKS_MAX_AGE", "1h"},
			[]string{"LATCHKEY_KEY_ROTATION", "activation delay"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, databases()[0].url(t)).with(tc.kv...)
			out, errOut, code := env.cliCode(t, "", "keys", "list")
			if code != 1 {
				t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") {
				t.Errorf("stderr is not exactly one line:\n%s", errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not mention %s:\n%s", w, errOut)
				}
			}
		})
	}
	// The defaults and the short settings the lifecycle tests use are accepted.
	for _, env := range []testEnv{newTestEnv(t, databases()[0].url(t)), fastKeysEnv(newTestEnv(t, databases()[0].url(t)))} {
		if _, errOut, code := env.cliCode(t, "", "keys", "list"); code != 0 {
			t.Errorf("keys list: exit %d: %s", code, errOut)
		}
	}
}
