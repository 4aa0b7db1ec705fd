package e2e

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

const (
	fuzzUserEmail    = "ada@example.com"
	fuzzUserPassword = "correct horse battery"
	fuzzSPACallback  = "http://localhost/cb"
	fuzzWebCallback  = "http://localhost/web/cb"
	fuzzLogoutTarget = "http://localhost/bye"
	fuzzVerifierS256 = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" // S256 of RFC 7636's example verifier
)

// browserFixture is the setup the browser targets need: a user, a public SPA and a third-party web app (which
// asks for consent).
func browserFixture(f *testing.F) http.Handler {
	return fuzzApp(f,
		[]string{"users", "create", "--email", fuzzUserEmail, "--password", fuzzUserPassword},
		[]string{"clients", "create", "--id", "fuzz-spa", "--public", "--name", "spa", "--redirect-uris", fuzzSPACallback,
			"--post-logout-redirect-uris", fuzzLogoutTarget, "--grant-types", "authorization_code,refresh_token",
			"--scopes", "openid profile email offline_access"},
		[]string{"clients", "create", "--id", "fuzz-web", "--secret", fuzzClientSecret, "--name", "web",
			"--redirect-uris", fuzzWebCallback, "--grant-types", "authorization_code", "--scopes", "openid profile"},
	)
}

// browser is the harness's own signed-in browser: its cookies and CSRF token, signing in again when a fuzzed
// request signed it out.
type browser struct {
	h       http.Handler
	cookies map[string]*http.Cookie
	csrf    string
}

func newFuzzBrowser(h http.Handler) *browser {
	return &browser{h: h, cookies: map[string]*http.Cookie{}}
}

// do sends req with the browser's cookies from the harness's address and keeps the cookies it is given.
func (b *browser) do(req *http.Request, withCookies bool) *httptest.ResponseRecorder {
	if withCookies {
		for _, c := range b.cookies {
			req.AddCookie(c)
		}
	}
	rec := serve(b.h, req, "", harnessRemote)
	if withCookies {
		for _, c := range rec.Result().Cookies() {
			b.cookies[c.Name] = c
		}
	}
	return rec
}

// page loads a page as the signed-in browser, signing in first if needed, and returns its hidden inputs.
func (b *browser) page(t *testing.T, path string) url.Values {
	rec := b.do(httptest.NewRequest("GET", path, nil), true)
	if rec.Code == http.StatusOK && b.signedIn() {
		return hiddenInputs(t, rec.Body.String())
	}
	b.signIn(t)
	rec = b.do(httptest.NewRequest("GET", path, nil), true)
	return hiddenInputs(t, rec.Body.String())
}

func (b *browser) signedIn() bool {
	rec := b.do(httptest.NewRequest("GET", "/account/sessions", nil), true)
	return rec.Code == http.StatusOK
}

func (b *browser) signIn(t *testing.T) {
	b.cookies = map[string]*http.Cookie{}
	rec := b.do(httptest.NewRequest("GET", "/login", nil), true)
	b.csrf = hiddenInputs(t, rec.Body.String()).Get("csrf_token")
	form := url.Values{"email": {fuzzUserEmail}, "password": {fuzzUserPassword}, "csrf_token": {b.csrf}}
	req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if rec := b.do(req, true); rec.Code != http.StatusSeeOther {
		t.Fatalf("harness sign-in: %d %s", rec.Code, rec.Body)
	}
}

// hiddenInputs returns the name and value of every input of an HTML page.
func hiddenInputs(t *testing.T, body string) url.Values {
	out := url.Values{}
	z := html.NewTokenizer(strings.NewReader(body))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return out
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if tok.Data != "input" && tok.Data != "button" {
				continue
			}
			var name, value string
			for _, a := range tok.Attr {
				switch a.Key {
				case "name":
					name = a.Val
				case "value":
					value = a.Val
				}
			}
			if name != "" && !out.Has(name) {
				out.Set(name, value)
			}
		}
	}
}

// fill replaces each $name in s by the value of the input name on the page, longest names first so $a never
// eats the start of $ab.
func fill(s string, inputs url.Values) string {
	names := slices.Collect(maps.Keys(inputs))
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	for _, k := range names {
		s = strings.ReplaceAll(s, "$"+k, url.QueryEscape(inputs.Get(k)))
	}
	return s
}

