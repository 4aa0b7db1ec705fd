package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/handlers/throttle"
)

// Brute-force limits hold whatever the concurrency: every attempt at a secret is reserved in the database before
// the password is hashed, so bursts, several nodes and clients that hang up get no more guesses than the
// policy's free ones. The throttle's clock is frozen, so a block never passes during a burst however slow the
// machine.

const bobPassword = "violet-tractor-47"

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// startServerAt is startServerLoggingTo with the sign-in throttle on clock.
func startServerAt(t *testing.T, e testEnv, clock *testClock, w io.Writer) *server {
	t.Helper()
	return e.startServerWith(t, w, func(a *app.Server) { a.SetThrottleClock(clock.Now) })
}

// throttleFixture: a "customers" pool with a first-party app, the user bob in it, and nodes servers on one
// database sharing one throttle clock.
type throttleFixture struct {
	env      testEnv
	clock    *testClock
	nodes    []*server
	clientID string
	logs     *lockedBuffer
}

func newThrottleFixture(t *testing.T, env testEnv, nodes int) *throttleFixture {
	t.Helper()
	env.cli(t, "pools", "create", "customers", "--default-roles", "customer")
	app := env.createClient(t, "--name", "app", "--first-party", "--pool", "customers",
		"--scopes", "openid profile email roles offline_access")
	env.cli(t, "users", "create", "--pool", "customers", "--email", "bob@example.com", "--password", bobPassword)
	f := &throttleFixture{env: env, clock: &testClock{now: time.Now()}, clientID: app.ClientID, logs: &lockedBuffer{}}
	for range nodes {
		f.nodes = append(f.nodes, startServerAt(t, env, f.clock, io.MultiWriter(f.logs, &testLogWriter{t: t})))
	}
	return f
}

func (f *throttleFixture) api(i int) string { return f.nodes[i%len(f.nodes)].URL + "/api/v1/auth" }

func (f *throttleFixture) creds(email, password string) map[string]any {
	return map[string]any{"client_id": f.clientID, "email": email, "password": password}
}

// answer is one response of a burst.
type answer struct {
	status     int
	retryAfter string
	body       map[string]any
	err        error
}

// burst sends n requests at once (built by req) and returns the answers, counted by status.
func burst(t *testing.T, n int, client *http.Client, req func(i int) *http.Request) ([]answer, map[int]int) {
	t.Helper()
	answers := make([]answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		r := req(i)
		wg.Go(func() {
			<-start
			resp, err := client.Do(r)
			if err != nil {
				answers[i].err = err
				return
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			answers[i] = answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
			_ = json.Unmarshal(raw, &answers[i].body)
		})
	}
	close(start)
	wg.Wait()
	counts := map[int]int{}
	for i, a := range answers {
		if a.err != nil {
			t.Fatalf("request %d: %v", i, a.err)
		}
		counts[a.status]++
		if a.status == http.StatusTooManyRequests && a.retryAfter == "" {
			t.Errorf("request %d: 429 without Retry-After", i)
		}
	}
	return answers, counts
}

func jsonRequest(method, endpoint string, body any, headers map[string]string) *http.Request {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, endpoint, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req
}

// wantBurst checks a burst of 40 was answered with exactly `evaluated` answers of status `evaluatedStatus`
// and 429 for the rest.
func wantBurst(t *testing.T, what string, counts map[int]int, evaluatedStatus, evaluated int) {
	t.Helper()
	if counts[evaluatedStatus] != evaluated || counts[http.StatusTooManyRequests] != 40-evaluated {
		t.Fatalf("%s: answers by status %v, want %d × %d and %d × 429", what, counts, evaluated, evaluatedStatus, 40-evaluated)
	}
}

func TestLoginBurstEvaluatesOnlyTheFreeAttempts(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) { testLoginBurst(t, newThrottleFixture(t, env, 1)) })
}

func TestLoginBurstAcrossTwoNodesEvaluatesOnlyTheFreeAttempts(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) { testLoginBurst(t, newThrottleFixture(t, env, 2)) })
}

