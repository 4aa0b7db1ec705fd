package e2e

import (
	"encoding/json"
	"strings"
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
