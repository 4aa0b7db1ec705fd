package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// target is the running server and what was provisioned on it.
type target struct {
	base string // http://127.0.0.1:port

	cc, ccJWT, rs   credentials // client_credentials clients (opaque, JWT) and a resource server that introspects
	pkjwt           credentials // a client_credentials client authenticating with private_key_jwt (ES256)
	pkjwtKey        *ecdsa.PrivateKey
	app             string
	redirect        string
	email, password string

	// userToken is an access token with openid, for userinfo; fetched once.
	userTokenOnce sync.Once
	userToken     string
	userTokenErr  error
}

type credentials struct {
	id, secret string
	basic      string // the Authorization header value
}

func newCredentials(id, secret string) credentials {
	// RFC 6749 §2.3.1: form-encode both parts before Base64.
	raw := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
	return credentials{id: id, secret: secret, basic: "Basic " + base64.StdEncoding.EncodeToString([]byte(raw))}
}

func (c credentials) auth(h http.Header) { h.Set("Authorization", c.basic) }

const formType = "application/x-www-form-urlencoded"

// scenario is one row family of the report.
type scenario struct {
	name string
	// note says what one "request" is, printed under the table.
	note string
	// server is false for the ceiling, which runs in the harness process: no server RSS or CPU to show.
	server bool
	// prepare runs once per worker before the clock starts and returns the loop body.
	prepare func(ctx context.Context, t *target, w *worker) (iteration, error)
	// verify, if set, checks a sample of what the run kept (w.keep) and returns a sentence for the notes.
	verify func(ctx context.Context, t *target, w *worker, kept []string) string
}

// allScenarios, in run and report order. The ceiling is first: every other figure is shown as a fraction of it.
// The argon2-bound ones come last, because the memory their concurrent hashes take stays resident for a while
// (the Go runtime returns freed memory lazily) and would inflate the peak RSS of whatever ran next.
var allScenarios = []*scenario{
	{name: "ceiling", note: "a bare net/http handler in the harness process answering a fixed 90-byte JSON body: the most this machine, load generator and loopback can do", prepare: prepareCeiling},
	{name: "client_credentials", server: true, note: "POST /oauth2/token grant_type=client_credentials, opaque token, client_secret_basic", prepare: prepareCC(false), verify: verifyActive},
	{name: "client_credentials_jwt", server: true, note: "the same for a client created with --access-token-format jwt (RFC 9068, signed with RS256)", prepare: prepareCC(true), verify: verifyActive},
	{name: "client_credentials_private_key_jwt", server: true, note: "the opaque client_credentials request authenticated with private_key_jwt: an ES256 client assertion (signed by the harness, a fresh jti each) instead of a secret; the server verifies it against the client's registered JWK Set and records the jti once", prepare: preparePrivateKeyJWT},
	{name: "client_credentials_dpop", server: true, note: "the opaque client_credentials request (client_secret_basic) with a DPoP proof (RFC 9449: ES256, a fresh jti each, signed by the harness): the server verifies it, records its jti once and binds the token to the key (token_type DPoP)", prepare: prepareDPoP},
	{name: "introspect", server: true, note: "POST /oauth2/introspect of a valid opaque token, caller authenticated (Basic) as a resource-server client", prepare: prepareIntrospect},
	{name: "revoke", server: true, note: "each iteration issues an opaque token and revokes it (POST /oauth2/revoke); latency is the revoke alone, req/s counts revokes (each also paid for its issuance)", prepare: prepareRevoke, verify: verifyInactive},
	{name: "userinfo", server: true, note: "GET /userinfo with a Bearer token carrying openid", prepare: prepareUserinfo},
	{name: "jwks", server: true, note: "GET /.well-known/jwks.json", prepare: prepareGet("/.well-known/jwks.json")},
	{name: "discovery", server: true, note: "GET /.well-known/openid-configuration", prepare: prepareGet("/.well-known/openid-configuration")},
	{name: "refresh", server: true, note: "each worker signs in once through POST /api/v1/auth/login, then chains its own refresh tokens through POST /api/v1/auth/refresh", prepare: prepareRefresh},
	{name: "api_refresh", server: true, note: "the same loop as refresh (POST /api/v1/auth/refresh with {\"refresh_token\": …}), kept under the token API's name", prepare: prepareRefresh},
	{name: "authorize_anonymous", server: true, note: "GET /oauth2/auth (code + PKCE, fresh state) with no session: the sign-in page, the pending request sealed into it; stores nothing", prepare: prepareAuthorizeAnonymous},
	{name: "authcode", server: true, note: "one complete sign-in per iteration with a fresh cookie jar: GET /oauth2/auth, POST /login (argon2id), GET /oauth2/auth?lk_challenge, POST /oauth2/token with code + PKCE verifier; req/s = sign-ins/s, latency = the whole sign-in. Argon2-bound", prepare: prepareAuthcode},
	{name: "api_login", server: true, note: "POST /api/v1/auth/login (JSON email + password; creates a session, issues access, refresh and ID tokens). Argon2-bound", prepare: prepareAPILogin},
}

