package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// failAuditEvents makes the test's database refuse every audit row of the types in the table audit_fault: a
// trigger raises an error, inside the transaction that writes the event, after its change was made.
func failAuditEvents(t *testing.T, env testEnv) {
	t.Helper()
	execSQL(t, env, "CREATE TABLE audit_fault (type TEXT PRIMARY KEY)")
	if strings.HasPrefix(env["LATCHKEY_DATABASE_URL"], "sqlite://") {
		execSQL(t, env, `CREATE TRIGGER audit_fault BEFORE INSERT ON audit_events
WHEN EXISTS (SELECT 1 FROM audit_fault WHERE type = NEW.type)
BEGIN SELECT RAISE(ABORT, 'forced audit failure'); END`)
		return
	}
	execSQL(t, env, `CREATE FUNCTION audit_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM audit_fault WHERE type = NEW.type) THEN RAISE EXCEPTION 'forced audit failure'; END IF;
	RETURN NEW;
END $$`)
	execSQL(t, env, "CREATE TRIGGER audit_fault BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_fault()")
}

// An event and its change commit together: when writing the event (or anything after it in the same transaction)
// fails, neither the change nor the event is there; once the fault is gone, the same step leaves both.
func TestAuditEventAndItsChangeCommitTogether(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, appID := noCodeFixture(t, env)
		api := srv.URL + "/api/v1/auth"
		admin := env.createClient(t, "--name", "ops", "--admin")
		svc := env.createClient(t, "--name", "svc", "--scopes", "read")
		code, _, su := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": appID, "email": "ada@example.com", "password": "violet-tractor-47"}, nil)
		if code != 201 {
			t.Fatalf("signup: %d %v", code, su)
		}
		ada := su["user"].(map[string]any)["id"].(string)
		adaToken := su["access_token"].(string)
		failAuditEvents(t, env)
		db, q := rawDB(t, env)
		count := func(stmt string, args ...any) int {
			t.Helper()
			var n int
			if err := db.QueryRow(q(stmt), args...).Scan(&n); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
			return n
		}
		events := func(typ string) int { return count("SELECT count(*) FROM audit_events WHERE type = ?", typ) }
		adminToken := func() map[string]string {
			code, _, b := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"latchkey.admin"}}, admin.ClientID, admin.ClientSecret)
			if code != 200 {
				t.Fatalf("admin token: %d %v", code, b)
			}
			return bearerHeader(b["access_token"].(string))
		}

		steps := []struct {
			name string
			fail string // the event type refused
			// do runs the step and reports whether it succeeded; changed reads whether its change is there.
			do      func() bool
			changed func() bool
			event   string // the event the step records
		}{
			{
				name: "a client_credentials token whose token.issued fails is not issued",
				fail: "token.issued", event: "token.issued",
				do: func() bool {
					code, _, _ := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc.ClientID, svc.ClientSecret)
					return code == 200
				},
				changed: func() bool { return count("SELECT count(*) FROM oauth2_access WHERE client_id = ?", svc.ClientID) > 0 },
			},
			{
				name: "a password change whose user.password_changed fails keeps the old password",
				fail: "user.password_changed", event: "user.password_changed",
				do: func() bool {
					code, _, _ := apiCall(t, "POST", api+"/password", map[string]any{"current_password": "violet-tractor-47", "new_password": "indigo-bicycle-58"}, bearerHeader(adaToken))
					return code == 200
				},
				changed: func() bool {
					code, _, _ := apiCall(t, "POST", api+"/login", map[string]any{"client_id": appID, "email": "ada@example.com", "password": "indigo-bicycle-58"}, nil)
					return code == 200
				},
			},
			{
				name: "an admin change and disable fails as a whole when a session.ended after user.updated fails",
				fail: "session.ended", event: "user.updated",
				do: func() bool {
					code, _, _ := apiCall(t, "PATCH", srv.URL+"/api/v1/admin/users/"+ada, map[string]any{"roles": []string{"vip"}, "disabled": true}, adminToken())
					return code == 200
				},
				changed: func() bool { return count("SELECT count(*) FROM users WHERE id = ? AND disabled = ?", ada, true) > 0 },
			},
			{
				name: "a sign-up whose user.created fails creates no user",
				fail: "user.created", event: "user.created",
				do: func() bool {
					code, _, _ := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": appID, "email": "bo@example.com", "password": "violet-tractor-47"}, nil)
					return code == 201
				},
				changed: func() bool { return count("SELECT count(*) FROM users WHERE email = ?", "bo@example.com") > 0 },
			},
			{
				name: "a client the CLI creates whose client.created fails is not there",
				fail: "client.created", event: "client.created",
				do: func() bool {
					_, _, code := env.cliCode(t, "", "clients", "create", "--id", "late", "--scopes", "read")
					return code == 0
				},
				changed: func() bool { return count("SELECT count(*) FROM clients WHERE id = ?", "late") > 0 },
			},
		}
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				before := events(s.event)
				execSQL(t, env, "INSERT INTO audit_fault (type) VALUES (?)", s.fail)
				if s.do() {
					t.Fatal("the step succeeded although its event could not be written")
				}
				if s.changed() || events(s.event) != before {
					t.Fatalf("after the forced failure: change there %v, %s events %d (were %d)", s.changed(), s.event, events(s.event), before)
				}
				execSQL(t, env, "DELETE FROM audit_fault")
				if !s.do() {
					t.Fatal("the step failed without the fault")
				}
				if !s.changed() || events(s.event) != before+1 {
					t.Fatalf("without the fault: change there %v, %s events %d (were %d)", s.changed(), s.event, events(s.event), before)
				}
			})
		}
	})
}

