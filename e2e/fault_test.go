package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The fault test: three Latchkey processes on a private PostgreSQL under mixed load, while the database is
// restarted and SIGKILLed, a node is SIGKILLed and the signing key rotates. A ledger of what was issued and
// revoked checks afterwards that faults never became wrong answers: nothing issued is lost, nothing revoked is
// accepted, valid credentials never get a 4xx, there is no 5xx outside an outage (and inside one only 503 with
// Retry-After), service comes back within seconds, and every JWT verifies against every node's JWKS.

const (
	faultSecret = "fault-test-system-secret-0123456789-abcdef"
	faultUsers  = 3
	// outageGrace is how long after the database is back a 503 is still an outage answer: pools notice the
	// restart on their next use.
	outageGrace = 5 * time.Second
	// recoveryLimit is how soon after the database is back every node must issue tokens again.
	recoveryLimit = 5 * time.Second
)

type faultNode struct {
	name     string
	url      string
	settings map[string]string
	bin      string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *lockedBuffer
	// up is false while the node is down; killedAt is when it was last killed. Requests overlapping a kill may
	// fail at the connection.
	up        atomic.Bool
	killedAt  atomic.Int64
	restarted atomic.Int64
}

func (n *faultNode) start(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	cmd := exec.Command(n.bin, "serve")
	cmd.Env = processEnv(n.settings)
	cmd.Stdout, cmd.Stderr = n.logs, n.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start: %v", n.name, err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(n.exited)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(n.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-n.exited:
			t.Fatalf("%s exited before it was ready:\n%s", n.name, n.logs.String())
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30s:\n%s", n.name, n.logs.String())
		}
	}
	n.restarted.Store(time.Now().UnixNano())
	n.up.Store(true)
}

func (n *faultNode) signal(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	if sig == syscall.SIGKILL {
		n.up.Store(false)
		n.killedAt.Store(time.Now().UnixNano())
	}
	_ = n.cmd.Process.Signal(sig)
	<-n.exited
	n.cmd = nil
}

type window struct{ from, to time.Time }

// faultLedger is what the load saw: tokens issued and revoked, outage windows and every violation.
type faultLedger struct {
	mu         sync.Mutex
	issued     []string             // opaque access tokens issued to the service client
	revoked    map[string]time.Time // token → when its revocation was confirmed
	revoking   map[string]bool      // revocation sent, outcome unknown or not yet confirmed
	outages    []window             // database outages; to is zero while one lasts
	violations []string
	counts     map[string]int
}

func newFaultLedger() *faultLedger {
	return &faultLedger{revoked: map[string]time.Time{}, revoking: map[string]bool{}, counts: map[string]int{}}
}

func (l *faultLedger) violate(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.violations) < 200 {
		l.violations = append(l.violations, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
	}
	l.counts["violations"]++
}

func (l *faultLedger) count(what string) {
	l.mu.Lock()
	l.counts[what]++
	l.mu.Unlock()
}

func (l *faultLedger) outageStart() {
	l.mu.Lock()
	l.outages = append(l.outages, window{from: time.Now()})
	l.mu.Unlock()
}

func (l *faultLedger) outageEnd() {
	l.mu.Lock()
	l.outages[len(l.outages)-1].to = time.Now()
	l.mu.Unlock()
}

// inOutage reports whether a request sent at from and answered at to overlapped a database outage (with grace).
func (l *faultLedger) inOutage(from, to time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.outages {
		end := w.to
		if end.IsZero() {
			return to.After(w.from)
		}
		if to.After(w.from) && from.Before(end.Add(outageGrace)) {
			return true
		}
	}
	return false
}

// faultCall is one request's outcome.
type faultCall struct {
	status   int
	header   http.Header
	body     map[string]any
	raw      []byte
	err      error // transport error: no answer
	from, to time.Time
}

var faultHTTP = &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func faultDo(req *http.Request) faultCall {
	c := faultCall{from: time.Now()}
	resp, err := faultHTTP.Do(req)
	c.to = time.Now()
	if err != nil {
		c.err = err
		return c
	}
	defer resp.Body.Close()
	c.status, c.header = resp.StatusCode, resp.Header
	c.raw, _ = io.ReadAll(resp.Body)
	_ = json.Unmarshal(c.raw, &c.body)
	return c
}

func faultForm(u string, form url.Values, user, pass string) faultCall {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	return faultDo(req)
}

func faultJSON(method, u string, body any, bearer string) faultCall {
	var rdr io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rdr = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, u, rdr)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return faultDo(req)
}

