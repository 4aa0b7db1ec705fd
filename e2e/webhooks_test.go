package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A receiver that is down (503s, dropped connections) while users sign up and change: every event reaches it
// once it is up, signed as documented, each user's events in the order they happened and never two at once;
// the requests that caused them did not wait. The delivery log shows the retries; a redelivery repeats the event
// under the same event id.
func TestWebhooksRetriedInOrderPerUser(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		webhookEnv(env)
		rcv := newWebhookReceiver(t, 5*time.Millisecond)
		id, secret := createWebhookCLI(t, env, "--url", rcv.URL+"/hooks/latchkey", "--events", "user.created,user.updated,session.started")
		rcv.setSecret(secret)
		rcv.down.Store(true)
		srv, clientID := noCodeFixture(t, env)
		admin := adminHeader(t, srv, env.createClient(t, "--name", "backend", "--admin"))

		const users, rounds = 3, 4
		want := map[string][]string{}
		ids := make([]string, users)
		for i := range ids {
			start := time.Now()
			ids[i] = signUp(t, srv, clientID, fmt.Sprintf("user%d@example.com", i))
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("sign-up took %v with the receiver down: it waited for delivery", took)
			}
			want[ids[i]] = []string{"user.created", "session.started"}
		}
		for r := 1; r <= rounds; r++ {
			for _, u := range ids { // interleaved: the users' events alternate in the outbox
				renameUser(t, srv, admin, u, stepName(r))
				want[u] = append(want[u], "user.updated "+stepName(r))
			}
		}
		// Down until each user's first delivery was refused at least twice (the later ones wait behind it).
		deadline := time.Now().Add(20 * time.Second)
		for rcv.refused.Load() < 2*users {
			if time.Now().After(deadline) {
				t.Fatalf("only %d refused attempts while down", rcv.refused.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
		rcv.down.Store(false)
		got := rcv.waitForEvents(t, users*(2+rounds), 30*time.Second)
		checkOrder(t, got, want)
		if n := rcv.overlapping(); n != 0 {
			t.Errorf("%d deliveries about one user overlapped another", n)
		}
		if n := rcv.badSig.Load(); n != 0 {
			t.Errorf("%d deliveries failed the signature check", n)
		}

		// The delivery log: every delivery delivered, the first ones after retries.
		var log struct {
			Deliveries []struct {
				ID          string     `json:"id"`
				Attempts    int        `json:"attempts"`
				DeliveredAt *time.Time `json:"delivered_at"`
				LastError   string     `json:"last_error"`
			} `json:"deliveries"`
		}
		if err := json.Unmarshal([]byte(env.cli(t, "webhooks", "deliveries", id, "--json")), &log); err != nil {
			t.Fatal(err)
		}
		retried := 0
		for _, d := range log.Deliveries {
			if d.DeliveredAt == nil {
				t.Errorf("delivery %s not delivered: %+v", d.ID, d)
			}
			if d.Attempts > 1 {
				retried++
			}
		}
		if len(log.Deliveries) != users*(2+rounds) || retried < users {
			t.Errorf("%d deliveries logged (want %d), %d retried (want >= %d)", len(log.Deliveries), users*(2+rounds), retried, users)
		}

		// Redelivery: the same event (same id) again, as a new delivery.
		first := got[0]
		out := env.cli(t, "webhooks", "redeliver", first.DeliveryID)
		if !strings.Contains(out, "queued delivery obx_") {
			t.Fatalf("redeliver: %s", out)
		}
		deadline = time.Now().Add(15 * time.Second)
		for {
			again := 0
			for _, e := range rcv.accepted() {
				if e.EventID == first.EventID && e.DeliveryID != first.DeliveryID {
					again++
				}
			}
			if again == 1 {
				break
			}
			if again > 1 || time.Now().After(deadline) {
				t.Fatalf("event %s redelivered %d times, want 1", first.EventID, again)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// Two nodes on one database share the deliveries: each event arrives at least once, a user's events in order and
// never two at once, though the receiver refuses now and then and both nodes poll all the time.
func TestWebhooksTwoNodesDeliverInOrder(t *testing.T) {
	t.Parallel()
	for _, db := range databases() {
		if db.name != "postgres" {
			continue // SQLite is one node's database
		}
		t.Run(db.name, func(t *testing.T) {
			env := newTestEnv(t, db.url(t))
			webhookEnv(env)
			rcv := newWebhookReceiver(t, 15*time.Millisecond)
			_, secret := createWebhookCLI(t, env, "--url", rcv.URL, "--events", "user.created,user.updated")
			rcv.setSecret(secret)
			rcv.refuseEvery.Store(4) // a refusal now and then: retries interleave with new events
			a, clientID := noCodeFixture(t, env)
			b := env.startServer(t)
			admins := []map[string]string{adminHeader(t, a, env.createClient(t, "--name", "backend", "--admin"))}
			admins = append(admins, admins[0])
			nodes := []*server{a, b}

			const users, rounds = 3, 8
			want := map[string][]string{}
			ids := make([]string, users)
			for i := range ids {
				ids[i] = signUp(t, nodes[i%2], clientID, fmt.Sprintf("two%d@example.com", i))
				want[ids[i]] = []string{"user.created"}
			}
			for r := 1; r <= rounds; r++ {
				for i, u := range ids {
					renameUser(t, nodes[(r+i)%2], admins[(r+i)%2], u, stepName(r))
					want[u] = append(want[u], "user.updated "+stepName(r))
				}
			}
			got := rcv.waitForEvents(t, users*(1+rounds), 60*time.Second)
			checkOrder(t, got, want)
			if n := rcv.overlapping(); n != 0 {
				t.Errorf("%d deliveries about one user were in flight at once", n)
			}
			if n := rcv.badSig.Load(); n != 0 {
				t.Errorf("%d deliveries failed the signature check", n)
			}
		})
	}
}
