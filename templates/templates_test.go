package templates

import (
	"errors"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const evil = `<script>alert(1)</script>`

var (
	t0 = time.Date(2025, 3, 4, 9, 5, 0, 0, time.UTC)
	t1 = time.Date(2025, 3, 9, 17, 42, 0, 0, time.FixedZone("CET", 3600))
)

type pageCase struct {
	name   string // also the preview file name
	status int
	render func(r *Renderer, w http.ResponseWriter, status int) error
	want   []string // substrings the body must contain
	absent []string // substrings it must not contain
	// formAction is the expected form-action directive value.
	formAction string
}

func pageCases() []pageCase {
	return []pageCase{
		{
			name: "login", status: http.StatusOK,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.Login(w, s, LoginPage{Action: "/login", CSRFToken: "csrf-123", Challenge: "chal-456", ClientName: "Acme Dashboard"})
			},
			want: []string{
				`<html lang="en">`, `name="viewport"`, `<main`, `href="/assets/latchkey.css"`,
				`Sign in to continue to <span class="client">Acme Dashboard</span>`,
				`<input type="hidden" name="csrf_token" value="csrf-123">`,
				`<input type="hidden" name="challenge" value="chal-456">`,
				`name="email" type="email" autocomplete="username"`, `required`,
				`name="password" type="password" autocomplete="current-password" required`,
				`>Sign in</button>`,
			},
			absent:     []string{`role="alert"`, `aria-describedby`},
			formAction: "'self'",
		},
		{
			name: "login-error", status: http.StatusUnauthorized,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.Login(w, s, LoginPage{Action: "/login", CSRFToken: "csrf-123", Email: `o"brien'@example.com`, Error: "Wrong email or password."})
			},
			want: []string{
				`<h1>Sign in</h1>`,
				`<div id="login-error" class="alert alert-error" role="alert">Wrong email or password.</div>`,
				`aria-describedby="login-error"`, `aria-invalid="true"`,
				`value="o&#34;brien&#39;@example.com"`,
			},
			absent:     []string{`o"brien`, `name="challenge"`},
			formAction: "'self'",
		},
		{
			name: "login-escaping", status: http.StatusOK,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.Login(w, s, LoginPage{Action: "/login", CSRFToken: `"><x`, Challenge: `"><y`, ClientName: evil, Email: `"><z`, Error: evil})
			},
			want:   []string{`&lt;script&gt;alert(1)&lt;/script&gt;`},
			absent: []string{`"><x`, `"><y`, `"><z`},
		},
		{
			name: "consent", status: http.StatusOK,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.Consent(w, s, ConsentPage{
					Action: "/consent", CSRFToken: "csrf-123", Challenge: "chal-456",
					ClientName: "Acme Dashboard", UserEmail: "ada@example.com",
					Scopes: []ScopeInfo{
						{Name: "openid", Description: "Confirm who you are"},
						{Name: "email", Description: "See your email address"},
						{Name: "offline_access", Description: "Stay connected when you are not using it"},
					},
					FormActionExtra: []string{"https://app.acme.example/callback?x=1", "https://app.acme.example/other", "com.acme.app:/cb", "javascript:alert(1)", "https:", "https://a.example; script-src *"},
				})
			},
			want: []string{
				`Acme Dashboard`, `ada@example.com`, `See your email address`, `offline_access`,
				`<input type="hidden" name="csrf_token" value="csrf-123">`,
				`<input type="hidden" name="challenge" value="chal-456">`,
				`name="decision" value="allow"`, `name="decision" value="deny"`,
			},
			formAction: "'self' https://app.acme.example com.acme.app:",
		},
		{
			name: "consent-escaping", status: http.StatusOK,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.Consent(w, s, ConsentPage{Action: "https://id.example/consent", CSRFToken: "c", ClientName: evil, UserEmail: evil, Scopes: []ScopeInfo{{Name: evil, Description: evil}}})
			},
			want:       []string{`&lt;script&gt;alert(1)&lt;/script&gt;`},
			absent:     []string{`name="challenge"`},
			formAction: "'self' https://id.example",
		},
		{
			name: "error", status: http.StatusBadRequest,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.Error(w, s, ErrorPage{Title: "This link has expired", Message: "Start signing in again from the application.", RequestID: "req-7f3a9c"})
			},
			want:       []string{`<h1>This link has expired</h1>`, `Start signing in again`, `Reference: <code>req-7f3a9c</code>`},
			absent:     []string{`<form`},
			formAction: "'self'",
		},
		{
			name: "error-escaping", status: http.StatusInternalServerError,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.Error(w, s, ErrorPage{Title: evil, Message: evil, RequestID: evil})
			},
			want: []string{`&lt;script&gt;alert(1)&lt;/script&gt;`},
		},
		{
			name: "error-bare", status: http.StatusNotFound,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.Error(w, s, ErrorPage{})
			},
			want:   []string{`<h1>Something went wrong</h1>`},
			absent: []string{`Reference`},
		},
		{
			name: "logout", status: http.StatusOK,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.Logout(w, s, LogoutPage{Action: "/logout", CSRFToken: "csrf-123", ClientName: "Acme Dashboard", Hidden: map[string]string{
					"state": "st-1", "post_logout_redirect_uri": "https://app.acme.example/bye", "id_token_hint": `"><q`,
				}, FormActionExtra: []string{"https://app.acme.example/bye"}})
			},
			want: []string{
				`Sign out of <span class="client">Acme Dashboard</span>?`,
				`<input type="hidden" name="csrf_token" value="csrf-123">`,
				// sorted by key
				`<input type="hidden" name="id_token_hint" value="&#34;&gt;&lt;q">` + "\n" +
					`<input type="hidden" name="post_logout_redirect_uri" value="https://app.acme.example/bye">` + "\n" +
					`<input type="hidden" name="state" value="st-1">`,
				`name="decision" value="logout"`, `name="decision" value="cancel"`,
			},
			formAction: "'self' https://app.acme.example",
		},
		{
			name: "logout-escaping", status: http.StatusOK,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.Logout(w, s, LogoutPage{Action: "/logout", CSRFToken: "c", ClientName: evil, Hidden: map[string]string{`"><k`: "v"}})
			},
			want:   []string{`&lt;script&gt;alert(1)&lt;/script&gt;`},
			absent: []string{`"><k`},
		},
		{
			name: "loggedout", status: http.StatusOK,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.LoggedOut(w, s, LoggedOutPage{Message: "You can close this window or return to Acme Dashboard."})
			},
			want:       []string{`You are signed out.`, `return to Acme Dashboard`},
			absent:     []string{`<form`},
			formAction: "'self'",
		},
		{
			name: "loggedout-escaping", status: http.StatusOK,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.LoggedOut(w, s, LoggedOutPage{Message: evil})
			},
			want: []string{`&lt;script&gt;alert(1)&lt;/script&gt;`},
		},
		{
			name: "sessions", status: http.StatusOK,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.Sessions(w, s, SessionsPage{
					UserEmail: "ada@example.com", CSRFToken: "csrf-123", Action: "/account/sessions", Flash: "Session ended.",
					Sessions: []SessionRow{
						{ID: "s-cur", Device: "Firefox on macOS", IP: "203.0.113.7", CreatedAt: t0, LastActive: t1, Current: true},
						{ID: "s-2", Device: "Safari on iPhone", IP: "2001:db8::1", CreatedAt: t0, LastActive: t0},
						{ID: "s-3", CreatedAt: t0},
					},
				})
			},
			want: []string{
				`<caption id="sessions-caption">`, `<th scope="col">Device</th>`, `<th scope="col">IP address</th>`,
				`<th scope="col">Signed in</th>`, `<th scope="col">Last active</th>`,
				`<div class="alert alert-success" role="status">Session ended.</div>`,
				`<tr class="current" aria-current="true">` + "\n" + `<th scope="row"><span class="device">Firefox on macOS</span> <span class="badge">This device</span></th>`,
				`<input type="hidden" name="session_id" value="s-cur">` + "\n" + `<button type="submit" class="btn btn-secondary btn-small">Sign out<span`,
				`<input type="hidden" name="session_id" value="s-2">` + "\n" + `<button type="submit" class="btn btn-danger btn-small">End session<span`,
				`<time datetime="2025-03-04T09:05:00Z">4 Mar 2025 09:05 UTC</time>`,
				`<time datetime="2025-03-09T16:42:00Z">9 Mar 2025 16:42 UTC</time>`,
				`Unknown device`,
				`<input type="hidden" name="all_others" value="1">`,
				`<input type="hidden" name="csrf_token" value="csrf-123">`,
				`End all other sessions`,
			},
			formAction: "'self'",
		},
		{
			name: "sessions-only-current", status: http.StatusOK,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.Sessions(w, s, SessionsPage{CSRFToken: "c", Action: "/account/sessions", Sessions: []SessionRow{{ID: "a", Current: true, CreatedAt: t0, LastActive: t0}}})
			},
			want:   []string{`This device`},
			absent: []string{`all_others`, `role="status"`},
		},
		{
			name: "sessions-escaping", status: http.StatusOK,
			render: func(r *Renderer, w http.ResponseWriter, s int) error {
				return r.Sessions(w, s, SessionsPage{UserEmail: evil, CSRFToken: `"><x`, Action: "/s", Flash: evil, Sessions: []SessionRow{{ID: `"><y`, Device: evil, IP: evil}}})
			},
			want:   []string{`&lt;script&gt;alert(1)&lt;/script&gt;`},
			absent: []string{`"><x`, `"><y`},
		},
	}
}

