package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/handlers/throttle"
)

// A stranger's wrong guesses block an account for everyone who names it, but never a device that has signed in to
// it before: that device presents its device token (a cookie on the sign-in form, device_token in the token API)
// and is counted on its own key, where only its own failures count, with the same free attempts.

// formClient is a browser on the sign-in form that keeps its cookies and does not follow redirects.
type formClient struct {
	t   *testing.T
	srv string
	c   *http.Client
}

func newFormClient(t *testing.T, srv string) *formClient {
	jar, _ := cookiejar.New(nil)
	return &formClient{t: t, srv: srv, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// signIn submits the sign-in form and returns the answer (303 when signed in).
func (f *formClient) signIn(email, password string) *http.Response {
	f.t.Helper()
	resp, err := f.c.Get(f.srv + "/login")
	if err != nil {
		f.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, values := parseForm(f.t, string(page))
	values.Set("email", email)
	values.Set("password", password)
	req, _ := http.NewRequest(http.MethodPost, f.srv+"/login", strings.NewReader(values.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err = f.c.Do(req); err != nil {
		f.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func (f *formClient) deviceCookie() string {
	u, _ := url.Parse(f.srv)
	for _, c := range f.c.Jar.Cookies(u) {
		if c.Name == "lk_device" {
			return c.Value
		}
	}
	return ""
}

func (f *formClient) setDeviceCookie(v string) {
	u, _ := url.Parse(f.srv)
	f.c.Jar.SetCookies(u, []*http.Cookie{{Name: "lk_device", Value: v, Path: "/"}})
}

// forgedDeviceToken has a device token's shape but no valid MAC.
const forgedDeviceToken = "AAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func TestDeviceCookieKeepsTheOwnerOutOfAStrangersBlock(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		const carolEmail, carolPassword = "carol@example.com", "plum-harbour-93"
		env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
		env.cli(t, "users", "create", "--email", carolEmail, "--password", carolPassword)
		clock := &testClock{now: time.Now()}
		srv := startServerAt(t, env, clock, &testLogWriter{t: t})
		free := throttle.DefaultAccountPolicy.Free

		owner := newFormClient(t, srv.URL)
		resp := owner.signIn(adaEmail, adaPassword)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("owner's first sign-in: %d", resp.StatusCode)
		}
		var set *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "lk_device" {
				set = c
			}
		}
		if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode || set.Path != "/" || set.MaxAge < 180*24*3600 {
			t.Fatalf("device cookie after signing in: %+v, want a long-lived HttpOnly SameSite=Lax cookie", set)
		}
		if strings.Contains(strings.ToLower(set.Value), "ada") {
			t.Errorf("the device cookie carries the email: %q", set.Value)
		}

		// A stranger, with no device cookie, guesses until the account is blocked.
		stranger := newFormClient(t, srv.URL)
		for i := range free {
			if code := stranger.signIn(adaEmail, fmt.Sprintf("wrong-guess-%d", i)).StatusCode; code != http.StatusUnauthorized {
				t.Fatalf("stranger's guess %d: %d, want 401", i, code)
			}
		}
		if code := stranger.signIn(adaEmail, "one-more-guess").StatusCode; code != http.StatusTooManyRequests {
			t.Fatalf("stranger's guess after the free ones: %d, want 429", code)
		}

		// The owner's browser that signed in before signs in at once, even though the account is blocked.
		if code := owner.signIn(adaEmail, adaPassword).StatusCode; code != http.StatusSeeOther {
			t.Fatalf("owner's browser with its device cookie during the stranger's block: %d, want 303", code)
		}
		// Without the cookie the owner is blocked as before, and the device's success did not lift the block.
		if code := newFormClient(t, srv.URL).signIn(adaEmail, adaPassword).StatusCode; code != http.StatusTooManyRequests {
			t.Fatalf("right password from a browser without the cookie: %d, want 429", code)
		}
		// A forged cookie, or one for another account, buys nothing.
		forged := newFormClient(t, srv.URL)
		forged.setDeviceCookie(forgedDeviceToken)
		if code := forged.signIn(adaEmail, adaPassword).StatusCode; code != http.StatusTooManyRequests {
			t.Fatalf("right password with a forged device cookie: %d, want 429", code)
		}
		carols := newFormClient(t, srv.URL)
		if code := carols.signIn(carolEmail, carolPassword).StatusCode; code != http.StatusSeeOther {
			t.Fatalf("carol signs in: %d", code)
		}
		if code := carols.signIn(adaEmail, adaPassword).StatusCode; code != http.StatusTooManyRequests {
			t.Fatalf("right password for ada from carol's device: %d, want 429", code)
		}
		// Ada's token copied next to carol's in one cookie still names ada.
		carols.setDeviceCookie(carols.deviceCookie() + "~" + owner.deviceCookie())
		if code := carols.signIn(adaEmail, adaPassword).StatusCode; code != http.StatusSeeOther {
			t.Fatalf("right password for ada with both tokens in the cookie: %d, want 303", code)
		}

		// The owner's device gets only the free attempts for its own wrong guesses.
		for i := range free {
			if code := owner.signIn(adaEmail, fmt.Sprintf("typo-%d", i)).StatusCode; code != http.StatusUnauthorized {
				t.Fatalf("owner's device, wrong guess %d: %d, want 401", i, code)
			}
		}
		if code := owner.signIn(adaEmail, adaPassword).StatusCode; code != http.StatusTooManyRequests {
			t.Fatalf("owner's device after its own free attempts: %d, want 429", code)
		}
		clock.Advance(throttle.DefaultAccountPolicy.Base)
		if code := owner.signIn(adaEmail, adaPassword).StatusCode; code != http.StatusSeeOther {
			t.Fatalf("owner's device once its block has passed: %d, want 303", code)
		}
	})
}

// A browser remembers at most five accounts, the most recent first.
func TestDeviceCookieIsBounded(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv := startServerAt(t, env, &testClock{now: time.Now()}, &testLogWriter{t: t})
		b := newFormClient(t, srv.URL)
		var tokens []string
		for i := range 7 {
			email := fmt.Sprintf("user%d@example.com", i)
			env.cli(t, "users", "create", "--email", email, "--password", adaPassword)
			if code := b.signIn(email, adaPassword).StatusCode; code != http.StatusSeeOther {
				t.Fatalf("sign in as %s: %d", email, code)
			}
			tokens = append(tokens, strings.Split(b.deviceCookie(), "~")[0])
		}
		// Signing in again to an account it holds moves its token to the front, not in twice.
		if code := b.signIn("user3@example.com", adaPassword).StatusCode; code != http.StatusSeeOther {
			t.Fatal("sign in as user3 again")
		}
		want := strings.Join([]string{tokens[3], tokens[6], tokens[5], tokens[4], tokens[2]}, "~")
		if got := b.deviceCookie(); got != want {
			t.Fatalf("device cookie:\n got %s\nwant %s", got, want)
		}
	})
}

