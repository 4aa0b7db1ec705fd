package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
)

func TestPushedAuthorizationRequest(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		cl := env.createClient(t, "--name", "Web App", "--grant-types", "authorization_code",
			"--redirect-uris", spaCallback, "--scopes", "openid")
		parURL := e.srv.URL + "/oauth2/par"
		verifier, state, nonce := oauth2.GenerateVerifier(), randomString(t), randomString(t)
		params := url.Values{
			"response_type": {"code"}, "client_id": {cl.ClientID}, "redirect_uri": {spaCallback}, "scope": {"openid"},
			"state": {state}, "nonce": {nonce}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
			"code_challenge_method": {"S256"},
		}

		if code, _, body := postForm(t, parURL, params, "", ""); code != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("PAR without client authentication: %d %v, want 401 invalid_client", code, body)
		}
		code, _, body := postForm(t, parURL, params, cl.ClientID, cl.ClientSecret)
		requestURI, _ := body["request_uri"].(string)
		if code != http.StatusCreated || !strings.HasPrefix(requestURI, "urn:ietf:params:oauth:request_uri:") || body["expires_in"] == nil {
			t.Fatalf("PAR: %d %v, want 201 with a request_uri", code, body)
		}

		b := newBrowser(t, spaCallback)
		authorize := e.srv.URL + "/oauth2/auth?" + url.Values{"client_id": {cl.ClientID}, "request_uri": {requestURI}}.Encode()
		w := e.walk(b, authorize)
		if !w.sawLogin || !w.sawConsent {
			t.Errorf("asked to sign in %v, for consent %v; want both", w.sawLogin, w.sawConsent)
		}
		q := callback(t, w.page)
		if q.Get("state") != state || q.Get("code") == "" {
			t.Fatalf("callback query = %v", q)
		}
		code, _, tok := postForm(t, e.srv.URL+"/oauth2/token", url.Values{"grant_type": {"authorization_code"},
			"code": {q.Get("code")}, "redirect_uri": {spaCallback}, "code_verifier": {verifier}}, cl.ClientID, cl.ClientSecret)
		if code != http.StatusOK || tok["access_token"] == nil {
			t.Fatalf("exchange: %d %v", code, tok)
		}
		raw, _ := tok["id_token"].(string)
		idt, err := e.provider.Verifier(&oidc.Config{ClientID: cl.ClientID}).Verify(context.Background(), raw)
		if err != nil {
			t.Fatalf("ID token: %v", err)
		}
		if idt.Nonce != nonce {
			t.Errorf("nonce = %q, want %q", idt.Nonce, nonce)
		}

		// A request_uri is good for one authorization request.
		resp, page := fetch(t, noRedirects(b), http.MethodGet, authorize, nil)
		if loc := resp.Header.Get("Location"); strings.Contains(loc, "code=") {
			t.Errorf("a used request_uri issued another code: %s", loc)
		}
		if resp.StatusCode != http.StatusBadRequest && !strings.Contains(resp.Header.Get("Location"), "error=") {
			t.Errorf("used request_uri: %d Location=%q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
		}
	})
}

// Pushed authorization requests cannot fill the database: every push stores a row, and a public client pushes
// with nothing but its client_id, so pushes are bounded in size like authorization requests, and public
// clients' pushes are rate-limited per client IP. The throttle's clock is frozen, so no block passes during a
// burst however slow the machine.

// parFixture: a server on a frozen throttle clock, a public SPA and a confidential web app, both allowed PAR.
type parFixture struct {
	env          testEnv
	srv          *server
	clock        *testClock
	logs         *lockedBuffer
	public, conf createdClient
}

func newPARFixture(t *testing.T, env testEnv) *parFixture {
	t.Helper()
	f := &parFixture{env: env, clock: &testClock{now: time.Now()}, logs: &lockedBuffer{}}
	f.public = env.createClient(t, "--name", "SPA", "--public", "--redirect-uris", spaCallback, "--scopes", "openid")
	f.conf = env.createClient(t, "--name", "Web App", "--grant-types", "authorization_code",
		"--redirect-uris", spaCallback, "--scopes", "openid")
	f.srv = startServerAt(t, env, f.clock, f.logs)
	return f
}

// params is a valid authorization request of client with this state.
func (f *parFixture) params(client createdClient, state string) url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {client.ClientID}, "redirect_uri": {spaCallback}, "scope": {"openid"},
		"state": {state}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())},
		"code_challenge_method": {"S256"},
	}
}

// push sends a pushed authorization request; the confidential client authenticates with HTTP Basic.
func (f *parFixture) push(client createdClient, form url.Values) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/oauth2/par", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if client.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(client.ClientID), url.QueryEscape(client.ClientSecret))
	}
	return req
}