func scenarioByName(name string) *scenario {
	for _, s := range allScenarios {
		if s.name == name {
			return s
		}
	}
	return nil
}

// ceilingBody is about the size of a token response.
const ceilingBody = `{"access_token":"lk_at_0123456789abcdef0123456789","expires_in":3599,"token_type":"bearer"}` + "\n"

func ceilingHandler() http.Handler {
	body := []byte(ceilingBody)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

func prepareCeiling(_ context.Context, _ *target, w *worker) (iteration, error) {
	return func(ctx context.Context) (time.Duration, error) {
		t0 := time.Now()
		_, _, err := w.call(ctx, nil, http.MethodGet, "/", "", "", nil, http.StatusOK)
		return time.Since(t0), err
	}, nil
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

func parseToken(body []byte, wantRefresh bool) (tokenResponse, error) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return tr, badResponse("token response is not JSON: %v", err)
	}
	if tr.AccessToken == "" {
		return tr, badResponse("token response without access_token")
	}
	if wantRefresh && tr.RefreshToken == "" {
		return tr, badResponse("token response without refresh_token")
	}
	return tr, nil
}

// issueCC gets one client_credentials token.
func issueCC(ctx context.Context, w *worker, c credentials) (string, error) {
	_, body, err := w.call(ctx, nil, http.MethodPost, "/oauth2/token", formType,
		"grant_type=client_credentials&scope=read", c.auth, http.StatusOK)
	if err != nil {
		return "", err
	}
	tr, err := parseToken(body, false)
	return tr.AccessToken, err
}

func prepareCC(jwt bool) func(context.Context, *target, *worker) (iteration, error) {
	return func(_ context.Context, t *target, w *worker) (iteration, error) {
		c := t.cc
		if jwt {
			c = t.ccJWT
		}
		return func(ctx context.Context) (time.Duration, error) {
			t0 := time.Now()
			tok, err := issueCC(ctx, w, c)
			d := time.Since(t0)
			if err == nil {
				w.keep(tok)
			}
			return d, err
		}, nil
	}
}

// preparePrivateKeyJWT: each iteration signs a fresh RFC 7523 assertion (the client's cost, outside the server) and
// asks for a client_credentials token with it.
func preparePrivateKeyJWT(_ context.Context, t *target, w *worker) (iteration, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: t.pkjwtKey}, (&jose.SignerOptions{}).WithHeader("kid", "bench"))
	if err != nil {
		return nil, err
	}
	aud := t.base + "/oauth2/token"
	return func(ctx context.Context) (time.Duration, error) {
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{"iss": t.pkjwt.id, "sub": t.pkjwt.id, "aud": aud,
			"jti": randomString(16), "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix()})
		sig, err := signer.Sign(claims)
		if err != nil {
			return 0, err
		}
		assertion, err := sig.CompactSerialize()
		if err != nil {
			return 0, err
		}
		body := "grant_type=client_credentials&scope=read&client_assertion_type=" +
			url.QueryEscape("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") + "&client_assertion=" + assertion
		t0 := time.Now()
		_, resp, err := w.call(ctx, nil, http.MethodPost, "/oauth2/token", formType, body, nil, http.StatusOK)
		d := time.Since(t0)
		if err != nil {
			return d, err
		}
		tr, err := parseToken(resp, false)
		if err == nil {
			w.keep(tr.AccessToken)
		}
		return d, err
	}, nil
}

