package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// The admin API's webhooks: an admin of every pool and one limited to a pool each manage their own; a delivery
// the receiver keeps refusing is dead after the attempts allowed, shown in the log and counted, and redelivered
// once the receiver is back; bad input is a 400 naming the field.
func TestWebhooksAdminAPI(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		webhookEnv(env)
		env["LATCHKEY_OUTBOX_MAX_ATTEMPTS"] = "3"
		env["LATCHKEY_OUTBOX_RETRY_BASE"] = "50ms"
		srv, clientID := noCodeFixture(t, env)
		env.cli(t, "pools", "create", "staff", "--signup=false")
		all := adminHeader(t, srv, env.createClient(t, "--name", "ops", "--admin"))
		limited := adminHeader(t, srv, env.createClient(t, "--name", "xano", "--admin", "--admin-pools", "customers"))
		hooks := srv.URL + "/api/v1/admin/webhooks"
		everywhere, ours := newWebhookReceiver(t, 0), newWebhookReceiver(t, 0)

		create := func(t *testing.T, h map[string]string, body map[string]any) (string, string) {
			t.Helper()
			code, hdr, b := apiCall(t, "POST", hooks, body, h)
			if code != 201 || !strings.HasPrefix(b["id"].(string), "whk_") || !strings.HasPrefix(b["secret"].(string), "whsec_") ||
				hdr.Get("Location") != "/api/v1/admin/webhooks/"+b["id"].(string) {
				t.Fatalf("create webhook %v: %d %v %v", body, code, b, hdr)
			}
			return b["id"].(string), b["secret"].(string)
		}
		allID, allSecret := create(t, all, map[string]any{"url": everywhere.URL, "events": []string{"user.created"}})
		everywhere.setSecret(allSecret)
		ourID, ourSecret := create(t, limited, map[string]any{"url": ours.URL, "events": []string{"user.created", "user.deleted"}, "pool": "customers"})
		ours.setSecret(ourSecret)
		if code, _, b := apiCall(t, "GET", hooks+"/"+ourID, nil, limited); code != 200 || b["secret"] != nil || b["pool"] != "customers" {
			t.Errorf("get own webhook: %d %v (the secret is shown once only)", code, b)
		}

		t.Run("refused: other pools, all pools, bad input", func(t *testing.T) {
			for _, c := range []struct {
				name   string
				h      map[string]string
				method string
				path   string
				body   any
				status int
				says   string
			}{
				{"limited admin, all pools", limited, "POST", "", map[string]any{"url": ours.URL, "events": []string{"user.created"}}, 400, "pool"},
				{"limited admin, another pool", limited, "POST", "", map[string]any{"url": ours.URL, "events": []string{"user.created"}, "pool": "staff"}, 403, "staff"},
				{"unknown event", all, "POST", "", map[string]any{"url": ours.URL, "events": []string{"user.exploded"}}, 400, `"user.exploded" is not an event type`},
				{"no events", all, "POST", "", map[string]any{"url": ours.URL}, 400, "events"},
				{"not http", all, "POST", "", map[string]any{"url": "ftp://example.com/x", "events": []string{"user.created"}}, 400, "url"},
				{"credentials in the URL", all, "POST", "", map[string]any{"url": "https://u:p@example.com/x", "events": []string{"user.created"}}, 400, "credentials"},
				{"unknown pool", all, "POST", "", map[string]any{"url": ours.URL, "events": []string{"user.created"}, "pool": "nope"}, 400, "nope"},
				{"unknown field", all, "POST", "", map[string]any{"url": ours.URL, "events": []string{"user.created"}, "secret": "mine"}, 400, "secret"},
				{"limited admin reads an all-pools webhook", limited, "GET", "/" + allID, nil, 404, "No such webhook"},
				{"limited admin patches it", limited, "PATCH", "/" + allID, map[string]any{"enabled": false}, 404, "No such webhook"},
				{"limited admin deletes it", limited, "DELETE", "/" + allID, nil, 404, "No such webhook"},
				{"limited admin reads its log", limited, "GET", "/" + allID + "/deliveries", nil, 404, "No such webhook"},
				{"bad cursor", all, "GET", "/" + allID + "/deliveries?cursor=x", nil, 400, "cursor"},
				{"bad limit", all, "GET", "/" + allID + "/deliveries?limit=0", nil, 400, "limit"},
				{"patch with a bad URL", all, "PATCH", "/" + allID, map[string]any{"url": "/relative"}, 400, "url"},
				{"no token", nil, "GET", "", nil, 401, ""},
			} {
				code, _, b := apiCall(t, c.method, hooks+c.path, c.body, c.h)
				desc, _ := b["error_description"].(string)
				if code != c.status || !strings.Contains(desc, c.says) {
					t.Errorf("%s: %d %v, want %d saying %q", c.name, code, b, c.status, c.says)
				}
			}
			var list struct{ Webhooks []struct{ ID string } }
			_, _, b := apiCall(t, "GET", hooks, nil, limited)
			raw, _ := json.Marshal(b)
			_ = json.Unmarshal(raw, &list)
			if len(list.Webhooks) != 1 || list.Webhooks[0].ID != ourID {
				t.Errorf("limited admin lists %v, want only %s", b, ourID)
			}
			_, _, b = apiCall(t, "GET", hooks, nil, all)
			raw, _ = json.Marshal(b)
			_ = json.Unmarshal(raw, &list)
			if len(list.Webhooks) != 2 {
				t.Errorf("admin of all pools lists %v, want both", b)
			}
		})

		// ours is down for good: its delivery dies after 3 attempts; everywhere gets the same event.
		ours.down.Store(true)
		user := signUp(t, srv, clientID, "dee@example.com")
		everywhere.waitForEvents(t, 1, 15*time.Second)
		deliveries := func(t *testing.T, id, query string) map[string]any {
			t.Helper()
			code, _, b := apiCall(t, "GET", hooks+"/"+id+"/deliveries"+query, nil, limited)
			if code != 200 {
				t.Fatalf("deliveries: %d %v", code, b)
			}
			return b
		}
		var dead map[string]any
		deadline := time.Now().Add(20 * time.Second)
		for dead == nil {
			if d := deliveries(t, ourID, "")["deliveries"].([]any); len(d) == 1 && d[0].(map[string]any)["state"] == "dead" {
				dead = d[0].(map[string]any)
			} else if time.Now().After(deadline) {
				t.Fatalf("no dead delivery: %v", d)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if dead["attempts"] != 3.0 || !strings.Contains(dead["last_error"].(string), "HTTP 503") && !strings.Contains(dead["last_error"].(string), "EOF") ||
			dead["event_type"] != "user.created" || dead["event_id"] != everywhere.accepted()[0].EventID {
			t.Errorf("dead delivery %v", dead)
		}
		db, _ := rawDB(t, env)
		var nDead int
		if err := db.QueryRow("SELECT count(*) FROM outbox WHERE dead_at IS NOT NULL").Scan(&nDead); err != nil || nDead != 1 {
			t.Errorf("dead outbox messages (latchkey_outbox_dead_messages counts them): %d %v", nDead, err)
		}

		// Back up, redelivered through the admin API: the same event arrives, the log shows a new delivery.
		ours.down.Store(false)
		if code, _, b := apiCall(t, "POST", hooks+"/"+allID+"/deliveries/"+dead["id"].(string)+"/redeliver", nil, all); code != 404 {
			t.Errorf("redeliver through another webhook: %d %v", code, b)
		}
		code, _, re := apiCall(t, "POST", hooks+"/"+ourID+"/deliveries/"+dead["id"].(string)+"/redeliver", nil, limited)
		if code != http.StatusAccepted || re["redelivery_of"] != dead["id"] {
			t.Fatalf("redeliver: %d %v", code, re)
		}
		got := ours.waitForEvents(t, 1, 15*time.Second)
		if got[0].EventID != dead["event_id"] || got[0].User != user || got[0].DeliveryID != re["id"] {
			t.Errorf("redelivered %+v, want event %v for %s as delivery %v", got[0], dead["event_id"], user, re["id"])
		}

		// Rotation: the next delivery is signed with the new secret only.
		code, _, rot := apiCall(t, "POST", hooks+"/"+ourID+"/secret", nil, limited)
		if code != 200 || rot["secret"] == ourSecret || !strings.HasPrefix(rot["secret"].(string), "whsec_") {
			t.Fatalf("rotate: %d %v", code, rot)
		}
		ours.setSecret(rot["secret"].(string))
		env.cli(t, "users", "delete", "--id", user)
		got = ours.waitForEvents(t, 2, 15*time.Second)
		if last := got[len(got)-1]; last.Type != "user.deleted" || last.User != user || ours.badSig.Load() != 0 {
			t.Errorf("after rotation: %+v, %d bad signatures", got, ours.badSig.Load())
		}

		// Pages of the log: newest first, the cursor continues.
		first := deliveries(t, ourID, "?limit=1")
		second := deliveries(t, ourID, "?limit=1&cursor="+first["next_cursor"].(string))
		a, b := first["deliveries"].([]any), second["deliveries"].([]any)
		if len(a) != 1 || len(b) != 1 || a[0].(map[string]any)["event_type"] != "user.deleted" || a[0].(map[string]any)["id"] == b[0].(map[string]any)["id"] {
			t.Errorf("pages %v then %v", first, second)
		}

		// Disable, patch events, delete.
		code, _, p := apiCall(t, "PATCH", hooks+"/"+ourID, map[string]any{"enabled": false, "events": []string{"session.ended", "user.updated", "user.updated"}}, limited)
		if code != 200 || p["enabled"] != false || !slices.Equal(toStrings(p["events"]), []string{"session.ended", "user.updated"}) {
			t.Errorf("patch: %d %v", code, p)
		}
		if code, _, b := apiCall(t, "DELETE", hooks+"/"+ourID, nil, limited); code != 204 {
			t.Errorf("delete: %d %v", code, b)
		}
		if code, _, _ := apiCall(t, "GET", hooks+"/"+ourID+"/deliveries", nil, limited); code != 404 {
			t.Errorf("deliveries of a deleted webhook: %d", code)
		}
	})
}

