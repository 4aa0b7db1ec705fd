package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A browser applies a page's CSP form-action to every redirect that follows the page's form post (Chromium
// does), and each sign-in page's post ends, through /authorize, at the client's redirect URI: each must list it.

// formActionAllows says whether csp's form-action directive lets a form post end at target.
func formActionAllows(csp, target string) bool {
	t, err := url.Parse(target)
	if err != nil {
		return false
	}
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) == 0 || f[0] != "form-action" {
			continue
		}
		for _, src := range f[1:] {
			if src == t.Scheme+":" || strings.EqualFold(src, t.Scheme+"://"+t.Host) {
				return true
			}
		}
	}
	return false
}

func wantFormActionAllows(t *testing.T, what string, p page, target string) {
	t.Helper()
	if p.status != http.StatusOK && p.status != http.StatusUnauthorized {
		t.Fatalf("%s: status %d at %v:\n%s", what, p.status, p.url, p.body)
	}
	if !formActionAllows(p.csp, target) {
		t.Fatalf("%s (%v): CSP %q does not let its form end at %s", what, p.url, p.csp, target)
	}
}

func TestSignInPagesAllowTheRedirectTheirFormEndsIn(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		app := env.createClient(t, "--name", "app", "--first-party", "--scopes", "openid email")
		f := newUpstreamFixture(t, env)
		waitStepStart(t)
		secret, _ := enrolTOTP(t, f.srv.URL+"/api/v1/auth", app.ClientID, adaEmail, adaPassword)

		t.Run("the code page after another provider", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			p, conf, verifier := f.startUpstream(t, b, "corp")
			p = f.signInUpstream(t, b, p, adaEmail, "ada upstream pw")
			wantCodePage(t, p, http.StatusOK, false)
			wantFormActionAllows(t, "code page", p, spaCallback)
			q := toApp(t, b, enterCode(b, p, stepCode(secret, 0), false))
			f.exchange(t, conf, q.Get("code"), verifier)
		})

		// OAuth 2.0 (not OpenID Connect) lets a client with one redirect URI leave redirect_uri out.
		noRedirectURI := func(t *testing.T) string {
			conf := f.scoped("email")
			conf.RedirectURL = ""
			u := f.authURL(conf, randomString(t), randomString(t)+randomString(t))
			if strings.Contains(u, "redirect_uri") {
				t.Fatalf("request names its redirect URI: %s", u)
			}
			return u
		}
		t.Run("the sign-in page again after a wrong password, redirect_uri left out", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			p := b.get(noRedirectURI(t))
			wantFormActionAllows(t, "sign-in page", p, spaCallback)
			p = b.submit(p, map[string]string{"email": adaEmail, "password": "not the password"})
			wantFormActionAllows(t, "sign-in page after a wrong password", p, spaCallback)
		})
		t.Run("the code page after a password, redirect_uri left out", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			p := b.get(noRedirectURI(t))
			p = b.submit(p, map[string]string{"email": adaEmail, "password": adaPassword})
			wantCodePage(t, p, http.StatusOK, false)
			wantFormActionAllows(t, "code page", p, spaCallback)
		})
	})
}