// prepareDPoP: each worker has its own P-256 key; each iteration signs a fresh proof (the client's cost, outside
// the server) and asks for a client_credentials token bound to it.
func prepareDPoP(_ context.Context, t *target, w *worker) (iteration, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	opts := (&jose.SignerOptions{}).WithType("dpop+jwt").WithHeader("jwk", jose.JSONWebKey{Key: &key.PublicKey})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		return nil, err
	}
	htu := t.base + "/oauth2/token"
	return func(ctx context.Context) (time.Duration, error) {
		claims, _ := json.Marshal(map[string]any{"jti": randomString(16), "htm": http.MethodPost, "htu": htu, "iat": time.Now().Unix()})
		sig, err := signer.Sign(claims)
		if err != nil {
			return 0, err
		}
		proof, err := sig.CompactSerialize()
		if err != nil {
			return 0, err
		}
		header := func(h http.Header) { t.cc.auth(h); h.Set("DPoP", proof) }
		t0 := time.Now()
		_, resp, err := w.call(ctx, nil, http.MethodPost, "/oauth2/token", formType, "grant_type=client_credentials&scope=read", header, http.StatusOK)
		d := time.Since(t0)
		if err != nil {
			return d, err
		}
		var tr struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
		}
		if err := json.Unmarshal(resp, &tr); err != nil || !strings.EqualFold(tr.TokenType, "DPoP") {
			return d, badResponse("DPoP token response: %s", resp)
		}
		w.keep(tr.AccessToken)
		return d, nil
	}, nil
}

// introspectActive asks the server, as the resource server, whether tok is active.
func introspectActive(ctx context.Context, t *target, w *worker, tok string) (bool, error) {
	_, body, err := w.call(ctx, nil, http.MethodPost, "/oauth2/introspect", formType,
		"token="+url.QueryEscape(tok), t.rs.auth, http.StatusOK)
	if err != nil {
		return false, err
	}
	var ir struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(body, &ir); err != nil {
		return false, badResponse("introspection response is not JSON: %v", err)
	}
	return ir.Active, nil
}

func prepareIntrospect(ctx context.Context, t *target, w *worker) (iteration, error) {
	tok, err := issueCC(ctx, w, t.cc)
	if err != nil {
		return nil, fmt.Errorf("issue the token to introspect: %w", err)
	}
	return func(ctx context.Context) (time.Duration, error) {
		t0 := time.Now()
		active, err := introspectActive(ctx, t, w, tok)
		d := time.Since(t0)
		if err == nil && !active {
			err = badResponse("a valid token introspected as inactive")
		}
		return d, err
	}, nil
}

func prepareRevoke(_ context.Context, t *target, w *worker) (iteration, error) {
	return func(ctx context.Context) (time.Duration, error) {
		tok, err := issueCC(ctx, w, t.cc)
		if err != nil {
			return 0, err
		}
		t0 := time.Now()
		_, _, err = w.call(ctx, nil, http.MethodPost, "/oauth2/revoke", formType,
			"token="+url.QueryEscape(tok)+"&token_type_hint=access_token", t.cc.auth, http.StatusOK)
		d := time.Since(t0)
		if err == nil {
			w.keep(tok)
		}
		return d, err
	}, nil
}

// verifyActive introspects the kept sample of issued tokens: any that is not active is a lost write.
func verifyActive(ctx context.Context, t *target, w *worker, kept []string) string {
	return verifySample(ctx, t, w, kept, false, "issued tokens: %d not active (lost writes)")
}

