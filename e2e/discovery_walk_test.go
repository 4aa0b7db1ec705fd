package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// TestEveryAdvertisedCapabilityWorks walks the discovery document: every value of every list it advertises has an
// exercise here, and each exercise succeeds through the real server. A value or a list advertised without an
// exercise fails the test, so discovery cannot grow a promise that nothing tries; a capability that stops working
// fails its exercise.
func TestEveryAdvertisedCapabilityWorks(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	logoutEnv(env)
	w := newDiscoveryWalker(t, env)

	exercises := map[string]map[string]exercise{
		"grant_types_supported": {
			"authorization_code": w.codeFlow,
			"refresh_token":      w.refreshGrant,
			"client_credentials": func(t *testing.T, _ string) { w.clientCredentials(t, w.basic, "client_secret_basic") },
			"password":           w.passwordGrant,
			"implicit":           w.implicitFlow,
			grantTokenExchange:   w.tokenExchange,
			deviceGrant:          w.deviceFlow,
		},
		"response_types_supported": {"code": w.codeFlow, "id_token": w.implicitFlow},
		"response_modes_supported": {
			"query":     w.codeFlow,
			"fragment":  w.implicitFlow,
			"form_post": w.formPost,
		},
		"code_challenge_methods_supported": {"S256": w.codeFlow},
		"token_endpoint_auth_methods_supported": {
			"client_secret_basic": func(t *testing.T, _ string) { w.clientCredentials(t, w.basic, "client_secret_basic") },
			"client_secret_post":  func(t *testing.T, _ string) { w.clientCredentials(t, w.post, "client_secret_post") },
			"private_key_jwt":     func(t *testing.T, _ string) { w.clientCredentials(t, w.keyed["ES256"], "private_key_jwt") },
			"client_secret_jwt":   func(t *testing.T, _ string) { w.clientCredentials(t, w.keyed["HS256"], "client_secret_jwt") },
			"none":                w.codeFlow, // the SPA is public: it exchanges its code with client_id and PKCE only
		},
		"introspection_endpoint_auth_methods_supported": {
			"client_secret_basic": func(t *testing.T, _ string) { w.introspect(t, w.basic, "client_secret_basic") },
			"client_secret_post":  func(t *testing.T, _ string) { w.introspect(t, w.post, "client_secret_post") },
			"private_key_jwt":     func(t *testing.T, _ string) { w.introspect(t, w.keyed["ES256"], "private_key_jwt") },
			"client_secret_jwt":   func(t *testing.T, _ string) { w.introspect(t, w.keyed["HS256"], "client_secret_jwt") },
		},
		"revocation_endpoint_auth_methods_supported": {
			"client_secret_basic": func(t *testing.T, _ string) { w.revoke(t, w.basic, "client_secret_basic") },
			"client_secret_post":  func(t *testing.T, _ string) { w.revoke(t, w.post, "client_secret_post") },
			"private_key_jwt":     func(t *testing.T, _ string) { w.revoke(t, w.keyed["ES256"], "private_key_jwt") },
			"client_secret_jwt":   func(t *testing.T, _ string) { w.revoke(t, w.keyed["HS256"], "client_secret_jwt") },
			"none":                w.revokeAsPublicClient,
		},
		"token_endpoint_auth_signing_alg_values_supported":         w.perAssertionAlg(w.clientCredentials),
		"introspection_endpoint_auth_signing_alg_values_supported": w.perAssertionAlg(w.introspect),
		"revocation_endpoint_auth_signing_alg_values_supported":    w.perAssertionAlg(w.revoke),
		"id_token_signing_alg_values_supported":                    w.perValue(w.idTokenSignedWith),
		"access_token_signing_alg_values_supported":                w.perValue(w.accessTokenSignedWith),
		"id_token_encryption_alg_values_supported":                 w.perValue(func(t *testing.T, alg string) { w.encrypted(t, alg, "", "id_token") }),
		"id_token_encryption_enc_values_supported":                 w.perValue(func(t *testing.T, enc string) { w.encrypted(t, "RSA-OAEP-256", enc, "id_token") }),
		"userinfo_encryption_alg_values_supported":                 w.perValue(func(t *testing.T, alg string) { w.encrypted(t, alg, "", "userinfo") }),
		"userinfo_encryption_enc_values_supported":                 w.perValue(func(t *testing.T, enc string) { w.encrypted(t, "RSA-OAEP-256", enc, "userinfo") }),
		"scopes_supported": w.perValue(w.scopeGranted),
		"claims_supported": w.perValue(w.claimIssued),
		"prompt_values_supported": {
			"none":    w.promptNone,
			"login":   w.promptLogin,
			"consent": w.promptConsent,
		},
		"subject_types_supported":                     {"public": w.publicSubject},
		"request_object_signing_alg_values_supported": w.perValue(w.requestObject),
		"dpop_signing_alg_values_supported":           w.perValue(w.dpopBoundClientCredentials),
	}
	// Capabilities advertised as a boolean: each true one has an exercise; a false one is what does not work.
	flags := map[string]exercise{
		"authorization_response_iss_parameter_supported": w.codeFlow, // codeFlow checks iss on the callback
		"request_parameter_supported":                    func(t *testing.T, _ string) { w.requestObject(t, "ES256") },
		// One sign-in and logout of a client with both logout URIs, session required, tries the four.
		"backchannel_logout_supported":          w.logoutChannels,
		"backchannel_logout_session_supported":  w.logoutChannels,
		"frontchannel_logout_supported":         w.logoutChannels,
		"frontchannel_logout_session_supported": w.logoutChannels,
	}

	// Endpoints no other exercise reaches (TestDiscoveryAdvertisesOnlyWhatWorks checks each is mounted).
	endpoints := map[string]exercise{
		"registration_endpoint":                 w.register,
		"pushed_authorization_request_endpoint": w.pushed,
		"device_authorization_endpoint":         w.deviceFlow,
	}

	for field, value := range w.meta {
		t.Run(field, func(t *testing.T) {
			switch v := value.(type) {
			case []any:
				known, ok := exercises[field]
				if !ok {
					t.Fatalf("discovery advertises %s = %v, and no exercise here tries it", field, v)
				}
				if field == "grant_types_supported" || strings.HasSuffix(field, "_auth_methods_supported") || field == "response_types_supported" {
					for want := range known {
						if !slices.Contains(v, any(want)) {
							t.Errorf("%s works (it has an exercise) but is not advertised in %s = %v", want, field, v)
						}
					}
				}
				for _, item := range v {
					s, _ := item.(string)
					run, ok := known[s]
					if !ok {
						if run, ok = known["*"]; !ok {
							t.Errorf("discovery advertises %q in %s, and no exercise here tries it", s, field)
							continue
						}
					}
					t.Run(s, func(t *testing.T) { run(t, s) })
				}
			case string:
				if run, ok := endpoints[field]; ok {
					run(t, v)
				}
			case bool:
				if run, ok := flags[field]; ok && v {
					run(t, field)
				} else if v {
					t.Errorf("discovery says %s is true, and no exercise here tries it", field)
				}
			}
		})
	}
}