// judge checks an answer to a request made with valid credentials and reports whether it succeeded with want.
// A transport error is excused only when the node was killed during the request; a 5xx only inside an outage,
// and then only as 503 with Retry-After; a 4xx never.
func (l *faultLedger) judge(what string, n *faultNode, c faultCall, want int) bool {
	switch {
	case c.err != nil:
		killed := time.Unix(0, n.killedAt.Load())
		if !n.up.Load() || (!killed.Before(c.from.Add(-time.Second)) && !killed.After(c.to)) {
			l.count("connection errors at a killed node")
			return false
		}
		l.violate("%s at %s: no answer from a live node: %v", what, n.name, c.err)
		return false
	case c.status == want:
		l.count(what + " ok")
		return true
	case c.status >= 500:
		if !l.inOutage(c.from, c.to) {
			l.violate("%s at %s: %d outside an outage: %s", what, n.name, c.status, c.raw)
			return false
		}
		if c.status != http.StatusServiceUnavailable || c.header.Get("Retry-After") == "" {
			l.violate("%s at %s: %d (Retry-After %q) during an outage, want 503 with Retry-After: %s",
				what, n.name, c.status, c.header.Get("Retry-After"), c.raw)
			return false
		}
		l.count(what + " 503")
		return false
	default:
		outage := ""
		if l.inOutage(c.from, c.to) {
			outage = " during an outage"
		}
		l.violate("%s at %s: %d%s for valid credentials: %s", what, n.name, c.status, outage, c.raw)
		return false
	}
}

func TestFaultsNeverBecomeWrongAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the fault test")
	}
	pg := startPrivatePostgres(t)
	pg.createDatabase("latchkey")
	bin := buildBinary(t)
	base := map[string]string{
		"LATCHKEY_DATABASE_URL":     pg.URL("latchkey"),
		"LATCHKEY_SECRET":           faultSecret,
		"LATCHKEY_LOG_LEVEL":        "warn",
		"LATCHKEY_LOG_FORMAT":       "json",
		"LATCHKEY_CLEANUP_INTERVAL": "0",
		"LATCHKEY_JWKS_MAX_AGE":     "1s",
		// The slowest node's reload interval: keys rotate (run with these settings) schedules from it.
		"LATCHKEY_KEY_RELOAD_INTERVAL": "2300ms",
		"LATCHKEY_DB_MAX_CONNS":        "10",
	}
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = processEnv(base)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("latchkey %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String()
	}
	cli("migrate")
	service := decodeJSON[createdClient](t, cli("clients", "create", "--json", "--name", "billing", "--grant-types", "client_credentials", "--scopes", "read"))
	jwtService := decodeJSON[createdClient](t, cli("clients", "create", "--json", "--name", "jwt-billing", "--grant-types", "client_credentials",
		"--scopes", "read", "--access-token-format", "jwt"))
	rs := decodeJSON[createdClient](t, cli("clients", "create", "--json", "--name", "orders-api"))
	cli("pools", "create", "customers")
	app := decodeJSON[createdClient](t, cli("clients", "create", "--json", "--name", "web", "--first-party", "--pool", "customers",
		"--scopes", "openid profile email roles offline_access"))
	for i := range faultUsers {
		cmd := exec.Command(bin, "users", "create", "--pool", "customers", "--email", fmt.Sprintf("user%d@example.com", i), "--password-stdin")
		cmd.Env = processEnv(base)
		cmd.Stdin = strings.NewReader("fault-test-password-" + fmt.Sprint(i) + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("users create: %v\n%s", err, out)
		}
	}

	// Three nodes with reload timers out of step.
	var nodes []*faultNode
	for i, reload := range []string{"1s", "1700ms", "2300ms"} {
		addr := freePort(t)
		settings := map[string]string{"LATCHKEY_ADDR": addr, "LATCHKEY_ISSUER": "http://127.0.0.1:8080",
			"LATCHKEY_KEY_RELOAD_INTERVAL": reload}
		for k, v := range base {
			settings[k] = v
		}
		n := &faultNode{name: fmt.Sprintf("node%d", i+1), url: "http://" + addr, settings: settings, bin: bin, logs: &lockedBuffer{}}
		nodes = append(nodes, n)
		n.start(t)
		t.Cleanup(func() { n.signal(syscall.SIGKILL) })
	}
	pick := func() *faultNode { return nodes[rand.IntN(len(nodes))] }
	pickUp := func() *faultNode {
		for range 20 {
			if n := pick(); n.up.Load() {
				return n
			}
		}
		return nodes[0]
	}

	led := newFaultLedger()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	worker := func(fn func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				fn()
				time.Sleep(time.Duration(5+rand.IntN(10)) * time.Millisecond)
			}
		}()
	}

	// Service tokens: issued, introspected, revoked.
	for range 2 {
		worker(func() {
			n := pickUp()
			c := faultForm(n.url+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, service.ClientID, service.ClientSecret)
			if led.judge("client_credentials", n, c, http.StatusOK) {
				tok, _ := c.body["access_token"].(string)
				led.mu.Lock()
				led.issued = append(led.issued, tok)
				led.mu.Unlock()
			}
		})
	}
	introspect := func(n *faultNode, tok string) faultCall {
		return faultForm(n.url+"/oauth2/introspect", url.Values{"token": {tok}}, rs.ClientID, rs.ClientSecret)
	}
	worker(func() {
		led.mu.Lock()
		if len(led.issued) == 0 {
			led.mu.Unlock()
			return
		}
		tok := led.issued[rand.IntN(len(led.issued))]
		_, revoked := led.revoked[tok]
		uncertain := led.revoking[tok]
		led.mu.Unlock()
		n := pickUp()
		c := introspect(n, tok)
		if !led.judge("introspection", n, c, http.StatusOK) {
			return
		}
		active := c.body["active"] == true
		switch {
		case revoked && active:
			led.violate("introspection at %s: a revoked token is active", n.name)
		case !revoked && !uncertain && !active:
			// Revocation may have been confirmed while this request ran.
			led.mu.Lock()
			_, revokedNow := led.revoked[tok]
			uncertainNow := led.revoking[tok]
			led.mu.Unlock()
			if !revokedNow && !uncertainNow {
				led.violate("introspection at %s: an issued token answered active:false: %s", n.name, c.raw)
			}
		}
	})
	worker(func() {
		time.Sleep(50 * time.Millisecond)
		led.mu.Lock()
		if len(led.issued) < 10 {
			led.mu.Unlock()
			return
		}
		tok := led.issued[rand.IntN(len(led.issued))]
		led.revoking[tok] = true
		led.mu.Unlock()
		n := pickUp()
		c := faultForm(n.url+"/oauth2/revoke", url.Values{"token": {tok}}, service.ClientID, service.ClientSecret)
		if led.judge("revocation", n, c, http.StatusOK) {
			led.mu.Lock()
			led.revoked[tok] = time.Now()
			delete(led.revoking, tok)
			led.mu.Unlock()
		}
	})

	// JWT access tokens verified against another random node's JWKS, at every moment of the rotation.
	worker(func() {
		n := pickUp()
		c := faultForm(n.url+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, jwtService.ClientID, jwtService.ClientSecret)
		if !led.judge("jwt issue", n, c, http.StatusOK) {
			return
		}
		tok, _ := c.body["access_token"].(string)
		m := pickUp()
		jc := faultDo(mustRequest(http.MethodGet, m.url+"/.well-known/jwks.json"))
		if jc.err != nil || jc.status != http.StatusOK {
			led.judge("jwks", m, jc, http.StatusOK)
			return
		}
		if err := verifyAgainst(jc.raw, tok); err != nil {
			led.violate("a JWT from %s does not verify against %s's JWKS: %v", n.name, m.name, err)
			return
		}
		led.count("jwt verified")
		// And another node calls it active, even one that has not reloaded the key that signed it.
		o := pickUp()
		if ic := introspect(o, tok); led.judge("jwt introspection", o, ic, http.StatusOK) && ic.body["active"] != true {
			led.violate("introspection at %s: a JWT from %s answered active:false: %s", o.name, n.name, ic.raw)
		}
	})

	// Users: sign in through the token API, refresh chains, /me, logout.
	api := func(n *faultNode) string { return n.url + "/api/v1/auth" }
	for i := range faultUsers {
		email, password := fmt.Sprintf("user%d@example.com", i), "fault-test-password-"+fmt.Sprint(i)
		var access, refresh, idToken string
		worker(func() {
			if refresh == "" {
				n := pickUp()
				c := faultJSON(http.MethodPost, api(n)+"/login", map[string]any{"client_id": app.ClientID, "email": email, "password": password}, "")
				if led.judge("login", n, c, http.StatusOK) {
					access, _ = c.body["access_token"].(string)
					refresh, _ = c.body["refresh_token"].(string)
					idToken, _ = c.body["id_token"].(string)
				}
				return
			}
			n := pickUp()
			switch r := rand.IntN(20); {
			case r < 2 && idToken != "":
				// RP-initiated logout naming the session by its ID token; this client has no browser session
				// there, so it only checks the hint and answers the signed-out page.
				c := faultDo(mustRequest(http.MethodGet, n.url+"/oauth2/logout?id_token_hint="+url.QueryEscape(idToken)))
				led.judge("rp logout", n, c, http.StatusOK)
			case r < 12:
				c := faultJSON(http.MethodGet, api(n)+"/me", nil, access)
				led.judge("me", n, c, http.StatusOK)
			case r < 19:
				c := faultJSON(http.MethodPost, api(n)+"/refresh", map[string]any{"refresh_token": refresh}, "")
				switch {
				case led.judge("refresh", n, c, http.StatusOK):
					access, _ = c.body["access_token"].(string)
					refresh, _ = c.body["refresh_token"].(string)
				case c.err != nil:
					// Whether the killed node spent the token is unknown: start a new chain.
					refresh = ""
				}
				// On a 503 nothing was spent: the chain goes on with the same refresh token.
			default:
				c := faultJSON(http.MethodPost, api(n)+"/logout", nil, access)
				if led.judge("logout", n, c, http.StatusNoContent) {
					refresh = ""
				} else if c.err != nil {
					refresh = ""
				}
			}
		})
	}

	// Faults, on a schedule.
	recovered := func(what string) {
		t.Helper()
		started := time.Now()
		for _, n := range nodes {
			for {
				c := faultForm(n.url+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, service.ClientID, service.ClientSecret)
				if c.err == nil && c.status == http.StatusOK {
					break
				}
				if time.Since(started) > recoveryLimit {
					led.violate("%s: %s did not issue tokens within %s of the database coming back (last: %v %d %s)", what, n.name, recoveryLimit, c.err, c.status, c.raw)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		t.Logf("%s: every node issues tokens %s after the database came back", what, time.Since(started).Round(time.Millisecond))
	}
	step := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-stop:
		}
	}
	begin := time.Now()
	step(4 * time.Second)
	t.Logf("%5.1fs PostgreSQL fast restart", time.Since(begin).Seconds())
	led.outageStart()
	pg.restart()
	led.outageEnd()
	recovered("restart")

	step(4 * time.Second)
	t.Logf("%5.1fs keys rotate", time.Since(begin).Seconds())
	t.Logf("%s", strings.TrimSpace(cli("keys", "rotate")))

	step(6 * time.Second)
	t.Logf("%5.1fs PostgreSQL SIGKILL for 10s", time.Since(begin).Seconds())
	led.outageStart()
	pg.kill()
	step(10 * time.Second)
	pg.start()
	led.outageEnd()
	recovered("kill")

	step(3 * time.Second)
	victim := nodes[1]
	t.Logf("%5.1fs %s SIGKILL", time.Since(begin).Seconds(), victim.name)
	victim.signal(syscall.SIGKILL)
	step(3 * time.Second)
	victim.start(t)
	t.Logf("%5.1fs %s back", time.Since(begin).Seconds(), victim.name)

	step(6 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%5.1fs load stopped", time.Since(begin).Seconds())

	// The ledger: every issued token not revoked is active on every node; every revoked one is inactive.
	led.mu.Lock()
	issued, revoked, uncertain := append([]string(nil), led.issued...), led.revoked, led.revoking
	led.mu.Unlock()
	lost, accepted := 0, 0
	for _, tok := range issued {
		if uncertain[tok] {
			continue
		}
		_, isRevoked := revoked[tok]
		for _, n := range nodes {
			c := introspect(n, tok)
			if c.err != nil || c.status != http.StatusOK {
				t.Errorf("final introspection at %s: %v %d %s", n.name, c.err, c.status, c.raw)
				continue
			}
			active := c.body["active"] == true
			if isRevoked && active {
				accepted++
			}
			if !isRevoked && !active {
				lost++
			}
		}
	}
	t.Logf("ledger: %d tokens issued, %d revoked; %v", len(issued), len(revoked), led.counts)
	if lost > 0 {
		t.Errorf("%d issued tokens (× nodes) were lost", lost)
	}
	if accepted > 0 {
		t.Errorf("%d revoked tokens (× nodes) were accepted", accepted)
	}
	if len(issued) < 100 {
		t.Errorf("only %d tokens issued: the load did not run", len(issued))
	}
	for _, v := range led.violations {
		t.Error(v)
	}
	if t.Failed() {
		for _, n := range nodes {
			t.Logf("%s log (tail):\n%s", n.name, tail(n.logs.String(), 3000))
		}
	}
}

func mustRequest(method, u string) *http.Request {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		panic(err)
	}
	return req
}

// verifyAgainst verifies a JWT's signature with the key its kid names in the JWKS document raw.
func verifyAgainst(raw []byte, token string) error {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	kid := jws.Signatures[0].Protected.KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		return fmt.Errorf("kid %q is not in the JWKS", kid)
	}
	if _, err := jws.Verify(keys[0]); err != nil {
		return err
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
