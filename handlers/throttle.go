package handlers

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/latchkey/latchkey/models"
)

type throttleStore interface {
	ThrottleCheck(ctx context.Context, keys []string, now time.Time) (time.Duration, error)
	ThrottleFailure(ctx context.Context, key string, now time.Time, p models.ThrottlePolicy) (time.Duration, error)
	ThrottleReset(ctx context.Context, key string) error
}

// Throttle slows password guessing per account and per client IP with exponential back-off kept in the database,
// so every node enforces the same limits. Back-off is capped, so strangers can delay an account but never lock
// it out for good.
type Throttle struct {
	Store   throttleStore
	Account models.ThrottlePolicy
	IP      models.ThrottlePolicy
	Now     func() time.Time
}

// DefaultAccountPolicy: 5 free failures, then 1s, 2s, 4s … up to 15 minutes; forgotten after an hour quiet.
var DefaultAccountPolicy = models.ThrottlePolicy{Free: 5, Base: time.Second, Max: 15 * time.Minute, Window: time.Hour}

// DefaultIPPolicy is looser, since many people can share one address.
var DefaultIPPolicy = models.ThrottlePolicy{Free: 30, Base: time.Second, Max: 15 * time.Minute, Window: time.Hour}

func accountKey(pool, email string) string {
	return "acct:" + pool + ":" + strings.ToLower(strings.TrimSpace(email))
}

// ipKey is the client's IPv4 address, or the /64 of its IPv6 one: a single host is commonly given a whole /64,
// and stepping through it must not buy fresh failures.
func ipKey(r *http.Request) string {
	ip := clientIP(r)
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return "ip:" + p.String()
		}
	}
	return "ip:" + ip
}

func (t *Throttle) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// wait reports how long this account and IP must still wait. A storage error fails open (logged): throttling is
// a brake, and an outage of it must not lock everyone out.
func (t *Throttle) wait(r *http.Request, pool, email string) time.Duration {
	if t == nil {
		return 0
	}
	d, err := t.Store.ThrottleCheck(r.Context(), []string{accountKey(pool, email), ipKey(r)}, t.now())
	if err != nil {
		Logger(r.Context()).Error("throttle check", "error", err)
		return 0
	}
	return d
}

// allow answers 429 with Retry-After (JSON) when the caller must wait.
func (t *Throttle) allow(w http.ResponseWriter, r *http.Request, pool, email string) bool {
	if d := t.wait(r, pool, email); d > 0 {
		Logger(r.Context()).Info("sign-in throttled", "retry_after", d)
		w.Header().Set("Retry-After", retryAfter(d))
		apiError(w, http.StatusTooManyRequests, "too_many_requests", "Too many attempts. Try again in "+retryAfter(d)+" seconds.")
		return false
	}
	return true
}

func (t *Throttle) failed(r *http.Request, pool, email string) {
	if t == nil {
		return
	}
	now := t.now()
	if _, err := t.Store.ThrottleFailure(r.Context(), accountKey(pool, email), now, t.Account); err != nil {
		Logger(r.Context()).Error("throttle record", "error", err)
	}
	if _, err := t.Store.ThrottleFailure(r.Context(), ipKey(r), now, t.IP); err != nil {
		Logger(r.Context()).Error("throttle record", "error", err)
	}
}

func (t *Throttle) succeeded(r *http.Request, pool, email string) {
	if t == nil {
		return
	}
	if err := t.Store.ThrottleReset(r.Context(), accountKey(pool, email)); err != nil {
		Logger(r.Context()).Error("throttle reset", "error", err)
	}
}