// discoveryWalker holds the server, clients and shared results the exercises use.
type discoveryWalker struct {
	*edge
	logoutOnce   sync.Once
	logoutErr    string
	meta         map[string]any
	basic, post  createdClient // confidential, client_credentials, by HTTP Basic and by form
	keyed        map[string]createdClient
	keys         map[string]assertionKey
	mu           sync.Mutex
	full         *fullSignIn // a code flow asking for every advertised scope, run once
	encryptedRes map[string]error
}

type fullSignIn struct {
	token       *oauth2.Token
	idClaims    map[string]any
	userinfo    map[string]any
	idTokenAlg  string
	scopesGiven []string
}

func newDiscoveryWalker(t *testing.T, env testEnv) *discoveryWalker {
	t.Helper()
	e := newEdge(t, env, implicitClientArgs...)
	env.cli(t, "pools", "create", "customers")
	env.cli(t, "users", "create", "--pool", "customers", "--email", "carol@example.com", "--password", pwCarolPassword)
	w := &discoveryWalker{edge: e, keyed: map[string]createdClient{}, keys: map[string]assertionKey{}, encryptedRes: map[string]error{}}
	w.basic = env.createClient(t, "--name", "svc-basic", "--grant-types", "client_credentials", "--scopes", "read",
		"--access-token-format", "jwt")
	w.post = env.createClient(t, "--name", "svc-post", "--grant-types", "client_credentials", "--scopes", "read",
		"--token-endpoint-auth-method", "client_secret_post")
	code, _, body := get(t, e.srv.URL+"/.well-known/openid-configuration")
	if code != http.StatusOK {
		t.Fatalf("discovery: %d", code)
	}
	w.meta = mustJSON(t, body)
	for _, alg := range w.meta["token_endpoint_auth_signing_alg_values_supported"].([]any) {
		a := alg.(string)
		if strings.HasPrefix(a, "HS") { // client_secret_jwt: the assertion is keyed with the client's secret
			c := env.createClient(t, "--name", "svc-"+a, "--grant-types", "client_credentials", "--scopes", "read",
				"--token-endpoint-auth-method", "client_secret_jwt", "--token-endpoint-auth-signing-alg", a)
			w.keys[a], w.keyed[a] = assertionKey{key: []byte(c.ClientSecret), alg: jose.SignatureAlgorithm(a)}, c
			continue
		}
		k := newAssertionKey(t, a)
		if k.key == nil {
			continue // an algorithm this walk has no key type for; its exercise says so
		}
		w.keys[a] = k
		w.keyed[a] = env.createClient(t, "--name", "svc-"+a, "--grant-types", "client_credentials", "--scopes", "read",
			"--token-endpoint-auth-method", "private_key_jwt", "--token-endpoint-auth-signing-alg", a, "--jwks", anyJWKSFile(t, k))
	}
	return w
}