func newRenderer(t *testing.T) *Renderer {
	t.Helper()
	r, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func TestPages(t *testing.T) {
	r := newRenderer(t)
	for _, tc := range pageCases() {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if err := tc.render(r, rec, tc.status); err != nil {
				t.Fatalf("render: %v", err)
			}
			body := rec.Body.String()

			if rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			for k, want := range map[string]string{
				"Content-Type":    "text/html; charset=utf-8",
				"Cache-Control":   "no-store",
				"X-Frame-Options": "DENY",
			} {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			csp := rec.Header().Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'none'", "style-src 'self'", "img-src 'self' data:", "frame-ancestors 'none'", "base-uri 'none'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("CSP %q lacks %q", csp, d)
				}
			}
			if tc.formAction != "" && !strings.Contains(csp, "; form-action "+tc.formAction+"; ") {
				t.Errorf("CSP %q: want form-action %s", csp, tc.formAction)
			}

			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q", s)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(body, s) {
					t.Errorf("body contains %q", s)
				}
			}
			checkAccessible(t, body)
		})
	}
}

var (
	tagRE  = regexp.MustCompile(`<(input|label)\b[^>]*>`)
	attrRE = regexp.MustCompile(`([a-zA-Z-]+)(?:="([^"]*)")?`)
)

func attrs(tag string) map[string]string {
	m := map[string]string{}
	inner := strings.TrimSuffix(tag[strings.IndexByte(tag, ' ')+1:], ">")
	for _, a := range attrRE.FindAllStringSubmatch(inner, -1) {
		m[a[1]] = a[2]
	}
	return m
}

