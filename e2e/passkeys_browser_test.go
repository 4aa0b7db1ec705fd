package e2e

import (
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Passkeys in a real Chromium, answered by its DevTools virtual authenticator (a platform authenticator with
// resident keys and user verification): a signed-in person adds a passkey on /account/passkeys, signs out, signs
// in to an app with the passkey alone, then signs in again with the password and the passkey as second factor.
// The ID tokens' amr say which.
func TestPasskeysInChromium(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		if os.Getenv("LATCHKEY_REQUIRE_BROWSER") == "1" {
			t.Fatal("LATCHKEY_REQUIRE_BROWSER=1 but no chromium binary was found")
		}
		t.Skip("no chromium binary found; install Debian's chromium package")
	}
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cb := &appCallback{got: make(chan url.Values, 1)}
		app := httptest.NewServer(cb)
		defer app.Close()
		redirect := app.URL + "/callback"
		env.cli(t, "users", "create", "--email", "ada@example.com", "--password", "correct horse battery", "--name", "Ada Lovelace")
		env.cli(t, "clients", "create", "--id", "spa", "--name", "Example SPA", "--public",
			"--grant-types", "authorization_code,refresh_token", "--redirect-uris", redirect, "--scopes", "openid profile email")
		env["test.hostname"] = "localhost" // WebAuthn wants a domain: the relying party id is the issuer's host
		srv := env.startServer(t)
		provider, err := oidc.NewProvider(ctx, srv.URL)
		if err != nil {
			t.Fatalf("discovery: %v", err)
		}
		conf := oauth2.Config{ClientID: "spa", Endpoint: provider.Endpoint(), RedirectURL: redirect, Scopes: []string{"openid", "profile", "email"}}
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams

		allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
			chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1024, 768),
		)
		defer cancelAlloc()
		browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
		defer cancelBrowser()
		// The tab's virtual authenticator: created by the first action, since the tab exists only then.
		var authID webauthn.AuthenticatorID
		if err := chromedp.Do(browser, chromedp.Navigate(srv.URL+"/.well-known/openid-configuration"), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := cdp.Call(ctx, tg, webauthn.Enable, webauthn.EnableParams{}); err != nil {
				return err
			}
			res, err := cdp.Call(ctx, tg, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
				HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
			}})
			authID = res.AuthenticatorID
			return err
		})); err != nil {
			t.Fatalf("virtual authenticator: %v", err)
		}
		credentials := func() int {
			t.Helper()
			res, err := chromedp.Run(browser, func(ctx context.Context, tg *chromedp.Target) (webauthn.GetCredentialsResult, error) {
				return cdp.Call(ctx, tg, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: authID})
			})
			if err != nil {
				t.Fatalf("credentials: %v", err)
			}
			return len(res.Credentials)
		}
		fail := func(what string, err error) {
			t.Helper()
			look, stop := context.WithTimeout(context.WithoutCancel(browser), 5*time.Second)
			defer stop()
			at, _ := chromedp.Run(look, chromedp.Location())
			body, _ := chromedp.Run(look, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: %v (at %s: %q)", what, err, at, body)
		}
		const (
			emailInput    = `//input[@id=//label[normalize-space()="Email address"]/@for]`
			passwordInput = `//input[@id=//label[normalize-space()="Password"]/@for]`
			nameInput     = `//input[@id=//label[normalize-space()="Name of the new passkey"]/@for]`
			signInButton  = `//button[normalize-space()="Sign in"]`
			passkeyButton = `//button[normalize-space()="Sign in with a passkey"]`
			addButton     = `//button[normalize-space()="Add a passkey"]`
			useButton     = `//button[normalize-space()="Use your passkey"]`
			allowButton   = `//button[normalize-space()="Allow"]`
		)

		// Enrol: the account page sends a visitor to sign in and back, then adds a passkey.
		if err := chromedp.Do(browser, chromedp.Navigate(srv.URL+"/account/passkeys"), chromedp.WaitVisible(emailInput),
			chromedp.SendKeys(emailInput, "ada@example.com"), chromedp.SendKeys(passwordInput, "correct horse battery"),
			chromedp.Click(signInButton), chromedp.WaitVisible(addButton),
			chromedp.SendKeys(nameInput, "Test laptop"), chromedp.Click(addButton),
			chromedp.WaitVisible(`//*[normalize-space()="Passkey added."]`), chromedp.WaitVisible(`//*[normalize-space()="Test laptop"]`),
		); err != nil {
			fail("add a passkey", err)
		}
		if n := credentials(); n != 1 {
			t.Fatalf("the authenticator holds %d credentials, want 1", n)
		}

		// Sign out (the sessions page's own button), then sign in to the app with the passkey alone.
		if err := chromedp.Do(browser, chromedp.Navigate(srv.URL+"/account/sessions"),
			chromedp.Click(`//button[starts-with(normalize-space(), "Sign out")]`), chromedp.WaitVisible(`//*[contains(., "You have been signed out")]`),
		); err != nil {
			fail("sign out", err)
		}
		signIn := func(steps ...chromedp.Action[chromedp.Void]) []string {
			t.Helper()
			verifier, state, nonce := oauth2.GenerateVerifier(), randomString(t), randomString(t)
			authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce), oauth2.SetAuthURLParam("prompt", "login"))
			if err := chromedp.Do(browser, append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(authURL)}, steps...)...); err != nil {
				fail("sign in", err)
			}
			var q url.Values
			select {
			case q = <-cb.got:
			case <-ctx.Done():
				fail("callback", ctx.Err())
			}
			if q.Get("state") != state || q.Get("code") == "" {
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
				Email string   `json:"email"`
				AMR   []string `json:"amr"`
			}
			if err := idt.Claims(&claims); err != nil || claims.Email != "ada@example.com" || idt.Nonce != nonce {
				t.Fatalf("ID token claims %+v nonce %q: %v", claims, idt.Nonce, err)
			}
			return claims.AMR
		}
		amr := signIn(chromedp.WaitVisible(passkeyButton), chromedp.Click(passkeyButton), chromedp.WaitVisible(allowButton), chromedp.Click(allowButton))
		if !slices.Equal(amr, []string{"hwk", "user", "mfa"}) {
			t.Fatalf("passwordless amr %v", amr)
		}

		// The password, then the passkey as second factor.
		amr = signIn(chromedp.WaitVisible(emailInput), chromedp.SetValue(emailInput, "ada@example.com"), // prefilled: prompt=login
			chromedp.SendKeys(passwordInput, "correct horse battery"), chromedp.Click(signInButton),
			chromedp.WaitVisible(useButton), chromedp.Click(useButton))
		if !slices.Equal(amr, []string{"pwd", "hwk", "mfa"}) {
			t.Fatalf("second-factor amr %v", amr)
		}
	})
}