// `latchkey audit list` filters by user, type, client, pool and time, limits, refuses what it does not know,
// and prints a table or JSON.
func TestAuditListFilters(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, appID := noCodeFixture(t, env)
		api := srv.URL + "/api/v1/auth"
		svc := env.createClient(t, "--name", "svc", "--scopes", "read")
		var users []string
		for _, email := range []string{"ada@example.com", "bo@example.com"} {
			code, _, su := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": appID, "email": email, "password": "violet-tractor-47"}, nil)
			if code != 201 {
				t.Fatalf("signup: %d %v", code, su)
			}
			users = append(users, su["user"].(map[string]any)["id"].(string))
		}
		apiCall(t, "POST", api+"/login", map[string]any{"client_id": appID, "email": "ada@example.com", "password": "wrong-password-1"}, nil)
		for range 3 {
			if code, _, b := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc.ClientID, svc.ClientSecret); code != 200 {
				t.Fatalf("token: %d %v", code, b)
			}
		}
		all := auditList(t, env)
		for i := 1; i < len(all); i++ {
			if all[i].ID > all[i-1].ID {
				t.Fatalf("not newest first: %d after %d", all[i].ID, all[i-1].ID)
			}
		}
		only := func(events []auditEvent, keep func(auditEvent) bool) []int64 {
			var ids []int64
			for _, e := range events {
				if keep(e) {
					ids = append(ids, e.ID)
				}
			}
			return ids
		}
		ids := func(events []auditEvent) []int64 { return only(events, func(auditEvent) bool { return true }) }
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		for _, tc := range []struct {
			name string
			args []string
			want []int64
		}{
			{"--user", []string{"--user", users[0]}, only(all, func(e auditEvent) bool { return e.UserID == users[0] })},
			{"--type, two of them", []string{"--type", "user.created,user.sign_in_failed"}, only(all, func(e auditEvent) bool { return e.Type == "user.created" || e.Type == "user.sign_in_failed" })},
			{"--client", []string{"--client", svc.ClientID}, only(all, func(e auditEvent) bool { return e.ClientID == svc.ClientID })},
			{"--pool", []string{"--pool", "customers"}, only(all, func(e auditEvent) bool { return e.Pool == "customers" })},
			{"--user and --type together", []string{"--user", users[1], "--type", "session.started"}, only(all, func(e auditEvent) bool { return e.UserID == users[1] && e.Type == "session.started" })},
			{"--since a duration", []string{"--since", "1h"}, ids(all)},
			{"--since a time to come", []string{"--since", future}, nil},
			{"--limit", []string{"--limit", "2"}, ids(all)[:2]},
		} {
			got := ids(auditList(t, env, tc.args...))
			switch {
			case tc.want == nil:
				if len(got) != 0 {
					t.Errorf("%s: %v, want none", tc.name, got)
				}
			case len(tc.want) == 0 || (len(tc.want) == len(all) && tc.args[0] != "--since"):
				t.Errorf("%s: the filter selects none or all of this fixture's %d events, so it proves nothing", tc.name, len(all))
			case !slices.Equal(got, tc.want):
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}
		for _, bad := range [][]string{{"--type", "user.exploded"}, {"--since", "yesterday"}, {"--limit", "0"}, {"--limit", "1001"}} {
			if _, errOut, code := env.cliCode(t, "", append([]string{"audit", "list"}, bad...)...); code == 0 || errOut == "" {
				t.Errorf("audit list %v: exit %d, stderr %q", bad, code, errOut)
			}
		}
		table := env.cli(t, "audit", "list", "--type", "user.sign_in_failed")
		if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "TIME") ||
			!strings.Contains(lines[1], "user.sign_in_failed") || !strings.Contains(lines[1], "wrong_password") || !strings.Contains(lines[1], "127.0.0.1") {
			t.Errorf("table:\n%s", table)
		}
	})
}