// checkBrowserResponse holds for every answer of the interactive endpoints: no 5xx, a status the flow uses, an
// HTML page or a JSON error, and a redirect only to this server or to a URI a client registered.
func checkBrowserResponse(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	status, body := rec.Code, rec.Body.String()
	if status >= 500 {
		t.Fatalf("%s answered %d: %.500s", what, status, body)
	}
	if !slices.Contains([]int{200, 302, 303, 400, 401, 403, 404, 405, 409, 413, 429}, status) {
		t.Fatalf("%s answered %d: %.500s", what, status, body)
	}
	if loc := rec.Header().Get("Location"); loc != "" || status == 302 || status == 303 {
		if !trustedTarget(loc) {
			t.Fatalf("%s redirected to %q", what, loc)
		}
		return
	}
	ct := rec.Header().Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "text/html"):
		if status >= 400 && !strings.Contains(body, "<h1>") && !strings.Contains(body, `role="alert"`) {
			t.Fatalf("%s answered %d with a page that shows no error: %.500s", what, status, body)
		}
		for _, action := range formActionsOf(body) {
			if !trustedTarget(action) {
				t.Fatalf("%s answered with a form posting to %q", what, action)
			}
		}
	case strings.HasPrefix(ct, "application/json"):
		if status < 400 || !strings.Contains(body, `"error"`) {
			t.Fatalf("%s answered %d with JSON that is not an error: %.500s", what, status, body)
		}
	default:
		t.Fatalf("%s answered %d with Content-Type %q: %.500s", what, status, ct, body)
	}
}

// trustedTarget: a path on this server, or a redirect URI a client registered (with its query).
func trustedTarget(u string) bool {
	if strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") && !strings.HasPrefix(u, "/\\") {
		return true
	}
	for _, registered := range []string{fuzzSPACallback, fuzzWebCallback, fuzzLogoutTarget} {
		if u == registered || strings.HasPrefix(u, registered+"?") || strings.HasPrefix(u, registered+"#") {
			return true
		}
	}
	return false
}

func formActionsOf(body string) []string {
	var out []string
	z := html.NewTokenizer(strings.NewReader(body))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return out
		case html.StartTagToken:
			tok := z.Token()
			if tok.Data != "form" {
				continue
			}
			for _, a := range tok.Attr {
				if a.Key == "action" {
					out = append(out, a.Val)
				}
			}
		}
	}
}

