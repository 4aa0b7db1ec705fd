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
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body)}
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

func TestAuthorizationCodeFlowWithPKCE(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newOIDCFixture(t, env)
		ctx := context.Background()
		b := newBrowser(t, spaCallback)
		verifier, state, nonce := oauth2.GenerateVerifier(), randomString(t), randomString(t)

		cb := f.signIn(t, b, verifier, state, nonce)
		if cb.Query().Get("state") != state || cb.Query().Get("code") == "" {
			t.Fatalf("callback = %v", cb)
		}
		tok, err := f.conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("code exchange: %v", err)
		}
		if tok.RefreshToken == "" {
			t.Fatal("offline_access was granted but no refresh token was issued")
		}
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := f.verifier.Verify(ctx, rawID)
		if err != nil {
			t.Fatalf("ID token does not verify: %v", err)
		}
		var claims struct {
			Nonce    string   `json:"nonce"`
			SID      string   `json:"sid"`
			AMR      []string `json:"amr"`
			AuthTime int64    `json:"auth_time"`
			AtHash   string   `json:"at_hash"`
			Email    string   `json:"email"`
			Name     string   `json:"name"`
			Roles    []string `json:"roles"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if claims.Nonce != nonce || claims.SID == "" || len(claims.AMR) == 0 || claims.AuthTime == 0 || claims.AtHash == "" ||
			claims.Email != "ada@example.com" || claims.Name != "Ada Lovelace" || strings.Join(claims.Roles, ",") != "admin,editor" {
			t.Errorf("ID token claims = %+v", claims)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}

		ui, err := f.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		var info map[string]any
		if err := ui.Claims(&info); err != nil {
			t.Fatal(err)
		}
		roles, _ := info["roles"].([]any)
		extras, _ := info["extras"].(map[string]any)
		if info["sub"] != idt.Subject || len(roles) != 2 || extras["plan"] != "pro" || info["email"] != "ada@example.com" {
			t.Errorf("userinfo = %v", info)
		}

		// Refresh rotates; the old refresh token is then refused and its reuse revokes the whole grant.
		old := tok.RefreshToken
		tok2, err := f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if tok2.RefreshToken == "" || tok2.RefreshToken == old {
			t.Fatal("refresh token was not rotated")
		}
		if _, err := f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("reused refresh token: err = %v, want invalid_grant", err)
		}
		if _, err := f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token(); err == nil {
			t.Fatal("after reuse detection the newest refresh token of the grant still works")
		}

		// The code is single-use: a second exchange fails.
		if _, err := f.conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier)); err == nil {
			t.Fatal("authorization code was accepted twice")
		}

		// A second sign-in in the same browser needs neither password nor consent.
		cb2 := f.signIn(t, b, oauth2.GenerateVerifier(), state, nonce)
		if cb2.Query().Get("code") == "" {
			t.Fatalf("second sign-in: %v", cb2)
		}
	})
}