// The CLI manages webhooks as the admin API does, with the same rules, one line per error.
func TestWebhooksCLI(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		id, secret := createWebhookCLI(t, env, "--url", "https://backend.example/hooks", "--events", "user.created, session.ended", "--pool", "customers")
		out, errOut, code := env.cliCode(t, "", "webhooks", "create", "--url", "http://backend.example/hooks", "--events", "user.created")
		if code != 0 || !strings.Contains(out, "secret (shown once") || !strings.Contains(errOut, "warning: the URL is http") {
			t.Errorf("create over http: exit %d\n%s\n%s", code, out, errOut)
		}
		for _, c := range []struct {
			args []string
			says string
		}{
			{[]string{"create", "--url", "https://x.example", "--events", "user.create"}, `"user.create" is not an event type`},
			{[]string{"create", "--url", "x.example", "--events", "user.created"}, "absolute http or https URL"},
			{[]string{"create", "--url", "https://x.example", "--events", "user.created", "--pool", "ghosts"}, "ghosts"},
			{[]string{"update", "whk_nope", "--disable"}, `no webhook "whk_nope"`},
			{[]string{"update", id, "--enable", "--disable"}, "contradict"},
			{[]string{"delete", "whk_nope"}, `no webhook "whk_nope"`},
			{[]string{"redeliver", "obx_nope"}, `no webhook delivery "obx_nope"`},
			{[]string{"deliveries", id, "--cursor", "zz"}, "cursor"},
		} {
			_, errOut, code := env.cliCode(t, "", append([]string{"webhooks"}, c.args...)...)
			if code != 1 || !strings.Contains(errOut, c.says) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("webhooks %v: exit %d, stderr %q, want one line saying %q", c.args, code, errOut, c.says)
			}
		}
		out = env.cli(t, "webhooks", "update", id, "--events", "user.updated", "--disable", "--json")
		var w struct {
			Events  []string
			Enabled bool
			Pool    string
		}
		if err := json.Unmarshal([]byte(out), &w); err != nil || !slices.Equal(w.Events, []string{"user.updated"}) || w.Enabled || w.Pool != "customers" {
			t.Errorf("update: %v %s", err, out)
		}
		rotated := env.cli(t, "webhooks", "rotate-secret", id)
		if !strings.Contains(rotated, "whsec_") || strings.Contains(rotated, secret) {
			t.Errorf("rotate-secret: %s", rotated)
		}
		var list []struct{ ID, URL string }
		if err := json.Unmarshal([]byte(env.cli(t, "webhooks", "list", "--pool", "customers", "--json")), &list); err != nil || len(list) != 1 || list[0].ID != id {
			t.Errorf("list --pool customers: %v %v", err, list)
		}
		if table := env.cli(t, "webhooks", "list"); !strings.Contains(table, id) || !strings.Contains(table, "(all)") || strings.Contains(table, "whsec_") {
			t.Errorf("list:\n%s", table)
		}
		if out := env.cli(t, "webhooks", "delete", id); !strings.Contains(out, "deleted webhook "+id) {
			t.Errorf("delete: %s", out)
		}
	})
}

