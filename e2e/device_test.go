package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

const deviceGrant = "urn:ietf:params:oauth:grant-type:device_code"

// deviceFixture is a running server (polls paced at 1s) with ada, the SPA and a public TV client.
type deviceFixture struct {
	*edge
	client string
}

func newDeviceFixture(t *testing.T, env testEnv) *deviceFixture {
	t.Helper()
	env["LATCHKEY_DEVICE_POLL_INTERVAL"] = "1s"
	e := newEdge(t, env)
	env.cli(t, "clients", "create", "--id", "tv", "--name", "Living Room TV", "--public",
		"--grant-types", deviceGrant+",refresh_token", "--scopes", "openid profile offline_access")
	return &deviceFixture{edge: e, client: "tv"}
}

// start asks for a device authorization as the TV.
func (f *deviceFixture) start(t *testing.T, scope string) map[string]any {
	t.Helper()
	code, _, body := postForm(t, f.srv.URL+"/oauth2/device_authorization", url.Values{"client_id": {f.client}, "scope": {scope}}, "", "")
	if code != http.StatusOK || body["device_code"] == nil || body["user_code"] == nil {
		t.Fatalf("device authorization: %d %v", code, body)
	}
	return body
}

// poll is one poll of the token endpoint by the TV.
func (f *deviceFixture) poll(t *testing.T, deviceCode string) (int, map[string]any) {
	t.Helper()
	code, _, body := postForm(t, f.srv.URL+"/oauth2/token", url.Values{"grant_type": {deviceGrant}, "device_code": {deviceCode}, "client_id": {f.client}}, "", "")
	return code, body
}

// decide drives the pages as a person: opens verification_uri_complete, continues, signs in as ada when asked,
// continues again and presses decision (allow or deny). It returns the last page.
func (f *deviceFixture) decide(t *testing.T, b *browserClient, da map[string]any, decision string) page {
	t.Helper()
	userCode := da["user_code"].(string)
	p := b.get(da["verification_uri_complete"].(string))
	if !strings.Contains(p.body, `value="`+userCode+`"`) {
		t.Fatalf("verification_uri_complete does not prefill %s:\n%s", userCode, p.body)
	}
	p = b.submit(p, map[string]string{"user_code": userCode}, "decision", "lookup")
	if strings.Contains(p.body, `name="password"`) {
		p = b.submit(p, map[string]string{"email": adaEmail, "password": adaPassword})
		p = b.submit(p, map[string]string{"user_code": userCode}, "decision", "lookup")
	}
	if !strings.Contains(p.body, "Living Room TV") || !strings.Contains(p.body, `<code class="scope-name">openid</code>`) {
		t.Fatalf("confirm page does not name the client and scopes (%d):\n%s", p.status, p.body)
	}
	return b.submit(p, nil, "decision", decision)
}

func errorOf(body map[string]any) string { s, _ := body["error"].(string); return s }