// GET /api/v1/admin/audit-events: filters, pages that walk the whole log once by cursor, and a pool-limited admin
// client that sees only its pools' events.
func TestAuditAdminAPI(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, appID := noCodeFixture(t, env)
		api := srv.URL + "/api/v1/auth"
		env.cli(t, "pools", "create", "staff")
		everyPool := env.createClient(t, "--name", "ops", "--admin")
		customersOnly := env.createClient(t, "--name", "xano", "--admin", "--admin-pools", "customers")
		env.cli(t, "users", "create", "--pool", "staff", "--email", "sam@example.com", "--password", "staff-password-123")
		for _, email := range []string{"ada@example.com", "bo@example.com", "cy@example.com"} {
			if code, _, b := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": appID, "email": email, "password": "violet-tractor-47"}, nil); code != 201 {
				t.Fatalf("signup: %d %v", code, b)
			}
		}
		token := func(c createdClient) map[string]string {
			code, _, b := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"latchkey.admin"}}, c.ClientID, c.ClientSecret)
			if code != 200 {
				t.Fatalf("token: %d %v", code, b)
			}
			return bearerHeader(b["access_token"].(string))
		}
		all, limited := token(everyPool), token(customersOnly)
		endpoint := srv.URL + "/api/v1/admin/audit-events"
		page := func(h map[string]string, query string) (int, []auditEvent, string, map[string]any) {
			t.Helper()
			code, _, b := apiCall(t, "GET", endpoint+"?"+query, nil, h)
			raw, _ := json.Marshal(b["events"])
			var events []auditEvent
			_ = json.Unmarshal(raw, &events)
			next, _ := b["next_cursor"].(string)
			return code, events, next, b
		}
		// Walk every page of two events: each event once, newest first, as one page of 1000 has them.
		walk := func(h map[string]string, query string) []int64 {
			t.Helper()
			var ids []int64
			cursor := ""
			for range 100 {
				q := query + "&limit=2"
				if cursor != "" {
					q += "&cursor=" + url.QueryEscape(cursor)
				}
				code, events, next, b := page(h, q)
				if code != 200 || len(events) > 2 {
					t.Fatalf("page: %d %v", code, b)
				}
				for _, e := range events {
					ids = append(ids, e.ID)
				}
				if next == "" {
					return ids
				}
				cursor = next
			}
			t.Fatal("more than 100 pages")
			return nil
		}
		_, whole, _, _ := page(all, "limit=1000")
		wantIDs := make([]int64, 0, len(whole))
		pools := map[string]bool{}
		for _, e := range whole {
			wantIDs = append(wantIDs, e.ID)
			pools[e.Pool] = true
		}
		if len(whole) < 10 || !pools["staff"] || !pools["customers"] || !pools[""] {
			t.Fatalf("the fixture's log should span pools staff, customers and none: %d events in %v", len(whole), pools)
		}
		if got := walk(all, "x=1"); !slices.Equal(got, wantIDs) {
			t.Errorf("paging by 2: %v\nwant %v", got, wantIDs)
		}

		// The pool-limited client: only customers' events, paged the same way; another pool is refused.
		var customers []int64
		for _, e := range whole {
			if e.Pool == "customers" {
				customers = append(customers, e.ID)
			}
		}
		if got := walk(limited, "x=1"); !slices.Equal(got, customers) {
			t.Errorf("the customers-only client saw %v\nwant %v", got, customers)
		}
		if code, _, _, b := page(limited, "pool=staff"); code != 403 || b["error"] != "insufficient_scope" {
			t.Errorf("?pool=staff for the customers-only client: %d %v", code, b)
		}
		code, staff, _, _ := page(all, "pool=staff&type=user.created")
		if code != 200 || len(staff) != 1 || staff[0].Pool != "staff" || staff[0].Actor != "cli" {
			t.Errorf("?pool=staff&type=user.created: %d %+v", code, staff)
		}
		code, created, _, _ := page(all, "type=user.created&type=pool.created&limit=1000")
		if code != 200 || len(created) != 6 { // 4 users, 2 pools
			t.Errorf("two ?type= parameters: %d, %d events", code, len(created))
		}
		if code, since, _, _ := page(all, "since="+url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))); code != 200 || len(since) != 0 {
			t.Errorf("?since= an hour on: %d %d events", code, len(since))
		}

		for _, bad := range []string{"cursor=not-a-cursor", "limit=0", "limit=" + strconv.Itoa(1001), "since=yesterday", "type=user.exploded"} {
			if code, _, _, b := page(all, bad); code != 400 || b["error"] != "invalid_request" {
				t.Errorf("?%s: %d %v", bad, code, b)
			}
		}
		if code, _, _, b := page(nil, ""); code != 401 {
			t.Errorf("without a token: %d %v", code, b)
		}
	})
}