// checkAccessible holds the rules every page shares: no script, a main landmark, lang and viewport,
// and a <label for> for every visible input.
func checkAccessible(t *testing.T, body string) {
	t.Helper()
	lower := strings.ToLower(body)
	for _, s := range []string{"<script", "javascript:", " onload=", " onclick="} {
		if strings.Contains(lower, s) {
			t.Errorf("page contains %q", s)
		}
	}
	for _, s := range []string{`<html lang="en">`, `<meta name="viewport"`, `<main`, `<title>`} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	labels := map[string]bool{}
	var inputs []map[string]string
	for _, m := range tagRE.FindAllStringSubmatch(body, -1) {
		a := attrs(m[0])
		if m[1] == "label" {
			labels[a["for"]] = true
		} else {
			inputs = append(inputs, a)
		}
	}
	ids := map[string]int{}
	for _, in := range inputs {
		switch in["type"] {
		case "hidden", "submit":
			continue
		}
		if in["id"] == "" || !labels[in["id"]] {
			t.Errorf("input %v has no <label for>", in)
		}
		ids[in["id"]]++
		if d := in["aria-describedby"]; d != "" && !strings.Contains(body, `id="`+d+`"`) {
			t.Errorf("input %v is described by missing id %q", in, d)
		}
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("id %q used %d times", id, n)
		}
	}
}

