package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A webhook receiver that never answers holds only its own deliveries: mail queued behind dozens of them still
// goes out at once, not after the webhooks' timeouts.
func TestOutboxBlackholedWebhookDoesNotDelayMail(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ms := startMailServer(t)
		ms.env(env)
		webhookEnv(env)
		stop := make(chan struct{})
		hole := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			select { // no answer until the sender gives up
			case <-r.Context().Done():
			case <-stop:
			}
		}))
		t.Cleanup(func() { close(stop); hole.Close() })
		createWebhookCLI(t, env, "--url", hole.URL+"/hook", "--events", "user.created")
		srv, clientID := noCodeFixture(t, env)
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, env.createClient(t, "--name", "ops", "--admin")))
		for i := range 40 {
			if code, _, b := api.call(t, "POST", "/users", nil, "", map[string]any{"email": fmt.Sprintf("u%d@example.com", i), "password": "violet-tractor-47", "pool": "customers"}, nil); code != 201 {
				t.Fatalf("create user: %d %v", code, b)
			}
		}
		time.Sleep(200 * time.Millisecond) // the worker is now busy with the blackholed deliveries
		start := time.Now()
		signUp(t, srv, clientID, "ada@example.com")
		for {
			select {
			case r := <-ms.got:
				if r.To != "ada@example.com" {
					continue
				}
				if took := time.Since(start); took > 3*time.Second {
					t.Errorf("the verification mail took %v behind a blackholed webhook", took)
				}
				return
			case <-time.After(30*time.Second - time.Since(start)):
				t.Fatal("no verification mail within 30s")
			}
		}
	})
}