// newAssertionKey makes a key for a JWS algorithm; a zero key for one it does not know.
func newAssertionKey(t *testing.T, alg string) assertionKey {
	t.Helper()
	var (
		key any
		err error
	)
	switch alg[:2] {
	case "RS", "PS":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES":
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		key, err = ecdsa.GenerateKey(curve, rand.Reader)
	default:
		return assertionKey{}
	}
	if err != nil {
		t.Fatal(err)
	}
	return assertionKey{key: key, kid: "walk-" + alg, alg: jose.SignatureAlgorithm(alg)}
}

// anyJWKSFile writes k's public key as a JWK Set file and returns "@path".
func anyJWKSFile(t *testing.T, k assertionKey) string {
	t.Helper()
	var pub any
	switch key := k.key.(type) {
	case *rsa.PrivateKey:
		pub = &key.PublicKey
	case *ecdsa.PrivateKey:
		pub = &key.PublicKey
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: k.kid, Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwks-"+string(k.alg)+".json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return "@" + path
}

// exercise tries one advertised value through the server.
type exercise func(t *testing.T, value string)

// perValue is one exercise for every value of a list.
func (w *discoveryWalker) perValue(check exercise) map[string]exercise {
	return map[string]exercise{"*": check}
}

// perAssertionAlg runs call as the client whose assertions are signed with the advertised algorithm.
func (w *discoveryWalker) perAssertionAlg(call func(t *testing.T, c createdClient, method string)) map[string]exercise {
	return w.perValue(func(t *testing.T, alg string) {
		c, ok := w.keyed[alg]
		if !ok {
			t.Fatalf("no key type known for the advertised assertion algorithm %s", alg)
		}
		method := "private_key_jwt"
		if strings.HasPrefix(alg, "HS") {
			method = "client_secret_jwt"
		}
		call(t, c, method)
	})
}

// authenticate adds c's credentials to a request the way method says.
func (w *discoveryWalker) authenticate(t *testing.T, req url.Values, c createdClient, method, aud string) (url.Values, string, string) {
	t.Helper()
	switch method {
	case "client_secret_basic":
		return req, c.ClientID, c.ClientSecret
	case "client_secret_post":
		req.Set("client_id", c.ClientID)
		req.Set("client_secret", c.ClientSecret)
		return req, "", ""
	case "private_key_jwt", "client_secret_jwt":
		var key assertionKey
		for alg, kc := range w.keyed {
			if kc.ClientID == c.ClientID {
				key = w.keys[alg]
			}
		}
		return withAssertion(req, signAssertion(t, key, assertionClaims(c.ClientID, aud))), "", ""
	}
	t.Fatalf("unknown method %s", method)
	return nil, "", ""
}

func (w *discoveryWalker) clientCredentials(t *testing.T, c createdClient, method string) {
	t.Helper()
	w.serviceToken(t, c, method)
}

func (w *discoveryWalker) serviceToken(t *testing.T, c createdClient, method string) string {
	t.Helper()
	endpoint := w.meta["token_endpoint"].(string)
	form, user, pass := w.authenticate(t, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, c, method, endpoint)
	code, _, body := postForm(t, endpoint, form, user, pass)
	if code != http.StatusOK || body["access_token"] == nil || body["scope"] != "read" {
		t.Fatalf("client_credentials by %s: %d %v", method, code, body)
	}
	return body["access_token"].(string)
}

func (w *discoveryWalker) introspect(t *testing.T, c createdClient, method string) {
	t.Helper()
	at := w.serviceToken(t, w.post, "client_secret_post")
	endpoint := w.meta["introspection_endpoint"].(string)
	form, user, pass := w.authenticate(t, url.Values{"token": {at}}, c, method, endpoint)
	code, _, body := postForm(t, endpoint, form, user, pass)
	if code != http.StatusOK || body["active"] != true {
		t.Fatalf("introspection by %s: %d %v, want an active token", method, code, body)
	}
}

func (w *discoveryWalker) revoke(t *testing.T, c createdClient, method string) {
	t.Helper()
	at := w.serviceToken(t, c, method)
	endpoint := w.meta["revocation_endpoint"].(string)
	form, user, pass := w.authenticate(t, url.Values{"token": {at}}, c, method, endpoint)
	if code, _, body := postForm(t, endpoint, form, user, pass); code != http.StatusOK {
		t.Fatalf("revocation by %s: %d %v", method, code, body)
	}
	_, _, in := postForm(t, w.meta["introspection_endpoint"].(string), url.Values{"token": {at}}, w.basic.ClientID, w.basic.ClientSecret)
	if in["active"] != false {
		t.Fatalf("revoked by %s, the token still introspects as %v", method, in)
	}
}

func (w *discoveryWalker) revokeAsPublicClient(t *testing.T, _ string) {
	tok, _ := w.signedIn(t, newBrowser(t, spaCallback), "openid", "offline_access")
	form := url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {"spa"}}
	if code, _, body := postForm(t, w.meta["revocation_endpoint"].(string), form, "", ""); code != http.StatusOK {
		t.Fatalf("revocation by a public client: %d %v", code, body)
	}
	w.mustRefreshFail(t, tok.RefreshToken, "revoked by the public client")
}

