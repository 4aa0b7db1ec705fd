package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// wwCall is one call the WeWeb-style client made (testdata/weweb/plugin.js), as it saw it.
type wwCall struct {
	Tab           string `json:"tab"`
	Method        string `json:"method"`
	Path          string `json:"path"`
	Authorization string `json:"authorization"`
	WWRetry       string `json:"wwRetry"`
	RefreshToken  string `json:"refreshToken"`
	Status        int    `json:"status"`
	Error         string `json:"error"`
	Data          any    `json:"data"`
}

func (c wwCall) String() string {
	s := fmt.Sprintf("%s %s %s → %d", c.Tab, c.Method, c.Path, c.Status)
	if c.WWRetry != "" {
		s += " (ww-retry)"
	}
	if c.Error != "" {
		s += " " + c.Error
	}
	if c.Status >= 400 {
		s += fmt.Sprintf(" %v", c.Data)
	}
	return s
}

// wwOutcome is how one of the client's workflows ended.
type wwOutcome struct {
	OK     bool           `json:"ok"`
	Status int            `json:"status"`
	Error  string         `json:"error"`
	Data   map[string]any `json:"data"`
}

// wwState is what a tab of the client holds.
type wwState struct {
	AccessToken     string         `json:"accessToken"`
	RefreshToken    string         `json:"refreshToken"`
	User            map[string]any `json:"user"`
	IsAuthenticated bool           `json:"isAuthenticated"`
	AccessCookie    string         `json:"accessCookie"`
	RefreshCookie   string         `json:"refreshCookie"`
}

// wwTab is one tab of the app in the shared browser.
type wwTab struct {
	name string
	ctx  context.Context
	mu   sync.Mutex
	msgs []string // the browser's console and log entries (a refused CORS preflight is reported here)
	seen int      // calls already checked
}

func (tb *wwTab) listen(t *testing.T) {
	t.Helper()
	if err := chromedp.Listen(tb.ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *log.EventEntryAdded:
			msg = fmt.Sprintf("%s: %s", e.Entry.Level, e.Entry.Text)
		case *runtime.EventExceptionThrown:
			msg = "exception: " + e.ExceptionDetails.Text
			if x := e.ExceptionDetails.Exception; x != nil {
				msg += " " + x.Description
			}
		default:
			return
		}
		tb.mu.Lock()
		tb.msgs = append(tb.msgs, msg)
		tb.mu.Unlock()
	}); err != nil {
		t.Fatalf("%s: listen: %v", tb.name, err)
	}
}

// console is what the browser reported in this tab, for failure messages.
func (tb *wwTab) console() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.msgs) == 0 {
		return "(browser console empty)"
	}
	return "browser console:\n  " + strings.Join(tb.msgs, "\n  ")
}

func (tb *wwTab) open(t *testing.T, pageURL string) {
	t.Helper()
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(pageURL), chromedp.WaitVisible(chromedp.ID("app"))); err != nil {
		t.Fatalf("%s: open the app: %v", tb.name, err)
	}
	if got := tb.run(t, `ww.ready`); !got.OK {
		t.Fatalf("%s: the plugin's start failed: %+v\n%s", tb.name, got, tb.console())
	}
}

// run evaluates a JS expression yielding a promise of a workflow's outcome.
func (tb *wwTab) run(t *testing.T, expr string) wwOutcome {
	t.Helper()
	out, err := chromedp.Run(tb.ctx, chromedp.Evaluate[wwOutcome](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", tb.name, expr, err, tb.console())
	}
	return out
}

func (tb *wwTab) state(t *testing.T) wwState {
	t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[wwState](`ww.state()`))
	if err != nil {
		t.Fatalf("%s: read the plugin's state: %v", tb.name, err)
	}
	return s
}

// calls returns the calls the tab made since the last time calls was called.
func (tb *wwTab) calls(t *testing.T) []wwCall {
	t.Helper()
	all, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]wwCall](`ww.log`))
	if err != nil {
		t.Fatalf("%s: read the call log: %v", tb.name, err)
	}
	fresh := all[tb.seen:]
	tb.seen = len(all)
	return fresh
}