// FuzzAuthorize sends arbitrary query strings (GET) and form bodies (POST) to the authorization endpoint, from a
// signed-out browser and from a signed-in one. Never a 5xx or a panic, and never a redirect, or a form_post
// page, aimed at a URI no client registered.
func FuzzAuthorize(f *testing.F) {
	pkce := "&code_challenge=" + fuzzVerifierS256 + "&code_challenge_method=S256"
	spa := "response_type=code&client_id=fuzz-spa&redirect_uri=" + url.QueryEscape(fuzzSPACallback) + "&state=state-0123456789" + pkce
	web := "response_type=code&client_id=fuzz-web&redirect_uri=" + url.QueryEscape(fuzzWebCallback) + "&scope=openid&state=state-0123456789"
	for _, seed := range []struct {
		post     bool
		query    string
		signedIn bool
	}{
		{false, spa + "&scope=openid+profile&nonce=n", false},
		{false, spa + "&scope=openid+profile&nonce=n", true},
		{false, web, true},
		{true, web, true},
		{false, web + "&prompt=none", false},
		{false, web + "&prompt=login&max_age=0", true},
		{false, web + "&prompt=consent+none", true},
		{false, web + "&max_age=-1", true},
		{false, web + "&response_mode=form_post", true},
		{false, web + "&response_mode=fragment", true},
		{false, spa + "&scope=openid&code_challenge_method=plain", false},
		{false, "response_type=code&client_id=fuzz-spa&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&state=state-0123456789" + pkce, true},
		{false, "response_type=code&client_id=fuzz-spa&redirect_uri=" + url.QueryEscape(fuzzSPACallback) + "%2F..%2Fevil" + pkce, false},
		{false, "response_type=token&client_id=fuzz-spa&redirect_uri=" + url.QueryEscape(fuzzSPACallback) + pkce, false},
		{false, "response_type=code&client_id=%00&redirect_uri=" + url.QueryEscape(fuzzSPACallback), false},
		{false, "response_type=code&client_id=fuzz-spa%ff&redirect_uri=" + url.QueryEscape(fuzzSPACallback), false},
		{false, spa + "&scope=openid%00", true},
		{false, spa + "&state=" + strings.Repeat("s", 9000), false},
		{false, spa + "&scope=openid&nonce=" + strings.Repeat("n", 9000), true},
		{false, spa + "&claims=%7B%22id_token%22%3A%7B%7D%7D&request=eyJ.e30.", false},
		{false, "request_uri=urn:ietf:params:oauth:request_uri:abc&client_id=fuzz-spa", false},
		{false, "lk_challenge=abc", true},
		{false, "lk_challenge=%00&lk_challenge=x", false},
		{false, spa + "&" + spa, false},
		{false, "%zz", false},
		{false, "", false},
		{true, spa + "&scope=openid", false},
	} {
		f.Add(seed.post, seed.query, seed.signedIn)
	}
	h := browserFixture(f)
	b := newFuzzBrowser(h)
	f.Fuzz(func(t *testing.T, post bool, query string, signedIn bool) {
		var req *http.Request
		if post {
			req = httptest.NewRequest("POST", "/oauth2/auth", strings.NewReader(query))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req = httptest.NewRequest("GET", "/oauth2/auth", nil)
			req.URL.RawQuery = query
		}
		if signedIn {
			if !b.signedIn() {
				b.signIn(t)
			}
			for _, c := range b.cookies {
				req.AddCookie(c)
			}
		}
		rec := serve(h, req, "", fuzzRemote)
		checkBrowserResponse(t, req.Method+" /oauth2/auth", rec)
	})
}

// fuzzForms are the HTML forms' endpoints, and the page whose inputs fill a body's $name placeholders (a live
// pending request, consent challenge or session id the fuzzer could not guess).
var fuzzForms = []struct{ path, page string }{
	{"/login", "/oauth2/auth?response_type=code&client_id=fuzz-spa&scope=openid&redirect_uri=" + url.QueryEscape(fuzzSPACallback) +
		"&code_challenge=" + fuzzVerifierS256 + "&code_challenge_method=S256&prompt=login&state=state-0123456789"},
	{"/consent", "/oauth2/auth?response_type=code&client_id=fuzz-web&scope=openid+profile&redirect_uri=" + url.QueryEscape(fuzzWebCallback) +
		"&prompt=consent&state=state-0123456789"},
	{"/oauth2/logout", "/oauth2/logout?client_id=fuzz-spa&post_logout_redirect_uri=" + url.QueryEscape(fuzzLogoutTarget) + "&state=s"},
	{"/account/sessions", "/account/sessions"},
	{"/account/profile", "/account"},
	{"/account/password", "/account"},
	{"/account/factors/totp", "/account"},
	{"/account/factors/totp/confirm", "/account"},
	{"/account/factors/remove", "/account"},
	{"/account/providers/unlink", "/account"},
	{"/account/factors/recovery-codes", "/account"},
	{"/account/email/resend", "/account"},
}