// verifyInactive introspects the kept sample of revoked tokens: any still active is a revocation that did not stick.
func verifyInactive(ctx context.Context, t *target, w *worker, kept []string) string {
	return verifySample(ctx, t, w, kept, true, "revoked tokens: %d still active (lost revocations)")
}

// verifySample introspects kept and reports, through what (a format with one %d), how many answered wrongly.
func verifySample(ctx context.Context, t *target, w *worker, kept []string, wantInactive bool, what string) string {
	wrong, failed := checkSample(ctx, t, w, kept, wantInactive)
	s := fmt.Sprintf("introspected %d randomly sampled "+what, len(kept), wrong)
	if failed > 0 {
		s += fmt.Sprintf(", %d introspection calls failed", failed)
	}
	return s
}

func checkSample(ctx context.Context, t *target, w *worker, kept []string, wantInactive bool) (wrong, failed int) {
	for _, tok := range kept {
		active, err := introspectActive(ctx, t, w, tok)
		switch {
		case err != nil:
			failed++
		case active == wantInactive:
			wrong++
		}
	}
	return wrong, failed
}

// apiLogin signs the bench user in through the token API.
func apiLogin(ctx context.Context, t *target, w *worker, scope string) (tokenResponse, error) {
	body, _ := json.Marshal(map[string]string{"client_id": t.app, "email": t.email, "password": t.password, "scope": scope})
	_, resp, err := w.call(ctx, nil, http.MethodPost, "/api/v1/auth/login", "application/json", string(body), nil, http.StatusOK)
	if err != nil {
		return tokenResponse{}, err
	}
	return parseToken(resp, strings.Contains(scope, "offline_access"))
}

const userScopes = "openid offline_access profile email"

func prepareRefresh(ctx context.Context, t *target, w *worker) (iteration, error) {
	tr, err := apiLogin(ctx, t, w, userScopes)
	if err != nil {
		return nil, fmt.Errorf("sign in through the token API: %w", err)
	}
	rt := tr.RefreshToken
	return func(ctx context.Context) (time.Duration, error) {
		body, _ := json.Marshal(map[string]string{"refresh_token": rt})
		t0 := time.Now()
		_, resp, err := w.call(ctx, nil, http.MethodPost, "/api/v1/auth/refresh", "application/json", string(body), nil, http.StatusOK)
		d := time.Since(t0)
		if err == nil {
			var next tokenResponse
			if next, err = parseToken(resp, true); err == nil {
				rt = next.RefreshToken
				return d, nil
			}
		}
		// The chain is broken (or the answer unusable): start a new one, outside the latency record.
		if tr, lerr := apiLogin(ctx, t, w, userScopes); lerr == nil {
			rt = tr.RefreshToken
		}
		return d, err
	}, nil
}

func prepareAPILogin(_ context.Context, t *target, w *worker) (iteration, error) {
	return func(ctx context.Context) (time.Duration, error) {
		t0 := time.Now()
		_, err := apiLogin(ctx, t, w, userScopes)
		return time.Since(t0), err
	}, nil
}

func prepareUserinfo(ctx context.Context, t *target, w *worker) (iteration, error) {
	t.userTokenOnce.Do(func() {
		var tr tokenResponse
		tr, t.userTokenErr = apiLogin(ctx, t, w, userScopes)
		t.userToken = tr.AccessToken
	})
	if t.userTokenErr != nil {
		return nil, fmt.Errorf("sign in for a userinfo token: %w", t.userTokenErr)
	}
	bearer := "Bearer " + t.userToken
	return func(ctx context.Context) (time.Duration, error) {
		t0 := time.Now()
		_, body, err := w.call(ctx, nil, http.MethodGet, "/userinfo", "", "", func(h http.Header) { h.Set("Authorization", bearer) }, http.StatusOK)
		d := time.Since(t0)
		if err == nil && !strings.Contains(string(body), `"sub"`) {
			err = badResponse("userinfo without sub")
		}
		return d, err
	}, nil
}

