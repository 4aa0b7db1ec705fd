package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
)

// oidcClientApp is a single-page app on its own origin that signs in with oidc-client 1.x (vendored in
// testdata/oidc-client) configured as the WeWeb OpenID plugin configures it: response_type=id_token, userinfo
// loading on, silent renew through a hidden iframe. Each page leaves what happened in window.result.
func oidcClientApp(t *testing.T, issuer string) *httptest.Server {
	t.Helper()
	lib, err := os.ReadFile(filepath.Join("testdata", "oidc-client", "oidc-client.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	page := func(body string) string {
		return `<!doctype html><meta charset="utf-8"><title>App</title><body><script src="/oidc-client.min.js"></script>
<script>
const origin = location.protocol + "//" + location.host;
window.result = null;
const report = (r) => { window.result = r; const p = document.createElement("p"); p.id = "result";
  p.textContent = r.what + (r.error ? ": " + r.error : ""); document.body.appendChild(p); };
const failed = (what, err) => report({what: what, error: String(err && (err.error || err.message) || err)});
let mgr;
try { mgr = new Oidc.UserManager({
  authority: ` + jsString(issuer) + `, client_id: "weweb", response_type: "id_token",
  scope: "openid profile email roles", redirect_uri: origin + "/callback.html",
  silent_redirect_uri: origin + "/silent.html", loadUserInfo: true, automaticSilentRenew: false,
  userStore: new Oidc.WebStorageStateStore({store: window.localStorage}),
}); } catch (e) { failed("init", e); }
const done = (what, user) => report({what: what, id_token: user && user.id_token, profile: user && user.profile,
  access_token: user && user.access_token || null});
</script>` + body
	}
	pages := map[string]string{
		"/index.html":    page(`<button id="signin" onclick="mgr.signinRedirect().catch(e => failed('signin', e))">Sign in</button>`),
		"/callback.html": page(`<script>mgr.signinRedirectCallback().then(u => done('callback', u)).catch(e => failed('callback', e));</script>`),
		"/silent.html":   page(`<script>mgr.signinSilentCallback().catch(e => failed('silent', e));</script>`),
		"/renew.html":    page(`<script>mgr.signinSilent().then(u => done('renew', u)).catch(e => failed('renew', e));</script>`),
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oidc-client.min.js" {
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write(lib)
			return
		}
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(body))
	}))
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// appResult is what a page of oidcClientApp reports.
type appResult struct {
	What        string         `json:"what"`
	Error       string         `json:"error"`
	IDToken     string         `json:"id_token"`
	AccessToken *string        `json:"access_token"`
	Profile     map[string]any `json:"profile"`
}