func testLoginBurst(t *testing.T, f *throttleFixture) {
	free := throttle.DefaultAccountPolicy.Free
	_, counts := burst(t, 40, http.DefaultClient, func(i int) *http.Request {
		return jsonRequest("POST", f.api(i)+"/login", f.creds("bob@example.com", fmt.Sprintf("wrong-guess-%d", i)), nil)
	})
	wantBurst(t, "40 parallel wrong passwords", counts, http.StatusUnauthorized, free)

	// The right password is refused while the account is blocked, on every node.
	for i := range f.nodes {
		code, hdr, body := apiCall(t, "POST", f.api(i)+"/login", f.creds("bob@example.com", bobPassword), nil)
		if code != http.StatusTooManyRequests || hdr.Get("Retry-After") != "1" || body["error"] != "too_many_requests" {
			t.Fatalf("right password during the block (node %d): %d Retry-After=%q %v", i, code, hdr.Get("Retry-After"), body)
		}
	}
	// Once the block has passed it works, and resets the account's count.
	f.clock.Advance(throttle.DefaultAccountPolicy.Base)
	if code, _, body := apiCall(t, "POST", f.api(0)+"/login", f.creds("bob@example.com", bobPassword), nil); code != http.StatusOK {
		t.Fatalf("right password after the block: %d %v", code, body)
	}
	if code, _, _ := apiCall(t, "POST", f.api(0)+"/login", f.creds("bob@example.com", "wrong-again"), nil); code != http.StatusUnauthorized {
		t.Fatalf("a wrong password after a success: %d, want 401 (count reset)", code)
	}
}

func TestPasswordChangeBurstEvaluatesOnlyTheFreeAttempts(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newThrottleFixture(t, env, 1)
		code, _, login := apiCall(t, "POST", f.api(0)+"/login", f.creds("bob@example.com", bobPassword), nil)
		if code != http.StatusOK {
			t.Fatalf("login: %d %v", code, login)
		}
		auth := bearerHeader(login["access_token"].(string))
		_, counts := burst(t, 40, http.DefaultClient, func(i int) *http.Request {
			return jsonRequest("POST", f.api(0)+"/password",
				map[string]any{"current_password": fmt.Sprintf("wrong-guess-%d", i), "new_password": "a-much-better-passphrase"}, auth)
		})
		wantBurst(t, "40 parallel wrong current passwords", counts, http.StatusUnauthorized, throttle.DefaultAccountPolicy.Free)
		code, _, body := apiCall(t, "POST", f.api(0)+"/password",
			map[string]any{"current_password": bobPassword, "new_password": "a-much-better-passphrase"}, auth)
		if code != http.StatusTooManyRequests {
			t.Fatalf("right current password during the block: %d %v", code, body)
		}
	})
}

func TestLoginFormBurstEvaluatesOnlyTheFreeAttempts(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
		clock := &testClock{now: time.Now()}
		srv := startServerAt(t, env, clock, &testLogWriter{t: t})
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Get(srv.URL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_, values := parseForm(t, string(page))
		csrf := values.Get("csrf_token")
		post := func(password string) *http.Request {
			form := url.Values{"email": {adaEmail}, "password": {password}, "csrf_token": {csrf}}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}
		_, counts := burst(t, 40, client, func(i int) *http.Request { return post(fmt.Sprintf("wrong-guess-%d", i)) })
		wantBurst(t, "40 parallel wrong passwords on the sign-in form", counts, http.StatusUnauthorized, throttle.DefaultAccountPolicy.Free)

		resp, err = client.Do(post(adaPassword))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "Too many attempts") {
			t.Fatalf("right password during the block: %d Retry-After=%q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		clock.Advance(throttle.DefaultAccountPolicy.Base)
		if resp, err = client.Do(post(adaPassword)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("right password after the block: %d, want 303", resp.StatusCode)
		}
	})
}