// codeFlow: authorization code with S256 PKCE by a public client, the answer in the query with iss (RFC 9207).
func (w *discoveryWalker) codeFlow(t *testing.T, _ string) {
	conf := w.scoped("openid")
	verifier, state := oauth2.GenerateVerifier(), randomString(t)
	q := callback(t, w.walk(newBrowser(t, spaCallback), w.authURL(conf, state, verifier)).page)
	if q.Get("code") == "" || q.Get("state") != state || q.Get("iss") != w.meta["issuer"] {
		t.Fatalf("callback = %v, want a code, the state and iss", q)
	}
	w.exchange(t, conf, q.Get("code"), verifier)
}

func (w *discoveryWalker) refreshGrant(t *testing.T, _ string) {
	tok, _ := w.signedIn(t, newBrowser(t, spaCallback), "openid", "offline_access")
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token for offline_access")
	}
	if code, errCode := w.refresh(t, tok.RefreshToken); code != http.StatusOK {
		t.Fatalf("refresh: %d %s", code, errCode)
	}
}

func (w *discoveryWalker) passwordGrant(t *testing.T, _ string) {
	app := w.env.createClient(t, "--name", "walk-bubble", "--first-party", "--pool", "customers", "--grant-types", "password",
		"--scopes", "openid")
	form := url.Values{"grant_type": {"password"}, "username": {"carol@example.com"}, "password": {pwCarolPassword}, "scope": {"openid"}}
	code, _, body := postForm(t, w.meta["token_endpoint"].(string), form, app.ClientID, app.ClientSecret)
	if code != http.StatusOK || body["access_token"] == nil || body["id_token"] == nil {
		t.Fatalf("password grant: %d %v", code, body)
	}
}