func TestPushedRequestsOverTheSizeLimitAreRefused(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newPARFixture(t, env)
		for _, c := range []struct {
			name   string
			client createdClient
		}{{"public", f.public}, {"confidential", f.conf}} {
			// A 50 KB state fits in the 64 KiB body limit; it must not fit in a row.
			for _, size := range []int{models.MaxChallengeQuery, 50_000} {
				_, code, body := pushOnce(t, f.push(c.client, f.params(c.client, strings.Repeat("s", size))))
				if code != http.StatusBadRequest || body["error"] != "invalid_request" {
					t.Errorf("%s client, %d-byte state: %d %v, want 400 invalid_request", c.name, size, code, body)
				}
			}
		}
		if n := countRows(t, f.env, "oauth2_par"); n != 0 {
			t.Errorf("%d pushed requests stored, want none", n)
		}

		// Exactly at the limit is accepted, and the authorization endpoint, which parks the same parameters
		// under the same limit, takes it to the sign-in page rather than refusing it as too long.
		form := f.params(f.public, "")
		form.Set("state", strings.Repeat("s", models.MaxChallengeQuery-len(form.Encode())))
		_, code, body := pushOnce(t, f.push(f.public, form))
		requestURI, _ := body["request_uri"].(string)
		if code != http.StatusCreated || requestURI == "" {
			t.Fatalf("push of exactly %d bytes: %d %v, want 201", models.MaxChallengeQuery, code, body)
		}
		status, _, page := get(t, f.srv.URL+"/oauth2/auth?"+url.Values{"client_id": {f.public.ClientID}, "request_uri": {requestURI}}.Encode())
		if status != http.StatusOK || !strings.Contains(string(page), `name="password"`) {
			t.Errorf("authorization request of the pushed parameters: %d, want the sign-in page\n%.400s", status, page)
		}
	})
}

func TestPushesFromPublicClientsAreRateLimitedPerIP(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newPARFixture(t, env)
		free := throttle.DefaultPARPolicy.Free
		client := &http.Client{}

		answers, counts := burst(t, 100, client, func(int) *http.Request {
			return f.push(f.public, f.params(f.public, "state-0123"))
		})
		if counts[http.StatusCreated] != free || counts[http.StatusTooManyRequests] != 100-free {
			t.Fatalf("100 pushes from a public client: answers by status %v, want %d × 201 and %d × 429", counts, free, 100-free)
		}
		for _, a := range answers {
			if a.status == http.StatusTooManyRequests && a.body["error"] != "slow_down" {
				t.Fatalf("429 body %v, want error slow_down", a.body)
			}
		}
		if n := countRows(t, f.env, "oauth2_par"); n != free {
			t.Errorf("%d pushed requests stored, want %d", n, free)
		}

		// Confidential clients authenticate: the address being blocked does not concern them.
		_, counts = burst(t, 40, client, func(int) *http.Request { return f.push(f.conf, f.params(f.conf, "state-0123")) })
		if counts[http.StatusCreated] != 40 {
			t.Errorf("40 pushes from a confidential client on a blocked address: %v, want 40 × 201", counts)
		}

		// Then one a second: once the block has passed, one push of a burst goes through.
		f.clock.Advance(throttle.DefaultPARPolicy.Base + time.Millisecond)
		_, counts = burst(t, 10, client, func(int) *http.Request { return f.push(f.public, f.params(f.public, "state-0123")) })
		if counts[http.StatusCreated] != 1 || counts[http.StatusTooManyRequests] != 9 {
			t.Errorf("10 pushes a second later: %v, want 1 × 201 and 9 × 429", counts)
		}
		// A quiet window starts afresh.
		f.clock.Advance(throttle.DefaultPARPolicy.Window + time.Second)
		if _, code, body := pushOnce(t, f.push(f.public, f.params(f.public, "state-0123"))); code != http.StatusCreated {
			t.Errorf("push after a quiet window: %d %v, want 201", code, body)
		}
		if n := countRows(t, f.env, "oauth2_par"); n != free+40+1+1 {
			t.Errorf("%d pushed requests stored, want %d", n, free+40+1+1)
		}
	})
}

// When the rate limit cannot be consulted, a public client's push is not stored: 503 with Retry-After, logged
// at ERROR. Confidential clients are not rate-limited, so their pushes go on.
func TestPARThrottleFailureIs503(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newPARFixture(t, env)
		execSQL(t, env, "DROP TABLE login_throttle")

		hdr, code, body := pushOnce(t, f.push(f.public, f.params(f.public, "state-0123")))
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || body["error"] != "temporarily_unavailable" {
			t.Errorf("public push without a throttle: %d Retry-After=%q %v, want 503 temporarily_unavailable", code, hdr.Get("Retry-After"), body)
		}
		if n := countRows(t, f.env, "oauth2_par"); n != 0 {
			t.Errorf("%d pushed requests stored without the throttle, want none", n)
		}
		if _, code, body := pushOnce(t, f.push(f.conf, f.params(f.conf, "state-0123"))); code != http.StatusCreated {
			t.Errorf("confidential push: %d %v, want 201", code, body)
		}
		if logs := f.logs.String(); !strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, "login_throttle") {
			t.Errorf("the failure is not logged at ERROR with its cause:\n%s", logs)
		}
	})
}

func pushOnce(t *testing.T, req *http.Request) (http.Header, int, map[string]any) {
	t.Helper()
	code, hdr, body := do(t, req)
	return hdr, code, body
}