func TestFormPostTemplate(t *testing.T) {
	r := newRenderer(t)
	// The same data shape fosite's WriteAuthorizeFormPostResponse passes.
	data := struct {
		RedirURL   string
		Parameters url.Values
	}{
		RedirURL:   "https://app.example/callback",
		Parameters: url.Values{"code": {"abc"}, "state": {`"><s`}, "iss": {"https://id.example"}},
	}
	var b strings.Builder
	if err := r.FormPostTemplate().Execute(&b, data); err != nil {
		t.Fatalf("execute: %v", err)
	}
	body := b.String()
	for _, s := range []string{
		`<form method="post" action="https://app.example/callback">`,
		`<input type="hidden" name="code" value="abc">`,
		`<input type="hidden" name="iss" value="https://id.example">`,
		`<input type="hidden" name="state" value="&#34;&gt;&lt;s">`,
		`<button type="submit"`, `>Continue</button>`,
		`onload="javascript:document.forms[0].submit()"`,
		`<html lang="en">`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("form_post page lacks %q\n%s", s, body)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("form_post page contains a script element")
	}
	// A javascript: redirect must never become the form action.
	b.Reset()
	data.RedirURL = "javascript:alert(1)"
	if err := r.FormPostTemplate().Execute(&b, data); err != nil {
		t.Fatalf("execute: %v", err)
	}
	if strings.Contains(b.String(), `action="javascript:`) {
		t.Error("javascript: URL reached the form action")
	}
}

func TestCSS(t *testing.T) {
	r := newRenderer(t)
	css := string(r.CSS())
	for _, s := range []string{":focus-visible", "@media", "system-ui"} {
		if !strings.Contains(css, s) {
			t.Errorf("stylesheet lacks %q", s)
		}
	}
	for _, s := range []string{"@import", "url(", "http"} {
		if strings.Contains(css, s) {
			t.Errorf("stylesheet contains %q (no external resources)", s)
		}
	}
}

func TestFailedRenderWritesNoPartialPage(t *testing.T) {
	r := newRenderer(t)
	boom := template.Must(template.New("boom").Funcs(template.FuncMap{
		"fail": func() (string, error) { return "", errors.New("boom") },
	}).Parse(`<!doctype html><p>partial page</p>{{fail}}`))

	rec := httptest.NewRecorder()
	err := r.render(rec, http.StatusOK, boom, nil, nil)
	if err == nil {
		t.Fatal("render succeeded, want error")
	}
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "partial") {
		t.Errorf("partial page written: %q", rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
}

func TestConcurrentRender(t *testing.T) {
	r := newRenderer(t)
	var wg sync.WaitGroup
	for range 8 {
		for _, tc := range pageCases() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := tc.render(r, httptest.NewRecorder(), tc.status); err != nil {
					t.Errorf("%s: %v", tc.name, err)
				}
			}()
		}
	}
	wg.Wait()
}

// TestWritePreviews writes every page to testdata/ for looking at in a browser. Opt in with
// LATCHKEY_WRITE_PREVIEWS=1; the files are git-ignored.
func TestWritePreviews(t *testing.T) {
	if os.Getenv("LATCHKEY_WRITE_PREVIEWS") != "1" {
		t.Skip("set LATCHKEY_WRITE_PREVIEWS=1 to write previews")
	}
	r := newRenderer(t)
	dir := "testdata"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "latchkey.css"), r.CSS(), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		body = strings.ReplaceAll(body, `href="`+CSSPath+`"`, `href="latchkey.css"`)
		if err := os.WriteFile(filepath.Join(dir, name+".html"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range pageCases() {
		rec := httptest.NewRecorder()
		if err := tc.render(r, rec, tc.status); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		write(tc.name, rec.Body.String())
	}
	var b strings.Builder
	// No onload in the preview, so the page stays put in a browser.
	fp := strings.NewReplacer(` onload="javascript:document.forms[0].submit()"`, "")
	if err := r.FormPostTemplate().Execute(&b, struct {
		RedirURL   string
		Parameters url.Values
	}{"https://app.example/callback", url.Values{"code": {"abc"}, "state": {"xyz"}}}); err != nil {
		t.Fatal(err)
	}
	write("formpost", fp.Replace(b.String()))
}