// TestOIDCClientJSIDTokenFlowInChromium signs in with a real OIDC library in a real browser: oidc-client 1.x on
// another origin sends the user to the sign-in page, validates the ID token it gets in the fragment (signature
// against the JWKS, nonce, issuer, audience), and renews it silently in a hidden iframe with prompt=none.
func TestOIDCClientJSIDTokenFlowInChromium(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		if os.Getenv("LATCHKEY_REQUIRE_BROWSER") == "1" {
			t.Fatal("LATCHKEY_REQUIRE_BROWSER=1 but no chromium binary was found (looked for /usr/bin/chromium, chromium, chromium-browser)")
		}
		t.Skip("no chromium binary found (looked for /usr/bin/chromium, chromium, chromium-browser)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	env := newTestEnv(t, "sqlite://"+filepath.Join(t.TempDir(), "latchkey.db"))
	env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword, "--name", "Ada Lovelace", "--roles", "admin,editor")
	// The app is on another origin; its redirect URIs must be registered before the server starts reading them.
	srv := env.startServer(t)
	app := oidcClientApp(t, srv.URL)
	defer app.Close()
	env.cli(t, "clients", "create", "--id", "weweb", "--name", "WeWeb app", "--public",
		"--grant-types", "authorization_code,implicit,refresh_token", "--response-types", "code,id_token",
		"--redirect-uris", app.URL+"/callback.html "+app.URL+"/silent.html", "--scopes", "openid profile email roles")

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1024, 768),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	defer cancelBrowser()

	const (
		emailInput    = `//input[@id=//label[normalize-space()="Email address"]/@for]`
		passwordInput = `//input[@id=//label[normalize-space()="Password"]/@for]`
		signInButton  = `//button[normalize-space()="Sign in"]`
		allowButton   = `//button[normalize-space()="Allow"]`
	)
	result := func(what string) appResult {
		t.Helper()
		err := chromedp.Do(browser, chromedp.WaitVisible(chromedp.ID("result")))
		var raw json.RawMessage
		if err == nil {
			raw, err = chromedp.Run(browser, chromedp.Evaluate[json.RawMessage](`window.result`))
		}
		if err != nil {
			at, _ := chromedp.Run(context.WithoutCancel(browser), chromedp.Location())
			t.Fatalf("%s: the app reported nothing: %v (at %s)", what, err, at)
		}
		var r appResult
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("%s: result %s: %v", what, raw, err)
		}
		if r.Error != "" || r.What != what {
			t.Fatalf("%s: the app reported %+v", what, r)
		}
		return r
	}
	verifier, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(raw string) *oidc.IDToken {
		t.Helper()
		idt, err := verifier.Verifier(&oidc.Config{ClientID: "weweb"}).Verify(ctx, raw)
		if err != nil {
			t.Fatalf("ID token does not verify: %v", err)
		}
		return idt
	}

	if err := chromedp.Do(browser,
		chromedp.Navigate(app.URL+"/index.html"),
		chromedp.WaitVisible(chromedp.ID("signin")),
		chromedp.Click(chromedp.ID("signin")),
	); err != nil {
		t.Fatalf("open the app: %v", err)
	}
	if err := chromedp.Do(browser,
		chromedp.WaitVisible(emailInput),
		chromedp.SendKeys(emailInput, adaEmail),
		chromedp.SendKeys(passwordInput, adaPassword),
		chromedp.Click(signInButton),
		chromedp.WaitVisible(allowButton),
		chromedp.Click(allowButton),
	); err != nil {
		at, _ := chromedp.Run(context.WithoutCancel(browser), chromedp.Location())
		r, _ := chromedp.Run(context.WithoutCancel(browser), chromedp.Evaluate[json.RawMessage](`window.result`))
		t.Fatalf("sign in through oidc-client: %v (at %s, the app reported %s)", err, at, r)
	}
	signedIn := result("callback")
	if signedIn.AccessToken != nil {
		t.Errorf("oidc-client holds an access token %q; the front channel sends none", *signedIn.AccessToken)
	}
	p := signedIn.Profile
	roles, _ := p["roles"].([]any)
	if p["email"] != adaEmail || p["name"] != "Ada Lovelace" || len(roles) != 2 || p["sid"] == nil {
		t.Errorf("oidc-client's profile = %v, want email, name, both roles and sid", p)
	}
	first := verify(signedIn.IDToken)

	// Silent renew: oidc-client's hidden iframe with prompt=none, no page shown, a new ID token for the session.
	if err := chromedp.Do(browser, chromedp.Navigate(app.URL+"/renew.html")); err != nil {
		t.Fatal(err)
	}
	renewed := result("renew")
	if renewed.IDToken == "" || renewed.IDToken == signedIn.IDToken {
		t.Fatalf("silent renew gave ID token %q, want a new one", renewed.IDToken)
	}
	second := verify(renewed.IDToken)
	var c1, c2 struct {
		SID string `json:"sid"`
	}
	_ = first.Claims(&c1)
	_ = second.Claims(&c2)
	if c1.SID == "" || c2.SID != c1.SID || second.Subject != first.Subject {
		t.Errorf("renewed ID token sid %q sub %q, want the session's %q %q", c2.SID, second.Subject, c1.SID, first.Subject)
	}
	if second.Nonce == "" || second.Nonce == first.Nonce {
		t.Errorf("renewed ID token reuses the nonce %q", second.Nonce)
	}
}
