package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/mfa"
)

// The account page in a real headless Chromium: its forms under the page's CSP and cookies, the QR code (a data:
// URI, which the CSP must let through) drawn, and an authenticator app set up with the code computed here.
func TestAccountPageWithChromium(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		if os.Getenv("LATCHKEY_REQUIRE_BROWSER") == "1" {
			t.Fatal("LATCHKEY_REQUIRE_BROWSER=1 but no chromium binary was found")
		}
		t.Skip("no chromium binary found; install Debian's chromium package or set LATCHKEY_REQUIRE_BROWSER=1 to make this a failure")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := newTestEnv(t, "sqlite://"+filepath.Join(t.TempDir(), "latchkey.db"))
	env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword, "--name", "Ada")
	srv := env.startServer(t)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true), chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	defer cancelBrowser()

	// Inputs through their visible labels, buttons through their text: the test fails if the labelling breaks.
	input := func(label string) string {
		return `//input[@id=//label[normalize-space()="` + label + `"]/@for]`
	}
	button := func(text string) string { return `//button[normalize-space()="` + text + `"]` }
	heading := `//h1[normalize-space()="Your account"]`
	status := func(text string) string { return `//*[@role="status"][contains(., "` + text + `")]` }
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(browser, actions...); err != nil {
			at, _ := chromedp.Run(context.WithoutCancel(browser), chromedp.Location())
			t.Fatalf("%s: %v (at %s)", what, err, at)
		}
	}

	step("sign in to the account page", chromedp.Navigate(srv.URL+"/account"), chromedp.WaitVisible(input("Email address")),
		chromedp.SendKeys(input("Email address"), adaEmail), chromedp.SendKeys(input("Password"), adaPassword),
		chromedp.Click(button("Sign in")), chromedp.WaitVisible(heading))
	step("edit the name", chromedp.Clear(input("Name")), chromedp.SendKeys(input("Name"), "Ada Lovelace"),
		chromedp.Click(button("Save profile")), chromedp.WaitVisible(status("Profile saved.")))
	name, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.getElementById("name").value`))
	if err != nil || name != "Ada Lovelace" {
		t.Fatalf("name after saving = %q (%v)", name, err)
	}

	waitStepStart(t)
	qr := `//img[@alt="QR code for your authenticator app"]`
	step("start setting up an authenticator app", chromedp.Click(button("Set up an authenticator app")), chromedp.WaitVisible(qr))
	width, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.querySelector('img[alt^="QR code"]').naturalWidth`))
	if err != nil || width == 0 {
		t.Fatalf("the QR code was not drawn (naturalWidth %d, %v): the page's CSP must allow its data: URI", width, err)
	}
	key, err := chromedp.Run(browser, chromedp.Text(`//code[@class="secret"]`))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := mfa.DecodeSecret(strings.TrimSpace(key))
	if err != nil {
		t.Fatalf("key %q: %v", key, err)
	}
	step("confirm with the app's code", chromedp.SendKeys(input("6-digit code"), stepCode(secret, 0)),
		chromedp.Click(button("Confirm")), chromedp.WaitVisible(status("Authenticator app set up.")))
	codes, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.querySelectorAll(".recovery-codes li").length`))
	if err != nil || codes < 8 {
		t.Fatalf("recovery codes shown: %d (%v)", codes, err)
	}
}