// tokenExchange: a backend trades the SPA user's access token for one for its API (RFC 8693), which introspects.
func (w *discoveryWalker) tokenExchange(t *testing.T, _ string) {
	backend := w.env.createClient(t, "--name", "walk-exchanger", "--scopes", "openid profile", "--token-exchange", apiAudience)
	tok, _ := w.signedIn(t, newBrowser(t, spaCallback), "openid", "profile")
	form := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {tok.AccessToken},
		"subject_token_type": {typeAccessToken}, "audience": {apiAudience}}
	code, _, body := postForm(t, w.meta["token_endpoint"].(string), form, backend.ClientID, backend.ClientSecret)
	if code != http.StatusOK || body["issued_token_type"] != typeAccessToken || body["access_token"] == nil {
		t.Fatalf("token exchange: %d %v", code, body)
	}
	_, _, in := postForm(t, w.meta["introspection_endpoint"].(string), url.Values{"token": {body["access_token"].(string)}}, backend.ClientID, backend.ClientSecret)
	if in["active"] != true || in["aud"] == nil {
		t.Fatalf("exchanged token introspects as %v", in)
	}
}

// deviceFlow is RFC 8628's device sign-in: a public TV client asks at the device authorization endpoint, ada
// approves on the /device page, and one poll gets the tokens.
func (w *discoveryWalker) deviceFlow(t *testing.T, _ string) {
	c := w.env.createClient(t, "--name", "Living Room TV", "--public", "--grant-types", deviceGrant, "--scopes", "openid")
	f := &deviceFixture{edge: w.edge, client: c.ClientID}
	da := f.start(t, "openid")
	if da["verification_uri"] != w.meta["issuer"].(string)+"/device" {
		t.Fatalf("verification_uri = %v", da["verification_uri"])
	}
	if p := f.decide(t, newBrowser(t, "none:"), da, "allow"); !strings.Contains(p.body, "Device connected") {
		t.Fatalf("after allow (%d):\n%s", p.status, p.body)
	}
	if code, body := f.poll(t, da["device_code"].(string)); code != http.StatusOK {
		t.Fatalf("poll after approval: %d %v", code, body)
	} else if _, err := w.provider.Verifier(&oidc.Config{ClientID: c.ClientID}).Verify(context.Background(), body["id_token"].(string)); err != nil {
		t.Fatalf("device flow ID token: %v", err)
	}
}

func (w *discoveryWalker) implicitFlow(t *testing.T, _ string) {
	state, nonce := randomString(t), randomString(t)
	p := w.walk(newBrowser(t, spaCallback), w.idTokenURL(state, nonce, nil))
	f := fragmentOf(t, p.url)
	if f.Get("state") != state || f.Get("iss") != w.meta["issuer"] {
		t.Fatalf("fragment = %v", f)
	}
	w.verifyIDToken(t, f.Get("id_token"), nonce)
}

func (w *discoveryWalker) formPost(t *testing.T, _ string) {
	conf := w.scoped("openid")
	state, verifier := randomString(t), oauth2.GenerateVerifier()
	p := w.walk(newBrowser(t, spaCallback), w.authURL(conf, state, verifier, oauth2.SetAuthURLParam("response_mode", "form_post")))
	forms := formsOf(t, p.body)
	if len(forms) != 1 || forms[0].action != spaCallback || forms[0].values.Get("state") != state {
		t.Fatalf("form_post page forms = %+v", forms)
	}
	w.exchange(t, conf, forms[0].values.Get("code"), verifier)
}

// signedInWithEverything runs, once, a code flow asking for every advertised scope, and reads userinfo.
func (w *discoveryWalker) signedInWithEverything(t *testing.T) *fullSignIn {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.full != nil {
		return w.full
	}
	var scopes []string
	for _, s := range w.meta["scopes_supported"].([]any) {
		scopes = append(scopes, s.(string))
	}
	tok, claims := w.signedIn(t, newBrowser(t, spaCallback), scopes...)
	req, _ := http.NewRequest(http.MethodGet, w.meta["userinfo_endpoint"].(string), nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	code, _, info := do(t, req)
	if code != http.StatusOK {
		t.Fatalf("userinfo: %d %v", code, info)
	}
	raw, _ := tok.Extra("id_token").(string)
	sig, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.PS256})
	if err != nil {
		t.Fatal(err)
	}
	granted, _ := tok.Extra("scope").(string)
	w.full = &fullSignIn{token: tok, idClaims: claims, userinfo: info, idTokenAlg: sig.Signatures[0].Header.Algorithm,
		scopesGiven: strings.Fields(granted)}
	return w.full
}

