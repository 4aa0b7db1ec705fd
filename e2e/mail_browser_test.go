package e2e

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var forgotLink = regexp.MustCompile(`<a href="([^"]+)">Forgot password\?</a>`)

// The pages, without JavaScript: sign-in → "Forgot password?" → email → "check your mail" → the mail's link →
// new password → signed out everywhere → sign-in with it. And the verification link's page, which only a POST
// spends; and an unverified account's sign-in refused on the page.
func TestMailBrowserPages(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ms, srv, clientID := mailFixture(t, env, true)
		api := srv.URL + "/api/v1/auth"
		if code, _, b := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil); code != 201 {
			t.Fatalf("signup: %d %v", code, b)
		}
		verify := ms.next(t)
		b := newBrowser(t, "http://never.example")

		// Unverified: the right password is refused on the sign-in page.
		login := b.get(srv.URL + "/login?pool=members")
		if p := b.submit(login, map[string]string{"email": "ada@example.com", "password": "violet-tractor-47"}); p.status != http.StatusForbidden || !strings.Contains(p.body, "verify your email") {
			t.Fatalf("unverified sign-in page: %d\n%s", p.status, p.body)
		}

		// The link's page shows a form; fetching it twice spends nothing; the POST verifies.
		link := srv.URL + "/verify-email?token=" + url.QueryEscape(verify.Token)
		b.get(link)
		p := b.get(link)
		if p.status != 200 || !strings.Contains(p.body, "Confirm my email address") {
			t.Fatalf("verify page: %d\n%s", p.status, p.body)
		}
		if p = b.submit(p, nil); p.status != 200 || !strings.Contains(p.body, "Your email address is confirmed.") {
			t.Fatalf("verify submit: %d\n%s", p.status, p.body)
		}
		// A forged POST without the CSRF token is refused.
		if code, _, _ := postForm(t, srv.URL+"/verify-email", url.Values{"token": {verify.Token}}, "", ""); code != http.StatusForbidden {
			t.Fatalf("verify POST without CSRF: %d", code)
		}

		// Forgot password, from the sign-in page.
		login = b.get(srv.URL + "/login?pool=members")
		m := forgotLink.FindStringSubmatch(login.body)
		if m == nil {
			t.Fatalf("no Forgot password? link:\n%s", login.body)
		}
		forgot := b.get(srv.URL + strings.ReplaceAll(m[1], "&amp;", "&"))
		if forgot.status != 200 || !strings.Contains(forgot.body, `<label for="email">`) {
			t.Fatalf("forgot page: %d\n%s", forgot.status, forgot.body)
		}
		if p = b.submit(forgot, map[string]string{"email": "ada@example.com"}); p.status != 200 || !strings.Contains(p.body, "Check your mail") {
			t.Fatalf("forgot submit: %d\n%s", p.status, p.body)
		}
		reset := ms.next(t)
		if !strings.Contains(reset.Text, srv.URL+"/reset-password?token=") {
			t.Fatalf("reset link:\n%s", reset.Text)
		}
		_, _, session := apiCall(t, "POST", api+"/login", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		refresh, _ := session["refresh_token"].(string)
		if refresh == "" {
			t.Fatalf("login: %v", session)
		}
		p = b.get(srv.URL + "/reset-password?token=" + url.QueryEscape(reset.Token))
		if p = b.submit(p, map[string]string{"new_password": "short"}); p.status != 400 || !strings.Contains(p.body, `role="alert"`) {
			t.Fatalf("weak password on the page: %d\n%s", p.status, p.body)
		}
		if p = b.submit(p, map[string]string{"new_password": "quiet-harbor-lamp-81"}); p.status != 200 || !strings.Contains(p.body, "Your password is changed") {
			t.Fatalf("reset submit: %d\n%s", p.status, p.body)
		}
		if code, _, _ := apiCall(t, "POST", api+"/refresh", map[string]any{"client_id": clientID, "refresh_token": refresh}, nil); code == 200 {
			t.Fatal("refresh token works after a reset on the page")
		}
		login = b.get(srv.URL + "/login?pool=members")
		if p = b.submit(login, map[string]string{"email": "ada@example.com", "password": "quiet-harbor-lamp-81"}); p.status >= 400 {
			t.Fatalf("sign-in with the new password: %d\n%s", p.status, p.body)
		}
	})
}