// FuzzHTMLForms posts arbitrary form bodies and query strings to the sign-in, consent, logout confirmation,
// sessions and account page forms, with and without a valid CSRF token and a signed-in browser. Never a 5xx or a panic; errors
// are pages that say so; redirects stay on this server or go to a registered URI.
func FuzzHTMLForms(f *testing.F) {
	for _, seed := range []struct {
		form          uint8
		query, body   string
		csrf, session bool
	}{
		{0, "", "email=ada%40example.com&password=correct+horse+battery", true, false},
		{0, "", "email=ada%40example.com&password=wrong", true, false},
		{0, "", "email=ada%40example.com&password=correct+horse+battery&challenge=$challenge", true, false},
		{0, "return_to=%2Faccount%2Fsessions", "email=ada%40example.com&password=correct+horse+battery", true, true},
		{0, "return_to=%2F%2Fevil.example", "email=ada%40example.com&password=correct+horse+battery", true, false},
		{0, "return_to=https%3A%2F%2Fevil.example", "email=ada%40example.com&password=correct+horse+battery", true, false},
		{0, "", "email=ada%00%40example.com&password=x", true, false},
		{0, "", "email=ada%ff%40example.com&password=x", true, false},
		{0, "", "email=" + strings.Repeat("a", 300) + "%40example.com&password=" + strings.Repeat("p", 1100), true, false},
		{0, "", "email=a&email=b&password=x", true, false},
		{0, "", "email=ada%40example.com&password=x&challenge=%00", true, false},
		{0, "", "email=ada%40example.com&password=x", false, false},
		{0, "", "%zz", true, false},
		{1, "", "challenge=$challenge&decision=allow", true, true},
		{1, "", "challenge=$challenge&decision=deny", true, true},
		{1, "", "challenge=$challenge&decision=maybe", true, true},
		{1, "", "challenge=$challenge&decision=allow", true, false},
		{1, "", "challenge=%00&decision=allow", true, true},
		{1, "", "challenge=" + strings.Repeat("c", 9000) + "&decision=allow", true, true},
		{2, "", "decision=logout&client_id=fuzz-spa&post_logout_redirect_uri=" + url.QueryEscape(fuzzLogoutTarget) + "&state=s", true, true},
		{2, "", "decision=cancel", true, true},
		{2, "", "decision=logout&client_id=%00", true, true},
		{2, "", "decision=logout&post_logout_redirect_uri=https%3A%2F%2Fevil.example", true, true},
		{2, "", "decision=logout&id_token_hint=eyJhbGciOiJub25lIn0.e30.", true, true},
		{2, "", "decision=logout&id_token_hint=%ff%00", true, true},
		{3, "", "session_id=$session_id", true, true},
		{3, "", "all_others=1", true, true},
		{3, "", "session_id=%00", true, true},
		{3, "", "session_id=%ff", true, true},
		{3, "", "session_id=ses_nobody", false, true},
		{4, "", "name=Ada", true, true},
		{4, "", "name=" + strings.Repeat("n", 300), true, true},
		{4, "", "name=%ff%00", true, true},
		{4, "", "name=a&name=b", true, true},
		{5, "", "current_password=wrong&new_password=quiet-harbor-lamp-81", true, true},
		{5, "", "current_password=%00&new_password=%ff", true, true},
		{5, "", "current_password=" + strings.Repeat("p", 1100) + "&new_password=x", true, true},
		{6, "", "password=wrong", true, true},
		{6, "", "", true, false},
		{7, "", "code=000000", true, true},
		{7, "", "code=" + strings.Repeat("9", 100), true, true},
		{8, "", "factor_id=fac_nobody&password=wrong", true, true},
		{8, "", "factor_id=%00", true, true},
		{9, "", "provider_id=corp&subject=x&password=wrong", true, true},
		{9, "", "provider_id=" + strings.Repeat("p", 100) + "&subject=%ff", true, true},
		{10, "", "password=", true, true},
		{11, "", "", true, true},
		{11, "", "", false, true},
	} {
		f.Add(seed.form, seed.query, seed.body, seed.csrf, seed.session)
	}
	h := browserFixture(f)
	b := newFuzzBrowser(h)
	f.Fuzz(func(t *testing.T, form uint8, query, body string, csrf, session bool) {
		target := fuzzForms[int(form)%len(fuzzForms)]
		needBrowser := session || csrf || strings.Contains(body, "$")
		var inputs url.Values
		if needBrowser {
			inputs = b.page(t, target.page)
			body = fill(body, inputs)
		}
		if csrf {
			if body != "" {
				body += "&"
			}
			body += "csrf_token=" + url.QueryEscape(b.csrf)
		}
		req := httptest.NewRequest("POST", target.path, strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if needBrowser {
			for name, c := range b.cookies {
				if session || !strings.Contains(name, "session") {
					req.AddCookie(c)
				}
			}
		}
		rec := serve(h, req, "", fuzzRemote)
		checkBrowserResponse(t, "POST "+target.path, rec)
	})
}