func (w *discoveryWalker) scopeGranted(t *testing.T, scope string) {
	if full := w.signedInWithEverything(t); !slices.Contains(full.scopesGiven, scope) {
		t.Fatalf("asked for every advertised scope; %q was not granted (granted %v)", scope, full.scopesGiven)
	}
}

func (w *discoveryWalker) claimIssued(t *testing.T, claim string) {
	full := w.signedInWithEverything(t)
	if _, ok := full.idClaims[claim]; ok {
		return
	}
	if _, ok := full.userinfo[claim]; ok {
		return
	}
	keys := make([]string, 0, len(full.idClaims)+len(full.userinfo))
	for k := range full.idClaims {
		keys = append(keys, k)
	}
	for k := range full.userinfo {
		keys = append(keys, "userinfo."+k)
	}
	sort.Strings(keys)
	t.Fatalf("claim %q is advertised but neither the ID token nor userinfo of a user with every scope has it (%v)", claim, keys)
}

func (w *discoveryWalker) idTokenSignedWith(t *testing.T, alg string) {
	if got := w.signedInWithEverything(t).idTokenAlg; got != alg {
		t.Fatalf("ID token signed with %s, discovery advertises %s", got, alg)
	}
}

func (w *discoveryWalker) accessTokenSignedWith(t *testing.T, alg string) {
	at := w.serviceToken(t, w.basic, "client_secret_basic") // registered with --access-token-format jwt
	sig, err := jose.ParseSigned(at, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		t.Fatalf("JWT access token is not signed with the advertised %s: %v", alg, err)
	}
	verifyJWT(t, jwksKeys(t, w.meta["issuer"].(string)), at)
	_ = sig
}

