package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// auditEvent is one event as `latchkey audit list --json` and the admin API print it.
type auditEvent struct {
	ID        int64          `json:"id"`
	Type      string         `json:"type"`
	Pool      string         `json:"pool"`
	UserID    string         `json:"user_id"`
	ClientID  string         `json:"client_id"`
	Actor     string         `json:"actor"`
	IP        string         `json:"ip"`
	UserAgent string         `json:"user_agent"`
	RequestID string         `json:"request_id"`
	Reason    string         `json:"reason"`
	Details   map[string]any `json:"details"`
}

// auditList runs `latchkey audit list --json` with args and decodes its answer.
func auditList(t *testing.T, env testEnv, args ...string) []auditEvent {
	t.Helper()
	out := env.cli(t, append([]string{"audit", "list", "--json", "--limit", "1000"}, args...)...)
	var events []auditEvent
	if err := json.Unmarshal([]byte(out), &events); err != nil {
		t.Fatalf("audit list output is not JSON: %v\n%s", err, out)
	}
	return events
}

// auditWant is an event a step must have left: its type, user, client, and what else it must say.
type auditWant struct {
	name      string
	typ       string
	user      string
	client    string
	requestID string // the X-Request-Id of the response; "" for a CLI command
	actor     string
	reason    string
	detail    [2]string // a details key ("a.b" for b in a) and the value it must hold (as JSON); empty: none checked
}

// findAudit is the event of events matching w, or nil.
func findAudit(events []auditEvent, w auditWant) *auditEvent {
	for i, e := range events {
		if e.Type != w.typ || e.UserID != w.user || e.ClientID != w.client || e.Actor != w.actor || e.Reason != w.reason {
			continue
		}
		if w.requestID != "" && e.RequestID != w.requestID {
			continue
		}
		if k := w.detail[0]; k != "" {
			var v any = e.Details
			for _, part := range strings.Split(k, ".") { // "after.scopes": a key of a key
				m, _ := v.(map[string]any)
				v = m[part]
			}
			if b, _ := json.Marshal(v); strings.Trim(string(b), `"`) != w.detail[1] {
				continue
			}
		}
		return &events[i]
	}
	return nil
}

const auditUA = "audit-e2e/1.0 (table test)"