// A client that sends its guess and hangs up (half-closing, which cancels the request's context) still has the
// guess counted: after Free of them the next polite attempt is throttled.
func TestHalfClosedLoginsAreCounted(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newThrottleFixture(t, env, 1)
		host := strings.TrimPrefix(f.nodes[0].URL, "http://")
		// A request the server gave up on before reaching the password (e.g. the client lookup saw the
		// cancellation) was no guess; count the ones answered 401, whose password was checked.
		evaluated := 0
		for i := 0; evaluated < throttle.DefaultAccountPolicy.Free; i++ {
			if i == 4*throttle.DefaultAccountPolicy.Free {
				t.Fatalf("only %d of %d half-closed guesses reached the password check", evaluated, i)
			}
			raw, _ := json.Marshal(f.creds("bob@example.com", fmt.Sprintf("wrong-guess-%d", i)))
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "POST /api/v1/auth/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				host, len(raw), raw)
			if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			// The server closes the connection once the handler is done.
			answer, _ := io.ReadAll(conn)
			conn.Close()
			switch status, _, _ := strings.Cut(string(answer), "\r\n"); status {
			case "HTTP/1.1 401 Unauthorized":
				evaluated++
			case "HTTP/1.1 429 Too Many Requests":
				t.Fatalf("half-closed guess %d was throttled after only %d evaluated", i, evaluated)
			}
		}
		code, hdr, body := apiCall(t, "POST", f.api(0)+"/login", f.creds("bob@example.com", "one-more-guess"), nil)
		if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
			t.Fatalf("a polite attempt after %d half-closed guesses: %d %v, want 429 (the guesses were not counted)",
				evaluated, code, body)
		}
	})
}

func TestSignupSuccessesPerIPAreLimited(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newThrottleFixture(t, env, 1)
		free := throttle.DefaultSignupPolicy.Free
		_, counts := burst(t, 40, http.DefaultClient, func(i int) *http.Request {
			return jsonRequest("POST", f.api(0)+"/signup", f.creds(fmt.Sprintf("user%d@example.com", i), bobPassword), nil)
		})
		wantBurst(t, "40 parallel sign-ups from one address", counts, http.StatusCreated, free)
		code, hdr, body := apiCall(t, "POST", f.api(0)+"/signup", f.creds("late@example.com", bobPassword), nil)
		if code != http.StatusTooManyRequests || hdr.Get("Retry-After") != "3600" {
			t.Fatalf("sign-up past the limit: %d Retry-After=%q %v", code, hdr.Get("Retry-After"), body)
		}
		out := env.cli(t, "users", "list", "--pool", "customers", "--json")
		if n := strings.Count(out, `"email"`); n != free+1 { // bob and the sign-ups that were let through
			t.Fatalf("%d users in the pool, want %d:\n%s", n, free+1, out)
		}
		// Signing in is a different limit: the address can still sign in.
		if code, _, body := apiCall(t, "POST", f.api(0)+"/login", f.creds("user1@example.com", bobPassword), nil); code != http.StatusOK && code != http.StatusUnauthorized {
			t.Fatalf("login after the sign-up limit: %d %v", code, body)
		}
	})
}

// Signing up with a taken email tells that the account exists, so it counts like a wrong password, on the same
// account counter as sign-in.
func TestSignupWithATakenEmailCountsAsAFailure(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newThrottleFixture(t, env, 1)
		_, counts := burst(t, 40, http.DefaultClient, func(i int) *http.Request {
			return jsonRequest("POST", f.api(0)+"/signup", f.creds("Bob@Example.com", fmt.Sprintf("another-pass-%d", i)), nil)
		})
		wantBurst(t, "40 parallel sign-ups with a taken email", counts, http.StatusConflict, throttle.DefaultAccountPolicy.Free)
		if code, _, body := apiCall(t, "POST", f.api(0)+"/login", f.creds("bob@example.com", bobPassword), nil); code != http.StatusTooManyRequests {
			t.Fatalf("sign-in after the probes: %d %v, want 429", code, body)
		}
		// The failed sign-ups did not use up the address's sign-ups.
		if code, _, body := apiCall(t, "POST", f.api(0)+"/signup", f.creds("carol@example.com", bobPassword), nil); code != http.StatusCreated {
			t.Fatalf("a new sign-up after the probes: %d %v", code, body)
		}
	})
}

