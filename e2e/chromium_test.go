package e2e

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// findChromium returns the Chromium binary, or "" when there is none.
func findChromium() string {
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// appCallback is the relying party's redirect URI handler: it records what the browser brought back, by query
// (response_mode=query) or by form (form_post).
type appCallback struct {
	got chan url.Values
}

func (a *appCallback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/callback" {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case a.got <- r.Form:
	default:
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(`<!doctype html><title>App</title><h1 id="app">Signed in to the app</h1>`))
}

// TestSignInWithChromium runs the authorization code flow in a real headless Chromium: the sign-in and consent
// pages must work with a browser's CSP, cookie and redirect rules, not only with Go's HTTP client.
func TestSignInWithChromium(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		if os.Getenv("LATCHKEY_REQUIRE_BROWSER") == "1" {
			t.Fatal("LATCHKEY_REQUIRE_BROWSER=1 but no chromium binary was found (looked for /usr/bin/chromium, chromium, chromium-browser)")
		}
		t.Skip("no chromium binary found (looked for /usr/bin/chromium, chromium, chromium-browser); install Debian's chromium package or set LATCHKEY_REQUIRE_BROWSER=1 to make this a failure")
	}
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	env := newTestEnv(t, "sqlite://"+filepath.Join(t.TempDir(), "latchkey.db"))
	cb := &appCallback{got: make(chan url.Values, 1)}
	app := httptest.NewServer(cb)
	defer app.Close()
	redirect := app.URL + "/callback"
	env.cli(t, "users", "create", "--email", "ada@example.com", "--password", "correct horse battery", "--name", "Ada Lovelace")
	env.cli(t, "clients", "create", "--id", "spa", "--name", "Example SPA", "--public",
		"--grant-types", "authorization_code,refresh_token", "--redirect-uris", redirect, "--scopes", "openid profile email")
	srv := env.startServer(t)

	provider, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: "spa", Endpoint: provider.Endpoint(), RedirectURL: redirect, Scopes: []string{"openid", "profile", "email"}}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	verifier, state, nonce := oauth2.GenerateVerifier(), randomString(t), randomString(t)
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	defer cancelBrowser()

	// Inputs are found through their visible labels, so the test fails if the labelling breaks.
	const (
		emailInput    = `//input[@id=//label[normalize-space()="Email address"]/@for]`
		passwordInput = `//input[@id=//label[normalize-space()="Password"]/@for]`
		signInButton  = `//button[normalize-space()="Sign in"]`
		allowButton   = `//button[normalize-space()="Allow"]`
	)
	launched := time.Now()
	if err := chromedp.Do(browser, chromedp.Navigate(authURL), chromedp.WaitVisible(emailInput)); err != nil {
		t.Fatalf("open the authorization URL: %v (after %v)", err, time.Since(launched))
	}
	title, err := chromedp.Run(browser, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := chromedp.Do(browser,
		chromedp.SendKeys(emailInput, "ada@example.com"),
		chromedp.SendKeys(passwordInput, "correct horse battery"),
		chromedp.Click(signInButton),
		chromedp.WaitVisible(allowButton),
		chromedp.Click(allowButton),
	); err != nil {
		at, _ := chromedp.Run(browser, chromedp.Location())
		t.Fatalf("sign in and consent: %v (at %s after %v)", err, at, time.Since(launched))
	}
	if title != "Sign in · Latchkey" {
		t.Errorf("login page title = %q", title)
	}
	png := filepath.Join(t.TempDir(), "login.png")
	if err := os.WriteFile(png, shot, 0o600); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(shot, []byte("\x89PNG\r\n\x1a\n")) || len(shot) < 1000 {
		t.Errorf("login page screenshot is not a PNG (%d bytes)", len(shot))
	}

	var q url.Values
	select {
	case q = <-cb.got:
	case <-ctx.Done():
		at, _ := chromedp.Run(context.WithoutCancel(browser), chromedp.Location())
		t.Fatalf("the app never received the callback; the browser is at %s", at)
	}
	if q.Get("state") != state || q.Get("code") == "" || q.Get("error") != "" {
		t.Fatalf("callback = %v", q)
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "spa"}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Nonce != nonce || claims.Email != "ada@example.com" || claims.Name != "Ada Lovelace" {
		t.Errorf("ID token: nonce %q (want %q), claims %+v", idt.Nonce, nonce, claims)
	}

	// Signed in and consented, a form_post request comes back at once through the page's auto-submitting form,
	// which only a browser runs.
	verifier2, state2 := oauth2.GenerateVerifier(), randomString(t)
	formPostURL := conf.AuthCodeURL(state2, oauth2.S256ChallengeOption(verifier2), oidc.Nonce(randomString(t)),
		oauth2.SetAuthURLParam("response_mode", "form_post"))
	if err := chromedp.Do(browser, chromedp.Navigate(formPostURL), chromedp.WaitVisible(chromedp.ID("app"))); err != nil {
		t.Fatalf("form_post in the browser: %v", err)
	}
	select {
	case q = <-cb.got:
	case <-ctx.Done():
		t.Fatal("the app never received the form_post callback")
	}
	if q.Get("state") != state2 || q.Get("code") == "" {
		t.Fatalf("form_post callback = %v", q)
	}
	if _, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier2)); err != nil {
		t.Fatalf("form_post code exchange: %v", err)
	}
	t.Logf("Chromium flow took %v (browser part %v); login screenshot at %s", time.Since(started).Round(time.Millisecond), time.Since(launched).Round(time.Millisecond), png)
}
