package e2e

import (
	"context"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// In a real Chromium, a sign-in whose first password was wrong still reaches the app: the page shown again lets
// its form end at the redirect URI (form-action covers the redirects after the post). The request leaves
// redirect_uri out (OAuth 2.0 allows it with one registered), so only the client's registration names it.
func TestSignInAfterAWrongPasswordReachesTheAppInChromium(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		t.Skip("no chromium binary found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := newTestEnv(t, "sqlite://"+filepath.Join(t.TempDir(), "latchkey.db"))
	cb := &appCallback{got: make(chan url.Values, 1)}
	app := httptest.NewServer(cb)
	defer app.Close()
	env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
	env.cli(t, "clients", "create", "--id", "spa", "--name", "Example SPA", "--public", "--first-party",
		"--grant-types", "authorization_code", "--redirect-uris", app.URL+"/callback", "--scopes", "openid email")
	srv := env.startServer(t)
	q := url.Values{"response_type": {"code"}, "client_id": {"spa"}, "scope": {"email"}, "state": {randomString(t)},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
	authURL := srv.URL + "/oauth2/auth?" + q.Encode()

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	defer cancelBrowser()
	const (
		emailInput    = `//input[@id=//label[normalize-space()="Email address"]/@for]`
		passwordInput = `//input[@id=//label[normalize-space()="Password"]/@for]`
		signInButton  = `//button[normalize-space()="Sign in"]`
		wrongPassword = `//*[@role="alert"]`
	)
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(browser, actions...); err != nil {
			at, _ := chromedp.Run(context.WithoutCancel(browser), chromedp.Location())
			t.Fatalf("%s: %v (at %s)", what, err, at)
		}
	}
	step("open the sign-in page", chromedp.Navigate(authURL), chromedp.WaitVisible(emailInput))
	step("a wrong password", chromedp.SendKeys(emailInput, adaEmail), chromedp.SendKeys(passwordInput, "not the password"),
		chromedp.Click(signInButton), chromedp.WaitVisible(wrongPassword))
	step("the right password", chromedp.SendKeys(passwordInput, adaPassword), chromedp.Click(signInButton))
	select {
	case got := <-cb.got:
		if got.Get("code") == "" || got.Get("state") != q.Get("state") {
			t.Fatalf("callback = %v", got)
		}
	case <-time.After(15 * time.Second):
		at, _ := chromedp.Run(context.WithoutCancel(browser), chromedp.Location())
		t.Fatalf("the app never received the callback; the browser is at %s", at)
	}
}