func TestDeviceTokenKeepsTheOwnerOutOfAStrangersBlock(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newThrottleFixture(t, env, 1)
		free := throttle.DefaultAccountPolicy.Free
		login := func(password, device string) (int, map[string]any) {
			t.Helper()
			body := f.creds("bob@example.com", password)
			if device != "" {
				body["device_token"] = device
			}
			code, _, resp := apiCall(t, "POST", f.api(0)+"/login", body, nil)
			return code, resp
		}
		code, resp := login(bobPassword, "")
		device, _ := resp["device_token"].(string)
		if code != http.StatusOK || device == "" {
			t.Fatalf("owner's first login: %d %v, want 200 with a device_token", code, resp)
		}

		for i := range free {
			if code, _ := login(fmt.Sprintf("wrong-guess-%d", i), ""); code != http.StatusUnauthorized {
				t.Fatalf("stranger's guess %d: %d, want 401", i, code)
			}
		}
		if code, _ := login("one-more-guess", ""); code != http.StatusTooManyRequests {
			t.Fatalf("stranger's guess after the free ones: %d, want 429", code)
		}

		code, resp = login(bobPassword, device)
		if code != http.StatusOK || resp["device_token"] != device {
			t.Fatalf("owner with the device_token during the stranger's block: %d %v, want 200 and the same token", code, resp)
		}
		if code, _ := login(bobPassword, ""); code != http.StatusTooManyRequests {
			t.Fatalf("owner without the device_token: %d, want 429", code)
		}
		if code, _ := login(bobPassword, forgedDeviceToken); code != http.StatusTooManyRequests {
			t.Fatalf("a forged device_token: %d, want 429", code)
		}
		if code, _ := login(bobPassword, "not a token"); code != http.StatusTooManyRequests {
			t.Fatalf("a malformed device_token: %d, want 429", code)
		}
		code, _, carol := apiCall(t, "POST", f.api(0)+"/signup", f.creds("carol@example.com", bobPassword), nil)
		carolDevice, _ := carol["device_token"].(string)
		if code != http.StatusCreated || carolDevice == "" {
			t.Fatalf("carol signs up: %d %v, want 201 with a device_token", code, carol)
		}
		if code, _ := login(bobPassword, carolDevice); code != http.StatusTooManyRequests {
			t.Fatalf("bob's password with carol's device_token: %d, want 429", code)
		}
		body := f.creds("dave@example.com", bobPassword)
		body["device_token"] = device
		if code, _, resp := apiCall(t, "POST", f.api(0)+"/signup", body, nil); code != http.StatusBadRequest {
			t.Fatalf("sign-up with a device_token: %d %v, want 400", code, resp)
		}

		for i := range free {
			if code, _ := login(fmt.Sprintf("typo-%d", i), device); code != http.StatusUnauthorized {
				t.Fatalf("owner's device, wrong guess %d: %d, want 401", i, code)
			}
		}
		if code, _ := login(bobPassword, device); code != http.StatusTooManyRequests {
			t.Fatalf("owner's device after its own free attempts: %d, want 429", code)
		}
		f.clock.Advance(throttle.DefaultAccountPolicy.Base)
		code, resp = login(bobPassword, device)
		if code != http.StatusOK {
			t.Fatalf("owner's device once its block passed: %d %v, want 200", code, resp)
		}
		// A password change is counted under the signed-in session: the stranger's block does not stop the owner,
		// and guesses with one session's token get that session's free attempts.
		changePassword := func(current string) int {
			t.Helper()
			code, _, _ := apiCall(t, "POST", f.api(0)+"/password", map[string]any{"current_password": current,
				"new_password": bobPassword}, bearerHeader(resp["access_token"].(string)))
			return code
		}
		if code := changePassword(bobPassword); code != http.StatusOK {
			t.Fatalf("owner's password change during the stranger's block: %d, want 200", code)
		}
		for i := range free {
			if code := changePassword(fmt.Sprintf("stolen-token-guess-%d", i)); code != http.StatusUnauthorized {
				t.Fatalf("wrong current password %d: %d, want 401", i, code)
			}
		}
		if code := changePassword(bobPassword); code != http.StatusTooManyRequests {
			t.Fatalf("password change after the session's free attempts: %d, want 429", code)
		}
		// A device token from before a password change buys nothing: the account's block (renewed by one more
		// stranger's guess) applies to it again.
		if code, _ := login("a-strangers-next-guess", ""); code != http.StatusUnauthorized {
			t.Fatalf("stranger's guess once the block passed: %d, want 401", code)
		}
		if code, _ := login(bobPassword, device); code != http.StatusTooManyRequests {
			t.Fatalf("a device_token from before the password change: %d, want 429 (counted on the account)", code)
		}
	})
}