func describeCalls(calls []wwCall) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString("\n  " + c.String())
	}
	return b.String()
}

// newChromium starts a headless Chromium for the test, or skips (fails under LATCHKEY_REQUIRE_BROWSER=1) when
// there is none. The returned context is its first tab.
func newChromium(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	bin := findChromium()
	if bin == "" {
		if os.Getenv("LATCHKEY_REQUIRE_BROWSER") == "1" {
			t.Fatal("LATCHKEY_REQUIRE_BROWSER=1 but no chromium binary was found (looked for /usr/bin/chromium, chromium, chromium-browser)")
		}
		t.Skip("no chromium binary found (looked for /usr/bin/chromium, chromium, chromium-browser); install Debian's chromium package or set LATCHKEY_REQUIRE_BROWSER=1 to make this a failure")
	}
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
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancelBrowser)
	return browser
}

// TestWeWebTokenAuthPluginInChromium runs a client that behaves exactly as WeWeb's Token-Based Auth plugin
// (testdata/weweb/plugin.js), set up as the README's WeWeb recipe says, in headless Chromium from a page on another
// origin: sign-in, two tabs sharing the plugin's cookies, five access-token expiries each met by both tabs
// refreshing at once with the sign-in's refresh token (the plugin never stores another) and retrying with
// ww-retry, "Auth Basic Token" (the raw token), a PATCH of /me, then sign-out, after which no token of the
// session works.
func TestWeWebTokenAuthPluginInChromium(t *testing.T) {
	const (
		ttl    = 2 * time.Second
		cycles = 5
	)
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	browser := newChromium(t, ctx)

	// The app's page on an origin of its own.
	site := httptest.NewServer(http.FileServer(http.Dir(filepath.Join("testdata", "weweb"))))
	defer site.Close()

	env := newTestEnv(t, "sqlite://"+filepath.Join(t.TempDir(), "latchkey.db"))
	env["LATCHKEY_ACCESS_TOKEN_TTL"] = ttl.String()
	env.cli(t, "pools", "create", "customers", "--default-roles", "customer")
	env.cli(t, "users", "create", "--pool", "customers", "--email", adaEmail, "--password", adaPassword,
		"--name", "Ada Lovelace", "--roles", "customer")
	// The README's WeWeb recipe.
	app := env.createClient(t, "--name", "my-weweb-app", "--first-party", "--pool", "customers",
		"--allowed-origins", site.URL, "--scopes", "openid profile email roles offline_access",
		"--refresh-token-rotation", "off")
	srv := env.startServer(t)
	api := srv.URL + "/api/v1/auth"
	pageURL := func(tab string) string {
		return site.URL + "/index.html?" + url.Values{"api": {srv.URL}, "client_id": {app.ClientID}, "tab": {tab}}.Encode()
	}
	if strings.HasPrefix(srv.URL, site.URL) || site.URL == srv.URL {
		t.Fatalf("the app (%s) must be on another origin than Latchkey (%s)", site.URL, srv.URL)
	}

	// Tab A signs in: the app's login call, "Store token" with access_token and refresh_token, "Fetch User".
	a := &wwTab{name: "tab A", ctx: browser}
	a.listen(t)
	launched := time.Now()
	a.open(t, pageURL("A"))
	login := a.run(t, fmt.Sprintf(`ww.signIn(%q, %q)`, adaEmail, adaPassword))
	if !login.OK {
		t.Fatalf("sign-in: %+v%s\n%s", login, describeCalls(a.calls(t)), a.console())
	}
	signInRT, _ := login.Data["refresh_token"].(string)
	firstAT, _ := login.Data["access_token"].(string)
	if signInRT == "" || firstAT == "" {
		t.Fatalf("the login answer has no tokens: %v", login.Data)
	}
	// What FlutterFlow stores beside the tokens: the absolute expiry and the user's id.
	user, _ := login.Data["user"].(map[string]any)
	if id, _ := user["id"].(string); !strings.HasPrefix(id, "usr_") {
		t.Errorf("login answer's user.id = %v, want the user's id", user["id"])
	}
	if exp, ok := login.Data["expires_at"].(float64); !ok || time.Unix(int64(exp), 0).Before(started) ||
		time.Unix(int64(exp), 0).After(time.Now().Add(ttl+2*time.Second)) {
		t.Errorf("login answer's expires_at = %v, want the access token's expiry (about %v from now) in Unix seconds", login.Data["expires_at"], ttl)
	}
	calls := a.calls(t)
	if len(calls) != 2 || calls[1].Path != "/api/v1/auth/me" || calls[1].Status != http.StatusOK || calls[1].Authorization != "Basic "+firstAT {
		t.Fatalf("sign-in then Fetch User with Basic <raw token>:%s\n%s", describeCalls(calls), a.console())
	}
	st := a.state(t)
	if !st.IsAuthenticated || st.User["email"] != adaEmail || st.RefreshCookie != signInRT || st.AccessCookie != firstAT {
		t.Fatalf("tab A after sign-in: %+v", st)
	}

	// Tab B opens the app in the same browser: it finds the tokens in the shared cookies and fetches the user.
	bctx, cancelB := chromedp.NewContext(browser)
	defer cancelB()
	b := &wwTab{name: "tab B", ctx: bctx}
	b.listen(t)
	b.open(t, pageURL("B"))
	if st := b.state(t); !st.IsAuthenticated || st.User["email"] != adaEmail || st.RefreshToken != signInRT {
		t.Fatalf("tab B did not pick up the session from the cookies: %+v%s\n%s", st, describeCalls(b.calls(t)), b.console())
	}
	b.calls(t)

	// Five times: wait until both tabs' access tokens have expired (Latchkey says 401 to them; fosite judges
	// expiry by the wall clock), then both tabs call /me at the same instant. Each gets 401, refreshes with the
	// sign-in's refresh token, stores only the new access token and retries with ww-retry.
	tabs := []*wwTab{a, b}
	for cycle := 1; cycle <= cycles; cycle++ {
		old := map[*wwTab]string{}
		for _, tb := range tabs {
			old[tb] = tb.state(t).AccessToken
		}
		deadline := time.Now().Add(ttl + 5*time.Second)
		for _, tb := range tabs {
			for {
				code, _, body := apiCall(t, "GET", api+"/me", nil, bearerHeader(old[tb]))
				if code == http.StatusUnauthorized {
					break
				}
				if code != http.StatusOK || time.Now().After(deadline) {
					t.Fatalf("cycle %d: waiting for %s's access token to expire: /me answered %d %v", cycle, tb.name, code, body)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		startAt := time.Now().Add(200 * time.Millisecond).UnixMilli()
		results := make([]wwOutcome, len(tabs))
		errs := make([]error, len(tabs))
		var wg sync.WaitGroup
		for i, tb := range tabs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = chromedp.Run(tb.ctx, chromedp.Evaluate[wwOutcome](
					fmt.Sprintf(`ww.at(%d, () => ww.fetchUser())`, startAt), chromedp.EvalAwaitPromise))
			}()
		}
		wg.Wait()
		for i, tb := range tabs {
			if errs[i] != nil {
				t.Fatalf("cycle %d: %s: %v", cycle, tb.name, errs[i])
			}
			calls := tb.calls(t)
			want := "GET /me 401 (Basic, the expired token), POST /refresh 200 (the sign-in's refresh token), GET /me 200 (ww-retry, Basic, the new token)"
			ok := len(calls) == 3 &&
				calls[0].Method == "GET" && calls[0].Path == "/api/v1/auth/me" && calls[0].Status == http.StatusUnauthorized &&
				calls[0].Authorization == "Basic "+old[tb] && calls[0].WWRetry == "" &&
				calls[1].Method == "POST" && calls[1].Path == "/api/v1/auth/refresh" && calls[1].Status == http.StatusOK &&
				calls[1].RefreshToken == signInRT &&
				calls[2].Method == "GET" && calls[2].Path == "/api/v1/auth/me" && calls[2].Status == http.StatusOK &&
				calls[2].WWRetry == "true" && calls[2].Authorization != "Basic "+old[tb] && strings.HasPrefix(calls[2].Authorization, "Basic ")
			if !ok || !results[i].OK {
				t.Fatalf("cycle %d, %s: want %s; the tab made:%s\noutcome %+v\n%s", cycle, tb.name, want, describeCalls(calls), results[i], tb.console())
			}
			st := tb.state(t)
			if st.RefreshToken != signInRT || !st.IsAuthenticated || st.User["email"] != adaEmail || st.AccessToken == old[tb] ||
				!equalRoles(st.User["roles"], "customer") {
				t.Fatalf("cycle %d, %s: the plugin's state afterwards: %+v", cycle, tb.name, st)
			}
		}
		if a.state(t).AccessToken == b.state(t).AccessToken {
			t.Fatalf("cycle %d: both tabs hold the same new access token: the refreshes did not both happen", cycle)
		}
	}

	// A PATCH of /me from the app's origin (a CORS preflight for PATCH), with Basic; the other tab sees it.
	if got := a.run(t, `ww.changeName("Ada L.")`); !got.OK || got.Data["name"] != "Ada L." {
		t.Fatalf("PATCH /me: %+v%s\n%s", got, describeCalls(a.calls(t)), a.console())
	}
	if got := b.run(t, `ww.fetchUser()`); !got.OK || got.Data["name"] != "Ada L." {
		t.Fatalf("tab B after the rename: %+v%s\n%s", got, describeCalls(b.calls(t)), b.console())
	}
	a.calls(t)
	b.calls(t)

	// Sign-out, the recipe's workflow: Latchkey's logout with the token, then the plugin's Logout (cookies only).
	lastA, lastB := a.state(t).AccessToken, b.state(t).AccessToken
	if got := a.run(t, `ww.signOut()`); !got.OK {
		t.Fatalf("sign-out: %+v%s\n%s", got, describeCalls(a.calls(t)), a.console())
	}
	if st := a.state(t); st.AccessCookie != "" || st.RefreshCookie != "" || st.IsAuthenticated {
		t.Errorf("after the plugin's Logout the cookies remain: %+v", st)
	}
	// Every token of the session stops working: both tabs' access tokens and the sign-in's refresh token.
	for _, tok := range []string{lastA, lastB} {
		if code, _, body := apiCall(t, "GET", api+"/me", nil, bearerHeader(tok)); code != http.StatusUnauthorized {
			t.Errorf("/me with an access token of the ended session: %d %v", code, body)
		}
	}
	if code, _, body := apiCall(t, "POST", api+"/refresh", map[string]any{"refresh_token": signInRT}, nil); code < 400 || code >= 500 {
		t.Errorf("refresh with the sign-in's refresh token after sign-out: %d %v", code, body)
	}
	// Tab B, still holding its copy, is refused: its /me fails, its refresh fails, and it does not retry.
	got := b.run(t, `ww.fetchUser()`)
	calls = b.calls(t)
	if got.OK || got.Status != http.StatusUnauthorized || len(calls) != 2 || calls[1].Path != "/api/v1/auth/refresh" ||
		calls[1].Status < 400 || calls[1].Status >= 500 {
		t.Errorf("tab B after sign-out: %+v%s", got, describeCalls(calls))
	}
	t.Logf("WeWeb client in Chromium: %d cycles in %v (browser part %v)", cycles,
		time.Since(started).Round(time.Millisecond), time.Since(launched).Round(time.Millisecond))
}

// equalRoles reports whether a decoded JSON roles value is exactly want.
func equalRoles(v any, want ...string) bool {
	got, ok := v.([]any)
	if !ok || len(got) != len(want) {
		return false
	}
	for i := range want {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}