// A disabled account answers exactly like a wrong password, whether or not the password was right.
func TestDisabledAccountAnswersLikeAWrongPassword(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env["LATCHKEY_LOG_LEVEL"] = "info" // the real reason is logged at Info
		f := newThrottleFixture(t, env, 1)
		env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
		env.cli(t, "users", "disable", "--pool", "customers", "--email", "bob@example.com")
		env.cli(t, "users", "disable", "--email", adaEmail)

		right, rightHdr, rightBody := apiCall(t, "POST", f.api(0)+"/login", f.creds("bob@example.com", bobPassword), nil)
		wrong, wrongHdr, wrongBody := apiCall(t, "POST", f.api(0)+"/login", f.creds("bob@example.com", "not-the-password"), nil)
		if right != http.StatusUnauthorized || right != wrong || fmt.Sprint(rightBody) != fmt.Sprint(wrongBody) ||
			rightHdr.Get("Content-Type") != wrongHdr.Get("Content-Type") {
			t.Errorf("API: right password %d %v, wrong password %d %v; want the same 401", right, rightBody, wrong, wrongBody)
		}
		if rightBody["error"] != "invalid_grant" {
			t.Errorf("API: disabled account answer %v, want invalid_grant", rightBody)
		}

		b := newBrowser(t, spaCallback)
		form := func(password string) page {
			return b.submit(b.get(f.nodes[0].URL+"/login"), map[string]string{"email": adaEmail, "password": password})
		}
		r, w := form(adaPassword), form("not the password")
		if r.status != http.StatusUnauthorized || r.status != w.status || alertText(r.body) != alertText(w.body) {
			t.Errorf("sign-in form: right password %d %q, wrong password %d %q; want the same 401",
				r.status, alertText(r.body), w.status, alertText(w.body))
		}
		if strings.Contains(strings.ToLower(r.body), "disabled") {
			t.Error("the sign-in form says the account is disabled")
		}
		if !strings.Contains(f.logs.String(), "account disabled") {
			t.Error("the real reason is not logged")
		}
	})
}

func alertText(body string) string {
	_, rest, ok := strings.Cut(body, `role="alert">`)
	if !ok {
		return ""
	}
	msg, _, _ := strings.Cut(rest, "<")
	return msg
}

// When the throttle cannot be consulted nobody's password is checked: 503 with Retry-After, logged at ERROR.
func TestThrottleStoreFailureIs503(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newThrottleFixture(t, env, 1)
		env.cli(t, "users", "create", "--email", adaEmail, "--password", adaPassword)
		b := newBrowser(t, spaCallback)
		loginPage := b.get(f.nodes[0].URL + "/login")

		execSQL(t, env, "DROP TABLE login_throttle")

		code, hdr, body := apiCall(t, "POST", f.api(0)+"/login", f.creds("bob@example.com", bobPassword), nil)
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || body["error"] != "temporarily_unavailable" {
			t.Errorf("API login without a throttle: %d Retry-After=%q error=%v, want 503 temporarily_unavailable", code, hdr.Get("Retry-After"), body["error"])
		}
		code, _, body = apiCall(t, "POST", f.api(0)+"/signup", f.creds("new@example.com", bobPassword), nil)
		if code != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
			t.Errorf("API sign-up without a throttle: %d error=%v, want 503", code, body["error"])
		}
		p := b.submit(loginPage, map[string]string{"email": adaEmail, "password": adaPassword})
		if p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "temporarily unavailable") {
			t.Errorf("sign-in form without a throttle: %d %q, want 503", p.status, alertText(p.body))
		}
		if out := env.cli(t, "users", "list", "--pool", "customers", "--json"); strings.Contains(out, "new@example.com") {
			t.Error("a sign-up went through without the throttle")
		}
		logs := f.logs.String()
		if !strings.Contains(logs, "sign-in throttle unavailable") || !strings.Contains(logs, `"level":"ERROR"`) {
			t.Errorf("the failure is not logged at ERROR:\n%s", logs)
		}
	})
}