// Without LATCHKEY_WEBHOOK_ALLOW_PRIVATE a webhook aimed at a loopback address is never dialled: its delivery
// dies saying why, and the receiver sees nothing.
func TestWebhooksRefusePrivateTargets(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env["LATCHKEY_OUTBOX_POLL"] = "50ms"
		env["LATCHKEY_OUTBOX_MAX_ATTEMPTS"] = "1"
		rcv := newWebhookReceiver(t, 0)
		id, secret := createWebhookCLI(t, env, "--url", rcv.URL, "--events", "user.created")
		rcv.setSecret(secret)
		srv, clientID := noCodeFixture(t, env)
		signUp(t, srv, clientID, "mallory@example.com")
		deadline := time.Now().Add(15 * time.Second)
		for {
			var log struct {
				Deliveries []struct {
					LastError string     `json:"last_error"`
					DeadAt    *time.Time `json:"dead_at"`
				} `json:"deliveries"`
			}
			if err := json.Unmarshal([]byte(env.cli(t, "webhooks", "deliveries", id, "--json")), &log); err != nil {
				t.Fatal(err)
			}
			if len(log.Deliveries) == 1 && log.Deliveries[0].DeadAt != nil {
				if !strings.Contains(log.Deliveries[0].LastError, "not a public address") {
					t.Errorf("last error %q", log.Deliveries[0].LastError)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("delivery log %+v", log)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if n := len(rcv.accepted()) + int(rcv.refused.Load()); n != 0 {
			t.Errorf("the private receiver was reached %d times", n)
		}
	})
}