// Every kind of event the token API, the token endpoint, the admin API and the CLI cause is in the audit log, with
// the request's address, user agent and id, the pool, the user and the client, and who acted.
func TestAuditLogRecordsEachEventKind(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, appID := noCodeFixture(t, env)
		api := srv.URL + "/api/v1/auth"
		admin := env.createClient(t, "--name", "ops", "--admin")
		call := func(method, u string, body any, h map[string]string) (int, string, map[string]any) {
			t.Helper()
			hdr := map[string]string{"User-Agent": auditUA}
			for k, v := range h {
				hdr[k] = v
			}
			code, rh, b := apiCall(t, method, u, body, hdr)
			return code, rh.Get("X-Request-Id"), b
		}
		form := func(u string, f url.Values, user, pass string) (int, string, map[string]any) {
			t.Helper()
			req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("User-Agent", auditUA)
			if user != "" {
				req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
			}
			code, rh, b := do(t, req)
			return code, rh.Get("X-Request-Id"), b
		}
		must := func(what string, code, want int, b map[string]any) {
			t.Helper()
			if code != want {
				t.Fatalf("%s: %d %v", what, code, b)
			}
		}
		var wants []auditWant
		expect := func(w ...auditWant) { wants = append(wants, w...) }

		code, rid, su := call("POST", api+"/signup", map[string]any{"client_id": appID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		must("signup", code, 201, su)
		ada := su["user"].(map[string]any)["id"].(string)
		expect(auditWant{name: "sign-up", typ: "user.created", user: ada, requestID: rid, detail: [2]string{"email", "ada@example.com"}},
			auditWant{name: "sign-up's session", typ: "session.started", user: ada, requestID: rid},
			auditWant{name: "sign-up's tokens", typ: "token.issued", user: ada, client: appID, requestID: rid})

		code, rid, b := call("POST", api+"/login", map[string]any{"client_id": appID, "email": "ada@example.com", "password": "wrong-password-1"}, nil)
		must("wrong password", code, 401, b)
		expect(auditWant{name: "wrong password", typ: "user.sign_in_failed", user: ada, requestID: rid, reason: "wrong_password"})
		code, rid, b = call("POST", api+"/login", map[string]any{"client_id": appID, "email": "nobody@example.com", "password": "wrong-password-1"}, nil)
		must("unknown user", code, 401, b)
		expect(auditWant{name: "unknown user", typ: "user.sign_in_failed", requestID: rid, reason: "unknown_user", detail: [2]string{"email", "nobody@example.com"}})

		code, rid, li := call("POST", api+"/login", map[string]any{"client_id": appID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		must("login", code, 200, li)
		expect(auditWant{name: "sign-in", typ: "user.signed_in", user: ada, requestID: rid, detail: [2]string{"auth_method", "password"}})
		tok := li["access_token"].(string)

		code, rid, rf := call("POST", api+"/refresh", map[string]any{"refresh_token": li["refresh_token"].(string), "client_id": appID}, nil)
		must("refresh", code, 200, rf)
		expect(auditWant{name: "refresh", typ: "token.refreshed", user: ada, client: appID, requestID: rid, detail: [2]string{"grant_type", "refresh_token"}})
		tok = rf["access_token"].(string)

		code, _, li = call("POST", api+"/login", map[string]any{"client_id": appID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		must("login again", code, 200, li)
		tok = li["access_token"].(string)
		code, rid, b = call("POST", api+"/password", map[string]any{"current_password": "violet-tractor-47", "new_password": "indigo-bicycle-58"}, bearerHeader(tok))
		must("password change", code, 200, b)
		expect(auditWant{name: "password change", typ: "user.password_changed", user: ada, requestID: rid},
			auditWant{name: "password change ends the other sessions", typ: "session.ended", user: ada, requestID: rid})

		code, rid, b = call("POST", api+"/logout", map[string]any{}, bearerHeader(tok))
		must("logout", code, 204, b)
		expect(auditWant{name: "sign-out", typ: "session.ended", user: ada, requestID: rid})

		code, rid, cc := form(srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"latchkey.admin"}}, admin.ClientID, admin.ClientSecret)
		must("client_credentials", code, 200, cc)
		expect(auditWant{name: "client_credentials token", typ: "token.issued", client: admin.ClientID, requestID: rid, detail: [2]string{"grant_type", "client_credentials"}})
		code, rid, b = form(srv.URL+"/oauth2/revoke", url.Values{"token": {cc["access_token"].(string)}}, admin.ClientID, admin.ClientSecret)
		must("revoke", code, 200, b)
		expect(auditWant{name: "revocation", typ: "token.revoked", client: admin.ClientID, requestID: rid, detail: [2]string{"token_type", "access_token"}})
		_, _, cc = form(srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"latchkey.admin"}}, admin.ClientID, admin.ClientSecret)
		adminHdr := bearerHeader(cc["access_token"].(string))
		code, rid, b = call("PATCH", srv.URL+"/api/v1/admin/users/"+ada, map[string]any{"roles": []string{"customer", "vip"}}, adminHdr)
		must("admin patch", code, 200, b)
		expect(auditWant{name: "admin change", typ: "user.updated", user: ada, requestID: rid, actor: "client:" + admin.ClientID, detail: [2]string{"after", `{"roles":["customer","vip"]}`}})
		code, rid, b = call("DELETE", srv.URL+"/api/v1/admin/users/"+ada+"/mfa", nil, adminHdr)
		must("admin mfa reset", code, 200, b)
		expect(auditWant{name: "admin MFA reset", typ: "mfa.reset", user: ada, requestID: rid, actor: "client:" + admin.ClientID})

		secret, _, tok2 := mfaUser(t, api, appID, "bo@example.com")
		bo := auditList(t, env, "--type", "user.created")[0].UserID
		_, _, fl := call("GET", api+"/mfa/factors", nil, bearerHeader(tok2))
		fid := fl["factors"].([]any)[0].(map[string]any)["id"].(string)
		code, rid, b = call("DELETE", api+"/mfa/factors/"+fid, map[string]any{"code": stepCode(secret, 0)}, bearerHeader(tok2))
		must("remove factor", code, 204, b)
		expect(auditWant{name: "MFA enrolment", typ: "mfa.enrolled", user: bo, detail: [2]string{"factor_id", fid}},
			auditWant{name: "MFA removal", typ: "mfa.removed", user: bo, requestID: rid, detail: [2]string{"factor_id", fid}})

		// The operator's commands: the actor is the CLI, and there is no request.
		c := env.createClient(t, "--id", "audited", "--scopes", "read")
		env.cli(t, "clients", "rotate-secret", "--id", "audited")
		env.cli(t, "pools", "update", "--name", "customers", "--signup", "false")
		env.cli(t, "users", "delete", "--id", bo)
		env.cli(t, "keys", "rotate")
		env.cli(t, "clients", "delete", "audited")
		expect(auditWant{name: "client created", typ: "client.created", client: c.ClientID, actor: "cli", detail: [2]string{"after.scopes", `["read"]`}},
			auditWant{name: "secret rotated", typ: "client.secret_rotated", client: c.ClientID, actor: "cli"},
			auditWant{name: "client deleted", typ: "client.deleted", client: c.ClientID, actor: "cli"},
			auditWant{name: "pool created", typ: "pool.created", actor: "cli"},
			auditWant{name: "pool updated", typ: "pool.updated", actor: "cli"},
			auditWant{name: "user deleted", typ: "user.deleted", user: bo, actor: "cli"},
			auditWant{name: "key rotated", typ: "key.rotated", actor: "cli"})

		events := auditList(t, env)
		for _, w := range wants {
			e := findAudit(events, w)
			if e == nil {
				t.Errorf("%s: no %s event for user %q client %q actor %q reason %q request %q detail %v", w.name, w.typ, w.user, w.client, w.actor, w.reason, w.requestID, w.detail)
				for _, e := range events {
					if e.Type == w.typ {
						t.Logf("  there is %+v", e)
					}
				}
				continue
			}
			if w.requestID != "" && (e.IP != "127.0.0.1" || e.UserAgent != auditUA) {
				t.Errorf("%s: ip %q user agent %q", w.name, e.IP, e.UserAgent)
			}
			if w.actor == "cli" && (e.IP != "" || e.RequestID != "") {
				t.Errorf("%s: a command's event has request metadata: %+v", w.name, e)
			}
			wantPool := "customers" // the pool of the fixture's users and app
			switch {
			case e.Type == "key.rotated":
				wantPool = ""
			case strings.HasPrefix(e.Type, "client."), e.ClientID == admin.ClientID:
				wantPool = "default"
			}
			if e.Pool != wantPool {
				t.Errorf("%s: pool %q, want %q", w.name, e.Pool, wantPool)
			}
		}
		// Never a secret: no token, password or hash in any event.
		raw := env.cli(t, "audit", "list", "--json", "--limit", "1000")
		for _, secret := range []string{tok, tok2, cc["access_token"].(string), li["refresh_token"].(string), admin.ClientSecret, "violet-tractor-47", "indigo-bicycle-58", "$argon2id$"} {
			if strings.Contains(raw, secret) {
				t.Errorf("the audit log holds a secret (%.12s…)", secret)
			}
		}
	})
}

