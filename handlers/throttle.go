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
	ThrottleReserve(ctx context.Context, now time.Time, keys ...models.ThrottleKey) (time.Duration, error)
	ThrottleRefund(ctx context.Context, k models.ThrottleKey) error
	ThrottleReset(ctx context.Context, key string) error
	CredentialStamp(ctx context.Context, pool, email string) (string, error)
}

// Throttle slows password guessing per account and per client IP, and sign-ups per IP, with exponential
// back-off kept in the database, so every node enforces the same limits. Every place a person types a secret
// reserves the attempt before the hash runs (see attempt). Back-off is capped, so strangers can delay an
// account but never lock it out for good, and a device that has signed in to it keeps its own count (see
// deviceOf), so they cannot delay its owner there at all.
type Throttle struct {
	Store   throttleStore
	Account models.ThrottlePolicy
	IP      models.ThrottlePolicy
	// Signup limits successful sign-ups per IP; zero: DefaultSignupPolicy.
	Signup models.ThrottlePolicy
	// DeviceKey keys the device tokens that give a device that signed in to an account its own count (see
	// deviceOf); empty: none are issued or honoured.
	DeviceKey []byte
	Now       func() time.Time
}

// DefaultAccountPolicy: 5 free attempts, then 1s, 2s, 4s … up to 15 minutes; forgotten after an hour quiet.
var DefaultAccountPolicy = models.ThrottlePolicy{Free: 5, Base: time.Second, Max: 15 * time.Minute, Window: time.Hour}

// DefaultIPPolicy is looser, since many people can share one address.
var DefaultIPPolicy = models.ThrottlePolicy{Free: 30, Base: time.Second, Max: 15 * time.Minute, Window: time.Hour}

// DefaultSignupPolicy: 10 successful sign-ups per IP, then one an hour until the address has been quiet for an
// hour.
var DefaultSignupPolicy = models.ThrottlePolicy{Free: 10, Base: time.Hour, Max: time.Hour, Window: time.Hour}

func accountKey(pool, email string) string {
	return "acct:" + pool + ":" + strings.ToLower(strings.TrimSpace(email))
}

// ipKey is the client's IPv4 address, or the /64 of its IPv6 one: a single host is commonly given a whole /64,
// and stepping through it must not buy fresh attempts.
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

// attempt is one reserved try at a secret. It is counted before the password is checked; only the outcome
// decides what is given back: succeeded resets the account and refunds the IP, failed keeps everything counted,
// void (nothing was checked) refunds everything. Its ctx outlives the client, so hanging up changes nothing.
type attempt struct {
	ctx     context.Context
	t       *Throttle
	ip      models.ThrottleKey
	signup  *models.ThrottleKey // counts successful sign-ups only
	account models.ThrottleKey
}

// reserve counts a sign-in attempt for this account and IP. device is the id deviceOf found in the attempt's
// device token for this account, or "": with one the attempt counts on that device's key for the account instead
// of the account's own. A wait > 0 means the caller must not check the password; an error means the limits
// could not be consulted, and the caller must not check it either.
func (t *Throttle) reserve(r *http.Request, pool, email, device string) (*attempt, time.Duration, error) {
	return t.reserveKeys(r, pool, email, device, false)
}

// reserveSignup is reserve plus one successful sign-up for this IP.
func (t *Throttle) reserveSignup(r *http.Request, pool, email string) (*attempt, time.Duration, error) {
	return t.reserveKeys(r, pool, email, "", true)
}

func (t *Throttle) reserveKeys(r *http.Request, pool, email, device string, signup bool) (*attempt, time.Duration, error) {
	a := &attempt{ctx: context.WithoutCancel(r.Context()), t: t}
	if t == nil {
		return a, 0, nil
	}
	a.ip = models.ThrottleKey{Key: ipKey(r), Policy: t.IP}
	a.account = models.ThrottleKey{Key: accountKey(pool, email), Policy: t.Account}
	if device != "" {
		// A device's success then clears only its own count: it must not hand strangers fresh free attempts.
		a.account.Key += ":dev:" + device
	}
	// The IP key first: a blocked address creates no account rows.
	keys := []models.ThrottleKey{a.ip}
	if signup {
		p := t.Signup
		if p == (models.ThrottlePolicy{}) {
			p = DefaultSignupPolicy
		}
		a.signup = &models.ThrottleKey{Key: "signup:" + a.ip.Key, Policy: p}
		keys = append(keys, *a.signup)
	}
	keys = append(keys, a.account)
	wait, err := t.Store.ThrottleReserve(a.ctx, t.now(), keys...)
	return a, wait, err
}

// succeeded: the secret was right. The account (or the device's key for it) starts afresh; the IP gets this
// attempt back.
func (a *attempt) succeeded() {
	if a.t == nil {
		return
	}
	if err := a.t.Store.ThrottleReset(a.ctx, a.account.Key); err != nil {
		Logger(a.ctx).Error("throttle reset", "error", err)
	}
	a.refund(a.ip)
}

// failed: the secret was wrong, the email taken, or a sign-up failed after its password was hashed; the attempt
// stays counted. A sign-up reservation is given back, since only successful sign-ups count there.
func (a *attempt) failed() {
	if a.t != nil && a.signup != nil {
		a.refund(*a.signup)
	}
}

// void: no password was hashed (a server fault before the check), so every key gets its attempt back. Input that
// cannot succeed is refused before reserving, never voided after: a void must not buy free hashes.
func (a *attempt) void() {
	if a.t == nil {
		return
	}
	a.refund(a.ip)
	if a.signup != nil {
		a.refund(*a.signup)
	}
	a.refund(a.account)
}

func (a *attempt) refund(k models.ThrottleKey) {
	if err := a.t.Store.ThrottleRefund(a.ctx, k); err != nil {
		Logger(a.ctx).Error("throttle refund", "error", err)
	}
}

// detached is r on a context the client cannot cancel. The API calls that take a password use it from the start:
// once sent, an attempt runs to its end, so whether a guess was checked and counted never depends on when the
// client hung up.
func detached(r *http.Request) *http.Request {
	return r.WithContext(context.WithoutCancel(r.Context()))
}

// refuseAPI answers a reservation that did not go through: 429 when the caller must wait, 503 when the limits
// could not be consulted (the throttle never fails open). It reports whether it answered.
func refuseAPI(w http.ResponseWriter, r *http.Request, wait time.Duration, err error) bool {
	switch {
	case err != nil:
		Logger(r.Context()).Error("sign-in throttle unavailable", "error", err)
		setRetryAfter(w)
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "Sign-in is temporarily unavailable; try again shortly.")
		return true
	case wait > 0:
		Logger(r.Context()).Info("sign-in throttled", "retry_after", retryAfter(wait))
		w.Header().Set("Retry-After", retryAfter(wait))
		apiError(w, http.StatusTooManyRequests, "too_many_requests", "Too many attempts. Try again in "+retryAfter(wait)+" seconds.")
		return true
	}
	return false
}