// encrypted signs in through a client whose ID tokens and userinfo are encrypted with alg and enc ("" = default),
// and decrypts what says which.
func (w *discoveryWalker) encrypted(t *testing.T, alg, enc, what string) {
	var priv, pub any
	switch {
	case strings.HasPrefix(alg, "RSA"):
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		priv, pub = k, &k.PublicKey
	case strings.HasPrefix(alg, "ECDH"):
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		priv, pub = k, &k.PublicKey
	default:
		t.Fatalf("no key type known for the advertised encryption algorithm %s", alg)
	}
	id := "enc-" + strings.ToLower(randomString(t)[:8])
	args := []string{"clients", "create", "--id", id, "--name", "Encrypted", "--public", "--grant-types", "authorization_code",
		"--redirect-uris", spaCallback, "--scopes", "openid email", "--encryption-jwk", "@" + writePublicJWK(t, pub, id),
		"--id-token-encrypted-response-alg", alg, "--userinfo-encrypted-response-alg", alg}
	if enc != "" {
		args = append(args, "--id-token-encrypted-response-enc", enc, "--userinfo-encrypted-response-enc", enc)
	}
	w.env.cli(t, args...)
	conf := w.scoped("openid", "email")
	conf.ClientID = id
	verifier, state := oauth2.GenerateVerifier(), randomString(t)
	q := callback(t, w.walk(newBrowser(t, spaCallback), w.authURL(conf, state, verifier)).page)
	tok, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	var sealed string
	if what == "id_token" {
		sealed, _ = tok.Extra("id_token").(string)
	} else {
		req, _ := http.NewRequest(http.MethodGet, w.meta["userinfo_endpoint"].(string), nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sealed = string(b)
	}
	obj, err := jose.ParseEncrypted(sealed, []jose.KeyAlgorithm{jose.KeyAlgorithm(alg)}, []jose.ContentEncryption{jose.ContentEncryption(cmpOr(enc, "A256GCM"))})
	if err != nil {
		t.Fatalf("%s is not a JWE with %s/%s: %v", what, alg, cmpOr(enc, "A256GCM"), err)
	}
	if _, err := obj.Decrypt(priv); err != nil {
		t.Fatalf("%s does not decrypt: %v", what, err)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// promptNone: with a session and consent, a silent request answers a code without a page.
func (w *discoveryWalker) promptNone(t *testing.T, _ string) {
	b := newBrowser(t, spaCallback)
	w.signedIn(t, b, "openid")
	conf := w.scoped("openid")
	verifier, state := oauth2.GenerateVerifier(), randomString(t)
	p := b.get(w.authURL(conf, state, verifier, oauth2.SetAuthURLParam("prompt", "none")))
	q := callback(t, p)
	if q.Get("code") == "" {
		t.Fatalf("prompt=none with a session: %v", q)
	}
}

// promptLogin: with a session, the user is asked to sign in again.
func (w *discoveryWalker) promptLogin(t *testing.T, _ string) {
	b := newBrowser(t, spaCallback)
	w.signedIn(t, b, "openid")
	conf := w.scoped("openid")
	walked := w.walk(b, w.authURL(conf, randomString(t), oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("prompt", "login")))
	if !walked.sawLogin {
		t.Fatal("prompt=login with a session did not show the sign-in page")
	}
	callback(t, walked.page)
}

// promptConsent: with consent remembered, the user is asked again.
func (w *discoveryWalker) promptConsent(t *testing.T, _ string) {
	b := newBrowser(t, spaCallback)
	w.signedIn(t, b, "openid")
	conf := w.scoped("openid")
	walked := w.walk(b, w.authURL(conf, randomString(t), oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("prompt", "consent")))
	if !walked.sawConsent {
		t.Fatal("prompt=consent with consent remembered did not show the consent page")
	}
	callback(t, walked.page)
}

// publicSubject: the sub is the user's own id, the same at every client (not pairwise).
func (w *discoveryWalker) publicSubject(t *testing.T, _ string) {
	full := w.signedInWithEverything(t)
	for _, u := range decodeJSON[[]shownUser](t, w.env.cli(t, "users", "list", "--json")) {
		if u.Email == adaEmail && full.idClaims["sub"] == u.ID {
			return
		}
	}
	t.Fatalf("sub %v is not the user's id", full.idClaims["sub"])
}

// requestObject: a client with a key of alg sends its whole authorization request as a signed object (RFC 9101);
// the outer parameters it also sends are ignored.
func (w *discoveryWalker) requestObject(t *testing.T, alg string) {
	k, ok := w.keys[alg]
	if !ok || strings.HasPrefix(alg, "HS") {
		k = newAssertionKey(t, alg)
	}
	if k.key == nil {
		t.Fatalf("no key type known for the advertised request object algorithm %s", alg)
	}
	id := "jar-" + strings.ToLower(alg) + "-" + strings.ToLower(randomString(t)[:6])
	w.env.cli(t, "clients", "create", "--id", id, "--name", "JAR "+alg, "--public", "--grant-types", "authorization_code",
		"--redirect-uris", spaCallback, "--scopes", "openid profile", "--jwks", anyJWKSFile(t, k),
		"--require-signed-request-object", "--request-object-signing-alg", alg)
	verifier, state := oauth2.GenerateVerifier(), randomString(t)
	obj := signObject(t, k, objectRequest(id, w.meta["issuer"].(string), state, verifier))
	u := w.meta["authorization_endpoint"].(string) + "?" + url.Values{"client_id": {id}, "request": {obj},
		"state": {"outer-state-ignored"}, "scope": {"openid email"}}.Encode()
	q := callback(t, w.walk(newBrowser(t, spaCallback), u).page)
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("callback = %v, want a code and the object's state", q)
	}
	conf := w.scoped("openid", "profile")
	conf.ClientID = id
	tok, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	if s, _ := tok.Extra("scope").(string); s != "openid profile" {
		t.Errorf("granted %q, want the object's scope", s)
	}
}

// register: a client registers itself with an initial access token (RFC 7591) and gets a token.
func (w *discoveryWalker) register(t *testing.T, endpoint string) {
	code, _, body := regCall(t, "POST", endpoint, registrationToken(t, w.env), map[string]any{"client_name": "Walker",
		"grant_types": []string{"client_credentials"}, "scope": "profile"})
	id, _ := body["client_id"].(string)
	secret, _ := body["client_secret"].(string)
	if code != http.StatusCreated || id == "" || secret == "" {
		t.Fatalf("registration: %d %v", code, body)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}}
	if code, _, tok := postForm(t, w.meta["token_endpoint"].(string), form, id, secret); code != http.StatusOK {
		t.Fatalf("the registered client's client_credentials: %d %v", code, tok)
	}
}

// pushed: the SPA pushes its request (RFC 9126) and the browser goes to the authorization endpoint with the
// request_uri alone.
func (w *discoveryWalker) pushed(t *testing.T, endpoint string) {
	verifier, state := oauth2.GenerateVerifier(), randomString(t)
	form := url.Values{"client_id": {"spa"}, "response_type": {"code"}, "redirect_uri": {spaCallback}, "scope": {"openid"},
		"state": {state}, "nonce": {randomString(t)}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"}}
	code, _, body := postForm(t, endpoint, form, "", "")
	uri, _ := body["request_uri"].(string)
	if code != http.StatusCreated || uri == "" {
		t.Fatalf("PAR: %d %v", code, body)
	}
	u := w.meta["authorization_endpoint"].(string) + "?" + url.Values{"client_id": {"spa"}, "request_uri": {uri}}.Encode()
	q := callback(t, w.walk(newBrowser(t, spaCallback), u).page)
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("callback = %v", q)
	}
	w.exchange(t, w.scoped("openid"), q.Get("code"), verifier)
}

// logoutChannels signs in with a client that has both logout URIs, session required, logs out with its ID
// token, and checks the signed-out page frames the front-channel URI with iss and sid and a logout token with the
// same sid reaches the back-channel URI. It runs once, for the four flags.
func (w *discoveryWalker) logoutChannels(t *testing.T, _ string) {
	w.logoutOnce.Do(func() { w.logoutErr = w.tryLogoutChannels(t) })
	if w.logoutErr != "" {
		t.Fatal(w.logoutErr)
	}
}

func (w *discoveryWalker) tryLogoutChannels(t *testing.T) string {
	rcv := newLogoutReceiver(t)
	w.env.cli(t, "clients", "create", "--id", "walk-logout", "--name", "Walk logout", "--public",
		"--grant-types", "authorization_code", "--redirect-uris", spaCallback, "--scopes", "openid",
		"--backchannel-logout-uri", rcv.URL, "--backchannel-logout-session-required",
		"--frontchannel-logout-uri", "http://localhost:5173/fc", "--frontchannel-logout-session-required")
	conf := w.scoped("openid")
	conf.ClientID = "walk-logout"
	b := newBrowser(t, spaCallback)
	verifier := oauth2.GenerateVerifier()
	q := callback(t, w.walk(b, w.authURL(conf, randomString(t), verifier)).page)
	tok, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return "code exchange: " + err.Error()
	}
	idt, _ := tok.Extra("id_token").(string)
	parts := strings.Split(idt, ".")
	var idClaims map[string]any
	if len(parts) != 3 {
		return "no ID token"
	}
	if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || json.Unmarshal(raw, &idClaims) != nil {
		return "ID token payload does not decode"
	}
	sid, _ := idClaims["sid"].(string)
	resp, body := fetch(t, noRedirects(b), http.MethodGet, w.srv.URL+"/oauth2/logout?id_token_hint="+idt, nil)
	frame := "http://localhost:5173/fc?" + strings.ReplaceAll(url.Values{"iss": {w.srv.URL}, "sid": {sid}}.Encode(), "&", "&amp;")
	if resp.StatusCode != http.StatusOK || sid == "" || !strings.Contains(body, frame) {
		return "signed-out page without the front-channel frame " + frame + ":\n" + body
	}
	jwks := fetchJWKS(t, w.srv.URL)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got := rcv.received(); len(got) > 0 {
			if c := logoutClaims(t, got[0], jwks); c["sid"] != sid || c["aud"] != "walk-logout" {
				return "logout token about another session or client"
			}
			return ""
		}
	}
	return "no logout token reached the back-channel URI"
}