// Retention: a cleanup deletes audit events older than LATCHKEY_AUDIT_RETENTION, in batches, and only those; 0
// keeps them forever.
func TestAuditRetention(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		retention string
		kept      bool
	}{{"1h", false}, {"0", true}} {
		t.Run("retention "+tc.retention, func(t *testing.T) {
			t.Parallel()
			forEachDB(t, func(t *testing.T, env testEnv) {
				env["LATCHKEY_AUDIT_RETENTION"] = tc.retention
				env["LATCHKEY_CLEANUP_BATCH"] = "2"
				svc := env.createClient(t, "--name", "svc", "--scopes", "read")
				srv := env.startServer(t)
				for range 5 {
					if code, _, b := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc.ClientID, svc.ClientSecret); code != 200 {
						t.Fatalf("token: %d %v", code, b)
					}
				}
				before := countRows(t, env, "audit_events")
				if before < 6 {
					t.Fatalf("%d audit events, want the client's creation and 5 tokens", before)
				}
				// Half an hour on, nothing is old enough yet.
				srv.app.CleanupOnce(context.Background(), time.Now().Add(30*time.Minute))
				if n := countRows(t, env, "audit_events"); n != before {
					t.Fatalf("after a cleanup within the retention: %d events, want %d", n, before)
				}
				srv.app.CleanupOnce(context.Background(), time.Now().Add(2*time.Hour))
				n := countRows(t, env, "audit_events")
				if tc.kept && n != before || !tc.kept && n != 0 {
					t.Fatalf("after a cleanup past the retention: %d events (had %d)", n, before)
				}
			})
		})
	}
}

// A sign-in the throttle refuses is recorded (reason throttled) although no password was checked.
func TestAuditThrottledSignIn(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		clock := &testClock{now: time.Now()}
		srv, appID := noCodeFixtureAt(t, env, clock)
		api := srv.URL + "/api/v1/auth"
		refused := 0
		for range 8 {
			code, _, _ := apiCall(t, "POST", api+"/login", map[string]any{"client_id": appID, "email": "eve@example.com", "password": "guess-guess-1"}, nil)
			if code == 429 {
				refused++
			}
		}
		if refused == 0 {
			t.Fatal("the throttle refused nothing")
		}
		events := auditList(t, env, "--type", "user.sign_in_failed")
		reasons := map[string]int{}
		for _, e := range events {
			if e.Details["email"] == "eve@example.com" && e.Pool == "customers" {
				reasons[e.Reason]++
			}
		}
		if reasons["throttled"] != refused || reasons["unknown_user"] != 8-refused {
			t.Errorf("reasons %v, want %d throttled and %d unknown_user", reasons, refused, 8-refused)
		}
	})
}