func TestDeviceAuthorizationGrant(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newDeviceFixture(t, env)
		ctx := context.Background()

		t.Run("approve while polling", func(t *testing.T) {
			da := f.start(t, "openid profile offline_access")
			if da["verification_uri"] != f.srv.URL+"/device" || da["interval"] != float64(1) || da["expires_in"] != float64(600) {
				t.Fatalf("device authorization response = %v", da)
			}
			if uc := da["user_code"].(string); len(uc) != 9 || uc[4] != '-' || strings.ContainsAny(uc, "AEIOU0123456789") {
				t.Fatalf("user code %q is not XXXX-XXXX from the unambiguous alphabet", uc)
			}
			type result struct {
				pending int
				body    map[string]any
			}
			done := make(chan result, 1)
			go func() { // the TV polls at its interval while the person approves
				var r result
				for range 30 {
					code, body := f.poll(t, da["device_code"].(string))
					if code == http.StatusOK || errorOf(body) != "authorization_pending" {
						r.body = body
						break
					}
					r.pending++
					time.Sleep(1100 * time.Millisecond)
				}
				done <- r
			}()
			p := f.decide(t, newBrowser(t, "none:"), da, "allow")
			if p.status != http.StatusOK || !strings.Contains(p.body, "Device connected") {
				t.Fatalf("after allow (%d):\n%s", p.status, p.body)
			}
			r := <-done
			if r.pending == 0 || r.body["access_token"] == nil || r.body["refresh_token"] == nil {
				t.Fatalf("poller: %d pending answers, then %v", r.pending, r.body)
			}
			idt, err := f.provider.Verifier(&oidc.Config{ClientID: "tv"}).Verify(ctx, r.body["id_token"].(string))
			if err != nil {
				t.Fatalf("ID token: %v", err)
			}
			var claims map[string]any
			_ = idt.Claims(&claims)
			if claims["sid"] == nil || claims["sid"] == "" || claims["name"] != "Ada Lovelace" {
				t.Errorf("ID token claims = %v, want sid and name", claims)
			}
			code, body := f.poll(t, da["device_code"].(string))
			if code != http.StatusBadRequest || errorOf(body) != "invalid_grant" {
				t.Errorf("a redeemed device code polled again: %d %v, want invalid_grant", code, body)
			}
			// Ordinary tokens: introspectable, refreshable by the TV, revocable.
			apiID, apiSecret := f.createIntrospector(t)
			code, _, intro := postForm(t, f.srv.URL+"/oauth2/introspect", url.Values{"token": {r.body["access_token"].(string)}}, apiID, apiSecret)
			if code != http.StatusOK || intro["active"] != true || intro["client_id"] != "tv" {
				t.Errorf("introspection: %d %v", code, intro)
			}
			code, _, ref := postForm(t, f.srv.URL+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.body["refresh_token"].(string)}, "client_id": {"tv"}}, "", "")
			if code != http.StatusOK || ref["access_token"] == nil {
				t.Errorf("refresh: %d %v", code, ref)
			}
		})

		t.Run("deny", func(t *testing.T) {
			da := f.start(t, "openid")
			if code, body := f.poll(t, da["device_code"].(string)); errorOf(body) != "authorization_pending" || code != http.StatusBadRequest {
				t.Fatalf("first poll: %d %v", code, body)
			}
			p := f.decide(t, newBrowser(t, "none:"), da, "deny")
			if !strings.Contains(p.body, "Request denied") {
				t.Fatalf("after deny:\n%s", p.body)
			}
			time.Sleep(1100 * time.Millisecond)
			if code, body := f.poll(t, da["device_code"].(string)); code != http.StatusBadRequest || errorOf(body) != "access_denied" {
				t.Errorf("denied: %d %v, want access_denied", code, body)
			}
		})

		t.Run("slow_down", func(t *testing.T) {
			da := f.start(t, "openid")
			dc := da["device_code"].(string)
			f.poll(t, dc)
			code, body := f.poll(t, dc)
			if code != http.StatusBadRequest || errorOf(body) != "slow_down" {
				t.Fatalf("second poll at once: %d %v, want slow_down", code, body)
			}
			// The interval grew by 5s: a poll 1.1s later is still too soon.
			time.Sleep(1100 * time.Millisecond)
			if _, body := f.poll(t, dc); errorOf(body) != "slow_down" {
				t.Errorf("poll after the old interval: %v, want slow_down (interval raised)", body)
			}
			db, q := rawDB(t, env)
			var interval int
			if err := db.QueryRow(q("SELECT interval_seconds FROM device_authorizations WHERE client_id = ? ORDER BY created_at DESC LIMIT 1"), "tv").Scan(&interval); err != nil || interval != 11 {
				t.Errorf("interval_seconds = %d (%v), want 11 after two slow_downs", interval, err)
			}
		})

		t.Run("expired", func(t *testing.T) {
			da := f.start(t, "openid")
			execSQL(t, env, "UPDATE device_authorizations SET expires_at = ? WHERE status = 'pending'", time.Now().Add(-time.Second).UTC())
			if code, body := f.poll(t, da["device_code"].(string)); code != http.StatusBadRequest || errorOf(body) != "expired_token" {
				t.Errorf("expired: %d %v, want expired_token", code, body)
			}
			b := newBrowser(t, "none:")
			p := b.get(f.srv.URL + "/device")
			p = b.submit(p, map[string]string{"user_code": da["user_code"].(string)}, "decision", "lookup")
			if p.status != http.StatusBadRequest || !strings.Contains(p.body, "not valid or has expired") {
				t.Errorf("expired code on the page: %d\n%s", p.status, p.body)
			}
		})

		t.Run("single use under 40 parallel polls", func(t *testing.T) {
			da := f.start(t, "openid offline_access")
			f.decide(t, newBrowser(t, "none:"), da, "allow")
			var mu sync.Mutex
			answers := map[string]int{}
			var wg sync.WaitGroup
			for range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, body := f.poll(t, da["device_code"].(string))
					key := errorOf(body)
					if code == http.StatusOK {
						key = "tokens"
					}
					mu.Lock()
					answers[key]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			if answers["tokens"] != 1 || answers["invalid_grant"] != 39 {
				t.Errorf("40 parallel polls of an approved code: %v, want 1 tokens and 39 invalid_grant", answers)
			}
		})

		t.Run("approve needs the CSRF token", func(t *testing.T) {
			da := f.start(t, "openid")
			b := newBrowser(t, "none:")
			resp, body := fetch(t, b.c, http.MethodPost, f.srv.URL+"/device", url.Values{"user_code": {da["user_code"].(string)}, "decision": {"allow"}})
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("allow without csrf_token: %d\n%s", resp.StatusCode, body)
			}
			if _, pb := f.poll(t, da["device_code"].(string)); errorOf(pb) != "authorization_pending" {
				t.Errorf("after a forged allow the poll says %v, want authorization_pending", pb)
			}
		})

		t.Run("entry is case-insensitive and ignores dashes and spaces", func(t *testing.T) {
			da := f.start(t, "openid")
			b := newBrowser(t, "none:")
			typed := strings.ToLower(strings.ReplaceAll(da["user_code"].(string), "-", " "))
			p := b.get(f.srv.URL + "/device")
			p = b.submit(p, map[string]string{"user_code": typed}, "decision", "lookup")
			if !strings.Contains(p.body, `name="password"`) {
				t.Fatalf("typed %q: not sent to sign in (%d):\n%s", typed, p.status, p.body)
			}
		})

		t.Run("client rules", func(t *testing.T) {
			conf := f.env.createClient(t, "--name", "Console", "--grant-types", deviceGrant, "--scopes", "openid")
			form := url.Values{"scope": {"openid"}}
			if code, _, body := postForm(t, f.srv.URL+"/oauth2/device_authorization", form, conf.ClientID, conf.ClientSecret); code != http.StatusOK || body["device_code"] == nil {
				t.Errorf("confidential client: %d %v", code, body)
			}
			if code, _, body := postForm(t, f.srv.URL+"/oauth2/device_authorization", form, conf.ClientID, "wrong"); code != http.StatusUnauthorized || errorOf(body) != "invalid_client" {
				t.Errorf("wrong secret: %d %v", code, body)
			}
			if code, _, body := postForm(t, f.srv.URL+"/oauth2/device_authorization", url.Values{"client_id": {"spa"}}, "", ""); code != http.StatusBadRequest || errorOf(body) != "unauthorized_client" {
				t.Errorf("client without the grant: %d %v", code, body)
			}
			if code, _, body := postForm(t, f.srv.URL+"/oauth2/device_authorization", url.Values{"client_id": {"tv"}, "scope": {"roles"}}, "", ""); code != http.StatusBadRequest || errorOf(body) != "invalid_scope" {
				t.Errorf("scope beyond the client's: %d %v", code, body)
			}
			if code, body := f.poll(t, "not-a-device-code"); code != http.StatusBadRequest || errorOf(body) != "invalid_grant" {
				t.Errorf("unknown device code: %d %v", code, body)
			}
		})

		// Last: it spends this address's free guesses.
		t.Run("wrong user codes are throttled", func(t *testing.T) {
			b := newBrowser(t, "none:")
			p := b.get(f.srv.URL + "/device")
			var statuses []int
			for _, typed := range []string{"BBBB-BBBB", "not a code", "CCCC-CCCC", "DDDD-DDDD", "FFFF-FFFF", "GGGG-GGGG", "HHHH-HHHH"} {
				p = b.submit(p, map[string]string{"user_code": typed}, "decision", "lookup")
				statuses = append(statuses, p.status)
				if p.status == http.StatusBadRequest && !strings.Contains(p.body, "not valid or has expired") {
					t.Errorf("wrong code %q: the page does not say so:\n%s", typed, p.body)
				}
			}
			if statuses[0] != http.StatusBadRequest || statuses[len(statuses)-1] != http.StatusTooManyRequests {
				t.Errorf("statuses of 7 wrong codes = %v, want 400s then 429", statuses)
			}
		})
	})
}

// createIntrospector is a confidential client for the introspection endpoint, as Basic credentials.
func (f *deviceFixture) createIntrospector(t *testing.T) (string, string) {
	c := f.env.createClient(t, "--name", "api", "--grant-types", "client_credentials", "--scopes", "read")
	return c.ClientID, c.ClientSecret
}