func prepareGet(path string) func(context.Context, *target, *worker) (iteration, error) {
	return func(_ context.Context, _ *target, w *worker) (iteration, error) {
		return func(ctx context.Context) (time.Duration, error) {
			t0 := time.Now()
			_, _, err := w.call(ctx, nil, http.MethodGet, path, "", "", nil, http.StatusOK)
			return time.Since(t0), err
		}, nil
	}
}

var (
	csrfInput      = regexp.MustCompile(`name="csrf_token"\s+value="([^"]*)"`)
	challengeInput = regexp.MustCompile(`name="challenge"\s+value="([^"]*)"`)
)

// hiddenInput returns the value of the first match of re in an HTML page.
func hiddenInput(page []byte, re *regexp.Regexp) (string, bool) {
	m := re.FindSubmatch(page)
	if m == nil {
		return "", false
	}
	return html.UnescapeString(string(m[1])), true
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func prepareAuthorizeAnonymous(_ context.Context, t *target, w *worker) (iteration, error) {
	return func(ctx context.Context) (time.Duration, error) {
		sum := sha256.Sum256([]byte(randomString(32)))
		q := url.Values{
			"response_type": {"code"}, "client_id": {t.app}, "redirect_uri": {t.redirect}, "scope": {"openid offline_access"},
			"state": {randomString(12)}, "nonce": {randomString(12)},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		}
		t0 := time.Now()
		_, page, err := w.call(ctx, nil, http.MethodGet, "/oauth2/auth?"+q.Encode(), "", "", nil, http.StatusOK)
		if err == nil {
			if _, ok := hiddenInput(page, challengeInput); !ok {
				err = badResponse("authorize: the sign-in page has no challenge input")
			}
		}
		return time.Since(t0), err
	}, nil
}

func prepareAuthcode(_ context.Context, t *target, w *worker) (iteration, error) {
	return func(ctx context.Context) (time.Duration, error) {
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Transport: w.client.Transport, Jar: jar, CheckRedirect: noFollow}
		verifier, state, nonce := randomString(32), randomString(12), randomString(12)
		sum := sha256.Sum256([]byte(verifier))
		q := url.Values{
			"response_type": {"code"}, "client_id": {t.app}, "redirect_uri": {t.redirect}, "scope": {"openid offline_access"},
			"state": {state}, "nonce": {nonce},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		}
		t0 := time.Now()
		_, page, err := w.call(ctx, browser, http.MethodGet, "/oauth2/auth?"+q.Encode(), "", "", nil, http.StatusOK)
		if err != nil {
			return 0, fmt.Errorf("authorize: %w", err)
		}
		csrf, ok1 := hiddenInput(page, csrfInput)
		chal, ok2 := hiddenInput(page, challengeInput)
		if !ok1 || !ok2 {
			return 0, badResponse("authorize: the login form has no csrf_token or challenge input")
		}
		form := url.Values{"csrf_token": {csrf}, "challenge": {chal}, "email": {t.email}, "password": {t.password}}
		resp, _, err := w.call(ctx, browser, http.MethodPost, "/login", formType, form.Encode(), nil, wantRedirect)
		if err != nil {
			return 0, fmt.Errorf("login: %w", err)
		}
		resp, _, err = w.call(ctx, browser, http.MethodGet, resp.Header.Get("Location"), "", "", nil, wantRedirect)
		if err != nil {
			return 0, fmt.Errorf("resume authorize: %w", err)
		}
		cb, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || cb.Query().Get("code") == "" || cb.Query().Get("state") != state {
			return 0, badResponse("callback without code or with the wrong state: %q", resp.Header.Get("Location"))
		}
		tf := url.Values{
			"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")}, "redirect_uri": {t.redirect},
			"client_id": {t.app}, "code_verifier": {verifier},
		}
		_, body, err := w.call(ctx, browser, http.MethodPost, "/oauth2/token", formType, tf.Encode(), nil, http.StatusOK)
		if err != nil {
			return 0, fmt.Errorf("token: %w", err)
		}
		if _, err := parseToken(body, true); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	}, nil
}
