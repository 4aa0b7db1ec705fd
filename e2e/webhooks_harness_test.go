package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// verifyLatchkeySignature is the README's receiver check, word for word in Go: t=<unix>,v1=<hex HMAC-SHA-256 of
// t + "." + body under the secret>, compared in constant time, t within tolerance of now.
func verifyLatchkeySignature(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("malformed Latchkey-Signature")
	}
	if math.Abs(now.Sub(time.Unix(t, 0)).Seconds()) > tolerance.Seconds() {
		return errors.New("timestamp outside tolerance")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range sigs {
		if got, err := hex.DecodeString(s); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("signature mismatch")
}

// webhookEvent is what a receiver accepted.
type webhookEvent struct {
	EventID, Type, DeliveryID, User, Name string
}

// webhookReceiver is a backend's webhook endpoint. It checks every delivery's signature with its secret; while
// down it refuses deliveries, with a 503 or by dropping the connection, in turn; it keeps what it accepted, in
// order, and counts deliveries about one user that were in flight at once (which ordered delivery forbids).
type webhookReceiver struct {
	*httptest.Server
	secret  atomic.Pointer[string]
	down    atomic.Bool
	hold    time.Duration // each request takes this long, so an overlap would show
	refused atomic.Int32
	// refuseEvery n > 0 refuses every n-th request that is not refused for being down.
	refuseEvery atomic.Int32
	requests    atomic.Int32
	badSig      atomic.Int32
	mu          sync.Mutex
	inFlight    map[string]int
	overlaps    int
	got         []webhookEvent
}

func newWebhookReceiver(t *testing.T, hold time.Duration) *webhookReceiver {
	r := &webhookReceiver{hold: hold, inFlight: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		var ev struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			Data struct {
				ID     string `json:"id"`
				UserID string `json:"user_id"`
				Name   string `json:"name"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body is not JSON: %v\n%s", err, body)
		}
		user := ev.Data.ID
		if strings.HasPrefix(ev.Type, "session.") {
			user = ev.Data.UserID
		}
		r.mu.Lock()
		r.inFlight[user]++
		if r.inFlight[user] > 1 {
			r.overlaps++
		}
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			r.inFlight[user]--
			r.mu.Unlock()
		}()
		time.Sleep(r.hold)
		if r.down.Load() {
			if r.refused.Add(1)%2 == 0 {
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close() // no answer at all
					return
				}
			}
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if n := r.refuseEvery.Load(); n > 0 && r.requests.Add(1)%n == 0 {
			r.refused.Add(1)
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		secret := r.secret.Load()
		if secret == nil {
			http.Error(w, "no secret yet", http.StatusServiceUnavailable)
			return
		}
		if err := verifyLatchkeySignature(*secret, req.Header.Get("Latchkey-Signature"), body, time.Now(), 5*time.Minute); err != nil {
			r.badSig.Add(1)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if req.Header.Get("Latchkey-Event-Id") != ev.ID || req.Header.Get("Latchkey-Event-Type") != ev.Type ||
			req.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(req.Header.Get("Latchkey-Delivery-Id"), "obx_") {
			t.Errorf("webhook headers %v for event %s %s", req.Header, ev.ID, ev.Type)
		}
		r.mu.Lock()
		r.got = append(r.got, webhookEvent{EventID: ev.ID, Type: ev.Type, DeliveryID: req.Header.Get("Latchkey-Delivery-Id"), User: user, Name: ev.Data.Name})
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *webhookReceiver) setSecret(s string) { r.secret.Store(&s) }

func (r *webhookReceiver) accepted() []webhookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *webhookReceiver) overlapping() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.overlaps
}

// firstArrivals is, per user, the events accepted in the order each first arrived (a redelivered one counts
// where it first came), as "type name".
func firstArrivals(got []webhookEvent) map[string][]string {
	seen := map[string]bool{}
	out := map[string][]string{}
	for _, e := range got {
		if seen[e.EventID] {
			continue
		}
		seen[e.EventID] = true
		out[e.User] = append(out[e.User], strings.TrimSpace(e.Type+" "+e.Name))
	}
	return out
}

// waitForEvents waits until the receiver accepted n distinct events.
func (r *webhookReceiver) waitForEvents(t *testing.T, n int, within time.Duration) []webhookEvent {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := r.accepted()
		distinct := map[string]bool{}
		for _, e := range got {
			distinct[e.EventID] = true
		}
		if len(distinct) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver accepted %d distinct events within %v, want %d (refused %d)", len(distinct), within, n, r.refused.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// webhookEnv: deliveries to the test's loopback receivers, polled and retried quickly.
func webhookEnv(env testEnv) {
	env["LATCHKEY_WEBHOOK_ALLOW_PRIVATE"] = "true"
	env["LATCHKEY_OUTBOX_POLL"] = "50ms"
	env["LATCHKEY_OUTBOX_RETRY_BASE"] = "100ms"
}

// adminHeader is an admin client's client_credentials token for the admin API, as a header.
func adminHeader(t *testing.T, srv *server, c createdClient) map[string]string {
	t.Helper()
	return bearerHeader(adminToken(t, srv.URL, c))
}

// signUp creates a user of the fixture's pool through the token API and returns its id.
func signUp(t *testing.T, srv *server, clientID, email string) string {
	t.Helper()
	code, _, b := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": clientID, "email": email, "password": "violet-tractor-47"}, nil)
	if code != 201 {
		t.Fatalf("signup %s: %d %v", email, code, b)
	}
	return b["user"].(map[string]any)["id"].(string)
}

// renameUser changes a user's name through the admin API: one user.updated event.
func renameUser(t *testing.T, srv *server, admin map[string]string, id, name string) {
	t.Helper()
	if code, _, b := apiCall(t, "PATCH", srv.URL+"/api/v1/admin/users/"+id, map[string]any{"name": name}, admin); code != 200 {
		t.Fatalf("rename %s: %d %v", id, code, b)
	}
}

// createWebhookCLI runs webhooks create --json and returns the webhook's id and secret.
func createWebhookCLI(t *testing.T, env testEnv, args ...string) (string, string) {
	t.Helper()
	out := env.cli(t, append([]string{"webhooks", "create", "--json"}, args...)...)
	var w struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(out), &w); err != nil || w.ID == "" || !strings.HasPrefix(w.Secret, "whsec_") {
		t.Fatalf("webhooks create: %v\n%s", err, out)
	}
	return w.ID, w.Secret
}

// checkOrder fails unless every user's events first arrived in the order they happened.
func checkOrder(t *testing.T, got []webhookEvent, want map[string][]string) {
	t.Helper()
	arrivals := firstArrivals(got)
	for user, w := range want {
		if !slices.Equal(arrivals[user], w) {
			t.Errorf("user %s: events arrived as\n%v\nwant\n%v", user, arrivals[user], w)
		}
	}
}

func stepName(i int) string { return fmt.Sprintf("step-%02d", i) }
