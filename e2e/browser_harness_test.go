package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

const spaCallback = "http://localhost:5173/callback"

// browserClient is a cookie-keeping HTTP client that stops at the client's redirect URI, as a browser would
// hand that URL to the app.
type browserClient struct {
	t *testing.T
	c *http.Client
}

var errReachedApp = errors.New("reached the app")

func newBrowser(t *testing.T, stopAt string) *browserClient {
	jar, _ := cookiejar.New(nil)
	return &browserClient{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), stopAt) {
			return errReachedApp
		}
		return nil
	}}}
}

// page is a fetched response: where the browser ended up, the status and the body.
type page struct {
	status int
	url    *url.URL
	body   string
	csp    string // the page's Content-Security-Policy (a browser enforces its form-action on the redirects after a post)
}

func (b *browserClient) do(req *http.Request) page {
	b.t.Helper()
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
	resp, err := b.c.Do(req)
	if err != nil && !errors.Is(err, errReachedApp) {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if errors.Is(err, errReachedApp) {
		loc, _ := resp.Location()
		return page{status: resp.StatusCode, url: loc, body: string(body)}
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body), csp: resp.Header.Get("Content-Security-Policy")}
}

func (b *browserClient) get(u string) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

// submit fills the page's form (the one whose submit button has the given name/value, or the first) and posts it.
func (b *browserClient) submit(p page, fields map[string]string, button ...string) page {
	b.t.Helper()
	action, values := parseForm(b.t, p.body, button...)
	for k, v := range fields {
		values.Set(k, v)
	}
	target := p.url.ResolveReference(&url.URL{Path: action})
	if u, err := url.Parse(action); err == nil {
		target = p.url.ResolveReference(u)
	}
	req, _ := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(values.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// parseForm returns the action and the hidden fields of the form containing the named button (or the first form).
func parseForm(t *testing.T, body string, button ...string) (string, url.Values) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	attr := func(n *html.Node, k string) string {
		for _, a := range n.Attr {
			if a.Key == k {
				return a.Val
			}
		}
		return ""
	}
	var forms []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "form" {
			forms = append(forms, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, f := range forms {
		values := url.Values{}
		matched := len(button) == 0
		var inner func(*html.Node)
		inner = func(n *html.Node) {
			if n.Type == html.ElementNode && (n.Data == "input" || n.Data == "button") {
				name, val, typ := attr(n, "name"), attr(n, "value"), attr(n, "type")
				if typ == "hidden" && name != "" {
					values.Set(name, val)
				}
				if len(button) == 2 && name == button[0] && val == button[1] {
					matched = true
					values.Set(name, val)
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				inner(c)
			}
		}
		inner(f)
		if matched {
			return attr(f, "action"), values
		}
	}
	t.Fatalf("no matching form in page:\n%s", body)
	return "", nil
}

func randomString(t *testing.T) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// oidcFixture is a running server with a user and a public SPA client.
type oidcFixture struct {
	env      testEnv
	srv      *server
	provider *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newOIDCFixture(t *testing.T, env testEnv, clientArgs ...string) *oidcFixture {
	t.Helper()
	env.cli(t, "users", "create", "--email", "ada@example.com", "--password", "correct horse battery", "--roles", "admin,editor",
		"--name", "Ada Lovelace", "--claims", "plan=pro")
	args := append([]string{"clients", "create", "--id", "spa", "--name", "Example SPA", "--public",
		"--grant-types", "authorization_code,refresh_token", "--redirect-uris", spaCallback,
		"--post-logout-redirect-uris", "http://localhost:5173/bye",
		"--scopes", "openid profile email roles offline_access"}, clientArgs...)
	env.cli(t, args...)
	srv := env.startServer(t)
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &oidcFixture{
		env: env, srv: srv, provider: p,
		conf: oauth2.Config{ClientID: "spa", Endpoint: p.Endpoint(), RedirectURL: spaCallback,
			Scopes: []string{"openid", "profile", "email", "roles", "offline_access"}},
		verifier: p.Verifier(&oidc.Config{ClientID: "spa"}),
	}
}

// signIn runs the browser part of an authorization code + PKCE flow and returns the callback URL.
func (f *oidcFixture) signIn(t *testing.T, b *browserClient, verifier, state, nonce string, extra ...oauth2.AuthCodeOption) *url.URL {
	t.Helper()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}, extra...)
	p := b.get(f.conf.AuthCodeURL(state, opts...))
	if strings.Contains(p.body, `name="password"`) {
		p = b.submit(p, map[string]string{"email": "ada@example.com", "password": "correct horse battery"})
	}
	if strings.Contains(p.body, `value="allow"`) {
		if !strings.Contains(p.body, "Example SPA") {
			t.Errorf("consent page does not name the client")
		}
		p = b.submit(p, nil, "decision", "allow")
	}
	if p.url == nil || !strings.HasPrefix(p.url.String(), spaCallback) {
		t.Fatalf("did not reach the callback; at %v (%d):\n%s", p.url, p.status, p.body)
	}
	return p.url
}

// Edge cases of the browser-facing OpenID Connect flows, driven over real HTTP with cookie-keeping clients.

const (
	adaEmail    = "ada@example.com"
	adaPassword = "correct horse battery"
	spaBye      = "http://localhost:5173/bye"
)

// edge is an OIDC fixture with the helpers these tests share.
type edge struct {
	*oidcFixture
}

func newEdge(t *testing.T, env testEnv, clientArgs ...string) *edge {
	t.Helper()
	f := newOIDCFixture(t, env, clientArgs...)
	f.conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	return &edge{f}
}

// scoped is the SPA's OAuth configuration asking for exactly these scopes.
func (e *edge) scoped(scopes ...string) oauth2.Config {
	c := e.conf
	c.Scopes = scopes
	return c
}

// authURL is an authorization request of the SPA with PKCE (S256 over verifier) and a nonce.
func (e *edge) authURL(conf oauth2.Config, state, verifier string, extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(randomString(nil))}, extra...)
	return conf.AuthCodeURL(state, opts...)
}

// walked is where an authorization request ended after the user signed in and allowed whatever was asked.
type walked struct {
	page
	sawLogin, sawConsent bool
}

// walk opens u and, like a user, signs in (as ada unless other credentials are given) and allows consent
// when asked.
func (e *edge) walk(b *browserClient, u string, creds ...string) walked {
	b.t.Helper()
	email, password := adaEmail, adaPassword
	if len(creds) == 2 {
		email, password = creds[0], creds[1]
	}
	w := walked{page: b.get(u)}
	if strings.Contains(w.body, `name="password"`) {
		w.sawLogin = true
		w.page = b.submit(w.page, map[string]string{"email": email, "password": password})
	}
	if strings.Contains(w.body, `value="allow"`) {
		w.sawConsent = true
		w.page = b.submit(w.page, nil, "decision", "allow")
	}
	return w
}

// callback asserts that p is the browser arriving at the SPA's redirect URI and returns that URI's query.
func callback(t *testing.T, p page) url.Values {
	t.Helper()
	if p.url == nil || !strings.HasPrefix(p.url.String(), spaCallback) {
		t.Fatalf("did not reach the callback; at %v (%d):\n%s", p.url, p.status, p.body)
	}
	return p.url.Query()
}

// signedIn runs a whole flow in b with the given scopes and returns the tokens and the ID token's claims.
func (e *edge) signedIn(t *testing.T, b *browserClient, scopes ...string) (*oauth2.Token, map[string]any) {
	t.Helper()
	if len(scopes) == 0 {
		scopes = e.conf.Scopes
	}
	conf := e.scoped(scopes...)
	verifier, state := oauth2.GenerateVerifier(), randomString(t)
	q := callback(t, e.walk(b, e.authURL(conf, state, verifier)).page)
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("callback query = %v", q)
	}
	tok, claims := e.exchange(t, conf, q.Get("code"), verifier)
	return tok, claims
}