// A browser sign-in through the authorization endpoint: the consent, the session and the code's tokens.
func TestAuditLogBrowserSignIn(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		e.signedIn(t, newBrowser(t, spaCallback), "openid", "profile")
		events := auditList(t, env)
		ada := ""
		for _, ev := range events {
			if ev.Type == "user.signed_in" {
				ada = ev.UserID
			}
		}
		for _, w := range []auditWant{
			{name: "consent", typ: "consent.granted", user: ada, client: "spa", detail: [2]string{"scopes", `["openid","profile"]`}},
			{name: "sign-in", typ: "user.signed_in", user: ada},
			{name: "session", typ: "session.started", user: ada},
			{name: "code exchange", typ: "token.issued", user: ada, client: "spa", detail: [2]string{"grant_type", "authorization_code"}},
		} {
			ev := findAudit(events, w)
			if ev == nil {
				t.Errorf("%s: no %s event in %+v", w.name, w.typ, events)
				continue
			}
			if ev.IP != "127.0.0.1" || ev.UserAgent == "" || ev.RequestID == "" || ev.Pool != "default" {
				t.Errorf("%s: request metadata missing: %+v", w.name, ev)
			}
		}
	})
}

// The mailed steps: an email verified by its link, a sign-in the pool refuses until then (email_not_verified),
// and a password reset by its link.
func TestAuditLogMailEvents(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ms, srv, clientID := mailFixture(t, env, true)
		api := srv.URL + "/api/v1/auth"
		ua := map[string]string{"User-Agent": auditUA}
		code, _, b := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, ua)
		if code != 201 {
			t.Fatalf("signup: %d %v", code, b)
		}
		verify := ms.next(t)
		code, h, b := apiCall(t, "POST", api+"/login", map[string]any{"client_id": clientID, "email": "ada@example.com", "password": "violet-tractor-47"}, ua)
		if code != 403 {
			t.Fatalf("unverified sign-in: %d %v", code, b)
		}
		refused := h.Get("X-Request-Id")
		code, h, b = apiCall(t, "POST", api+"/email/verify", map[string]any{"token": verify.Token}, ua)
		if code != 200 {
			t.Fatalf("verify: %d %v", code, b)
		}
		verified := h.Get("X-Request-Id")
		if code, _, b := apiCall(t, "POST", api+"/password/forgot", map[string]any{"client_id": clientID, "email": "ada@example.com"}, ua); code != 202 {
			t.Fatalf("forgot: %d %v", code, b)
		}
		reset := ms.next(t)
		code, h, b = apiCall(t, "POST", api+"/password/reset", map[string]any{"token": reset.Token, "new_password": "quiet-harbor-lamp-81"}, ua)
		if code != 200 {
			t.Fatalf("reset: %d %v", code, b)
		}
		resetID := h.Get("X-Request-Id")
		events := auditList(t, env)
		ada := ""
		for _, e := range events {
			if e.Type == "user.created" {
				ada = e.UserID
			}
		}
		for _, w := range []auditWant{
			{name: "unverified sign-in", typ: "user.sign_in_failed", user: ada, requestID: refused, reason: "email_not_verified"},
			{name: "email verified", typ: "user.email_verified", user: ada, requestID: verified},
			{name: "password reset", typ: "user.password_reset", user: ada, requestID: resetID},
		} {
			e := findAudit(events, w)
			if e == nil {
				t.Errorf("%s: no %s event in %+v", w.name, w.typ, events)
				continue
			}
			if e.IP != "127.0.0.1" || e.UserAgent != auditUA || e.Pool != "members" {
				t.Errorf("%s: %+v", w.name, e)
			}
		}
	})
}
