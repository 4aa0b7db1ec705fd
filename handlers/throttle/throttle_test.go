package throttle

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/handlers/jsonapi"
)

func TestIPKeyGroupsAnIPv6SlashSixtyFour(t *testing.T) {
	key := func(peer string) string {
		r := httptest.NewRequest(http.MethodPost, "/login", nil)
		r.RemoteAddr = peer
		return ipKey(r)
	}
	tests := []struct {
		a, b string
		same bool
	}{
		{"[2001:db8:1:2::1]:5000", "[2001:db8:1:2:ffff::9]:6000", true},
		{"[2001:db8:1:2::1]:5000", "[2001:db8:1:3::1]:5000", false},
		{"203.0.113.9:5000", "203.0.113.10:5000", false},
		{"[::ffff:203.0.113.9]:5000", "203.0.113.9:6000", true},
	}
	for _, tt := range tests {
		if ka, kb := key(tt.a), key(tt.b); (ka == kb) != tt.same {
			t.Errorf("ipKey(%s) = %q, ipKey(%s) = %q; same = %v, want %v", tt.a, ka, tt.b, kb, ka == kb, tt.same)
		}
	}
}

func TestSecondsRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Second: "1", 1500 * time.Millisecond: "2", time.Millisecond: "1", 15 * time.Minute: "900"} {
		if got := Seconds(d); got != want {
			t.Errorf("Seconds(%v) = %s, want %s", d, got, want)
		}
	}
}

// fakeStamps answers CredentialStamp from a map; the throttle's other store methods are not called here.
type fakeStamps struct {
	throttleStore
	stamps map[string]string
}

func (f *fakeStamps) CredentialStamp(_ context.Context, pool, email string) (string, error) {
	return f.stamps[pool+"/"+strings.ToLower(email)], nil // as the store: emails compare case-insensitively
}

// A device token names one account on one device, under its current password only.
func TestDeviceTokens(t *testing.T) {
	store := &fakeStamps{stamps: map[string]string{"default/ada@example.com": "stamp-1", "default/bob@example.com": "stamp-b"}}
	th := &Throttle{Store: store, DeviceKey: []byte("0123456789abcdef0123456789abcdef")}
	tok := th.DeviceToken("default", "ada@example.com", "stamp-1", "")
	id, _, _ := strings.Cut(tok, ".")
	if !WellFormedDeviceToken(tok) || len(tok) > MaxDeviceTokenLen {
		t.Fatalf("token %q is not well formed", tok)
	}
	ctx := context.Background()
	if got := th.DeviceOf(ctx, []string{"junk", tok}, "default", "ADA@example.com"); got != id {
		t.Errorf("DeviceOf(own token) = %q, want %q (emails compare case-insensitively)", got, id)
	}
	if got := th.DeviceOf(ctx, []string{tok}, "default", "bob@example.com"); got != "" {
		t.Errorf("another account's token counted: %q", got)
	}
	if got := th.DeviceOf(ctx, []string{tok}, "staff", "ada@example.com"); got != "" {
		t.Errorf("another pool's token counted: %q", got)
	}
	store.stamps["default/ada@example.com"] = "stamp-2" // the password changed
	if got := th.DeviceOf(ctx, []string{tok}, "default", "ada@example.com"); got != "" {
		t.Errorf("a token from before the password change counted: %q", got)
	}
	if !th.IsAccountToken(tok, "default", "ada@example.com", "stamp-1") || th.IsAccountToken(tok, "default", "ada@example.com", "stamp-2") {
		t.Error("IsAccountToken does not tell this account's token under its stamp")
	}
	if again := th.DeviceToken("default", "ada@example.com", "stamp-2", id); !strings.HasPrefix(again, id+".") {
		t.Errorf("a device's new token %q does not keep its id %q", again, id)
	}
	off := &Throttle{Store: store}
	if off.DeviceToken("default", "ada@example.com", "stamp-1", "") != "" || off.DeviceOf(ctx, []string{tok}, "default", "ada@example.com") != "" {
		t.Error("device tokens without a key")
	}
}

func TestRefusal(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/auth/login", nil)
	if err := Refusal(r, 0, nil); err != nil {
		t.Fatalf("an attempt that may go ahead refused: %v", err)
	}
	var e *jsonapi.Error
	if err := Refusal(r, 1500*time.Millisecond, nil); !errors.As(err, &e) || e.Status != 429 || e.Code != jsonapi.TooManyRequests {
		t.Fatalf("wait: %v, want 429 too_many_requests", err)
	}
	rec := httptest.NewRecorder()
	e.Send(rec)
	if rec.Header().Get("Retry-After") != "2" {
		t.Errorf("Retry-After = %q, want 2", rec.Header().Get("Retry-After"))
	}
	if err := Refusal(r, 0, errors.New("no such table: login_throttle")); !errors.As(err, &e) || e.Status != 503 ||
		!strings.Contains(err.Error(), "sign-in throttle unavailable: no such table") {
		t.Fatalf("store failure: %v, want 503 with the cause", err)
	}
}