// exchange redeems a code and verifies the ID token.
func (e *edge) exchange(t *testing.T, conf oauth2.Config, code, verifier string) (*oauth2.Token, map[string]any) {
	t.Helper()
	ctx := context.Background()
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := e.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token does not verify: %v", err)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return tok, claims
}

// tokenCall posts to the token endpoint as the public SPA and returns the status and the JSON answer.
func (e *edge) tokenCall(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	form.Set("client_id", "spa")
	code, _, body := postForm(t, e.srv.URL+"/oauth2/token", form, "", "")
	return code, body
}

// refresh uses a refresh token of the SPA and returns the status and the error code ("" on success).
func (e *edge) refresh(t *testing.T, rt string) (int, string) {
	t.Helper()
	code, body := e.tokenCall(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	errCode, _ := body["error"].(string)
	return code, errCode
}

// mustRefreshFail asserts that a refresh token is refused with invalid_grant.
func (e *edge) mustRefreshFail(t *testing.T, rt, why string) {
	t.Helper()
	if code, errCode := e.refresh(t, rt); code != http.StatusBadRequest || errCode != "invalid_grant" {
		t.Errorf("%s: refresh answered %d %q, want 400 invalid_grant", why, code, errCode)
	}
}

// noRedirects is a client sharing b's cookies that reports the first response instead of following redirects.
func noRedirects(b *browserClient) *http.Client {
	var jar http.CookieJar
	if b != nil {
		jar = b.c.Jar
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// fetch sends one request with c and returns the response (body closed) and its body.
func fetch(t *testing.T, c *http.Client, method, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// redirectedTo asserts resp redirects to the SPA callback and returns the callback's query.
func redirectedTo(t *testing.T, resp *http.Response, body, prefix string) url.Values {
	t.Helper()
	loc, err := resp.Location()
	if resp.StatusCode < 300 || resp.StatusCode > 399 || err != nil || !strings.HasPrefix(loc.String(), prefix) {
		t.Fatalf("want a redirect to %s, got %d Location=%q:\n%s", prefix, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return loc.Query()
}

// isOurErrorPage asserts resp is Latchkey's own HTML error page with the given status, and no redirect.
func isOurErrorPage(t *testing.T, resp *http.Response, body string, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d\n%s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", ct)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		t.Errorf("error answered with a redirect to %q", loc)
	}
	if !strings.Contains(body, "<h1>") {
		t.Errorf("not an HTML page:\n%s", body)
	}
}

// htmlForm is one form of a page: its action and the values of its inputs.
type htmlForm struct {
	action string
	values url.Values
}

// formsOf returns every form of an HTML page with its inputs' names and values.
func formsOf(t *testing.T, body string) []htmlForm {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	attr := func(n *html.Node, k string) string {
		for _, a := range n.Attr {
			if a.Key == k {
				return a.Val
			}
		}
		return ""
	}
	var out []htmlForm
	var walk func(n *html.Node, cur int)
	walk = func(n *html.Node, cur int) {
		if n.Type == html.ElementNode && n.Data == "form" {
			out = append(out, htmlForm{action: attr(n, "action"), values: url.Values{}})
			cur = len(out) - 1
		}
		if cur >= 0 && n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" {
			out[cur].values.Add(attr(n, "name"), attr(n, "value"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, cur)
		}
	}
	walk(doc, -1)
	return out
}

// formWith returns the page's form having an input name=value.
func formWith(t *testing.T, body, name, value string) htmlForm {
	t.Helper()
	for _, f := range formsOf(t, body) {
		for _, v := range f.values[name] {
			if v == value {
				return f
			}
		}
	}
	t.Fatalf("no form with %s=%s in page:\n%s", name, value, body)
	return htmlForm{}
}

// post submits values to action (relative to p's URL) in browser b and returns where the browser ends up.
func post(b *browserClient, p page, action string, values url.Values) page {
	b.t.Helper()
	target := p.url
	if u, err := url.Parse(action); err == nil {
		target = p.url.ResolveReference(u)
	}
	req, _ := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(values.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}
