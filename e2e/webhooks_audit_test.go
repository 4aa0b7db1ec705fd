package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// A webhook carries every user's data out of the server, so making, changing, re-keying and deleting one are
// admin changes the audit log records (who, from where, before and after), never with the secret.
func TestAuditRecordsWebhookChanges(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		ops := env.createClient(t, "--name", "ops", "--admin")
		srv := env.startServer(t)
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))
		code, _, wh := api.call(t, "POST", "/webhooks", nil, "", map[string]any{"url": "https://hooks.example.com/a", "events": []string{"user.created"}, "pool": "customers"}, nil)
		if code != 201 {
			t.Fatalf("create webhook: %d %v", code, wh)
		}
		id, secrets := wh["id"].(string), []string{wh["secret"].(string)}
		if code, _, b := api.call(t, "PATCH", "/webhooks/{id}", []string{id}, "", map[string]any{"url": "https://hooks.example.com/b"}, nil); code != 200 {
			t.Fatalf("patch webhook: %d %v", code, b)
		}
		code, _, rot := api.call(t, "POST", "/webhooks/{id}/secret", []string{id}, "", nil, nil)
		if code != 200 {
			t.Fatalf("rotate webhook secret: %d %v", code, rot)
		}
		secrets = append(secrets, rot["secret"].(string))
		if code, _, b := api.call(t, "DELETE", "/webhooks/{id}", []string{id}, "", nil, nil); code != 204 {
			t.Fatalf("delete webhook: %d %v", code, b)
		}
		cliID, cliSecret := createWebhookCLI(t, env, "--url", "https://hooks.example.com/c", "--events", "user.deleted")
		secrets = append(secrets, cliSecret)

		events := auditList(t, env, "--type", "webhook.created,webhook.updated,webhook.secret_rotated,webhook.deleted")
		raw, _ := json.Marshal(events)
		for _, s := range secrets {
			if strings.Contains(string(raw), s) || strings.Contains(string(raw), "sealed") {
				t.Errorf("a webhook secret in the audit log: %s", raw)
			}
		}
		for _, w := range []auditWant{
			{name: "created through the API", typ: "webhook.created", actor: "client:" + ops.ClientID, detail: [2]string{"after.url", "https://hooks.example.com/a"}},
			{name: "updated", typ: "webhook.updated", actor: "client:" + ops.ClientID, detail: [2]string{"after.url", "https://hooks.example.com/b"}},
			{name: "secret rotated", typ: "webhook.secret_rotated", actor: "client:" + ops.ClientID, detail: [2]string{"webhook_id", id}},
			{name: "deleted", typ: "webhook.deleted", actor: "client:" + ops.ClientID, detail: [2]string{"before.url", "https://hooks.example.com/b"}},
			{name: "created by the CLI", typ: "webhook.created", actor: "cli", detail: [2]string{"webhook_id", cliID}},
		} {
			if findAudit(events, w) == nil {
				t.Errorf("no %s event (%s): %s", w.typ, w.name, raw)
			}
		}
		for _, e := range events {
			if e.Type != "webhook.created" || e.Actor != "cli" {
				if e.Pool != "customers" {
					t.Errorf("%s of a customers webhook in pool %q", e.Type, e.Pool)
				}
			}
		}
	})
}

// A webhook is updated as the other resources are: its GET has an ETag, and a PATCH or DELETE with If-Match
// applies only to the webhook as read: of 40 writers with one ETag exactly one wins, a stale one is 412 and
// changes nothing (an If-Match ignored would be a lost update the caller asked to prevent).
func TestWebhooksIfMatch(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ops := env.createClient(t, "--name", "ops", "--admin")
		srv := env.startServer(t)
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))
		_, hdr, wh := api.call(t, "POST", "/webhooks", nil, "", map[string]any{"url": "https://hooks.example.com/a", "events": []string{"user.created"}}, nil)
		id := wh["id"].(string)
		_, got, _ := api.call(t, "GET", "/webhooks/{id}", []string{id}, "", nil, nil)
		etag := got.Get("ETag")
		if etag == "" || hdr.Get("ETag") != etag {
			t.Fatalf("ETag of the created webhook %q, of its GET %q", hdr.Get("ETag"), etag)
		}
		const writers = 40
		codes := make([]int, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				codes[i], _, _ = api.call(t, "PATCH", "/webhooks/{id}", []string{id}, "", map[string]any{"url": fmt.Sprintf("https://hooks.example.com/%d", i)}, map[string]string{"If-Match": etag})
			})
		}
		wg.Wait()
		if won := slices.Index(codes, 200); won < 0 || slices.Index(codes[won+1:], 200) >= 0 || len(slices.DeleteFunc(slices.Clone(codes), func(c int) bool { return c == 200 || c == 412 })) > 0 {
			t.Errorf("40 PATCHes with one ETag: %v, want one 200 and 412s", codes)
		}
		if code, _, b := api.call(t, "DELETE", "/webhooks/{id}", []string{id}, "", nil, map[string]string{"If-Match": etag}); code != 412 {
			t.Errorf("DELETE with a stale ETag: %d %v", code, b)
		}
		_, now, cur := api.call(t, "GET", "/webhooks/{id}", []string{id}, "", nil, nil)
		if now.Get("ETag") == etag || cur["url"] == "https://hooks.example.com/a" {
			t.Errorf("after the PATCH: ETag %q (was %q), %v", now.Get("ETag"), etag, cur)
		}
		if code, _, _ := api.call(t, "DELETE", "/webhooks/{id}", []string{id}, "", nil, map[string]string{"If-Match": now.Get("ETag")}); code != 204 {
			t.Errorf("DELETE with the current ETag: %d", code)
		}
	})
}
