// Package throttle slows password guessing and other costly requests per account, per device and per client IP,
// with exponential back-off kept in the database so every node enforces the same limits. The browser pages, the
// token API and pushed authorization requests share it.
package throttle

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/passwords"
	"github.com/latchkey/latchkey/telemetry"
)

type throttleStore interface {
	ThrottleReserve(ctx context.Context, now time.Time, keys ...models.ThrottleKey) (time.Duration, int, error)
	ThrottleRefund(ctx context.Context, k models.ThrottleKey) error
	ThrottleReset(ctx context.Context, key string) error
	CredentialStamp(ctx context.Context, pool, email string) (string, error)
	RecordSignInRefused(ctx context.Context, pool, email, reason string) error
}

// Throttle slows password guessing per account and per client IP, and sign-ups per IP, with exponential
// back-off kept in the database, so every node enforces the same limits. Every place a person types a secret
// reserves the attempt before the hash runs (see Attempt). Back-off is capped, so strangers can delay an
// account but never lock it out for good, and a device that has signed in to it keeps its own count (see
// DeviceOf), so they cannot delay its owner there at all.
type Throttle struct {
	Store   throttleStore
	Account models.ThrottlePolicy
	IP      models.ThrottlePolicy
	// Signup limits successful sign-ups per IP; zero: DefaultSignupPolicy.
	Signup models.ThrottlePolicy
	// DeviceKey keys the device tokens that give a device that signed in to an account its own count (see
	// DeviceOf); empty: none are issued or honoured.
	DeviceKey []byte
	Now       func() time.Time
	// Rejections counts refused requests by which limit refused them (telemetry's Throttle kinds); nil: none.
	Rejections interface{ ThrottleRejected(kind string) }
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
	ip := request.ClientIP(r)
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

// Attempt is one reserved try at a secret. It is counted before the password is checked; only the outcome
// decides what is given back: succeeded resets the account and refunds the IP, failed keeps everything counted,
// void (nothing was checked) refunds everything. Its ctx outlives the client, so hanging up changes nothing.
type Attempt struct {
	ctx     context.Context
	t       *Throttle
	ip      models.ThrottleKey
	signup  *models.ThrottleKey // counts successful sign-ups only
	account models.ThrottleKey
}

// Reserve counts a sign-in attempt for this account and IP. device is the id DeviceOf found in the attempt's
// device token for this account, or "": with one the attempt counts on that device's key for the account instead
// of the account's own. A wait > 0 means the caller must not check the password; an error means the limits
// could not be consulted, and the caller must not check it either.
func (t *Throttle) Reserve(r *http.Request, pool, email, device string) (*Attempt, time.Duration, error) {
	return t.reserveKeys(r, pool, email, device, false)
}

// ReserveSignup is Reserve plus one successful sign-up for this IP.
func (t *Throttle) ReserveSignup(r *http.Request, pool, email string) (*Attempt, time.Duration, error) {
	return t.reserveKeys(r, pool, email, "", true)
}

func (t *Throttle) reserveKeys(r *http.Request, pool, email, device string, signup bool) (*Attempt, time.Duration, error) {
	a := &Attempt{ctx: context.WithoutCancel(r.Context()), t: t}
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
	kinds := []string{telemetry.ThrottleIP}
	if signup {
		p := t.Signup
		if p == (models.ThrottlePolicy{}) {
			p = DefaultSignupPolicy
		}
		a.signup = &models.ThrottleKey{Key: "signup:" + a.ip.Key, Policy: p}
		keys = append(keys, *a.signup)
		kinds = append(kinds, telemetry.ThrottleSignup)
	}
	keys = append(keys, a.account)
	kinds = append(kinds, telemetry.ThrottleAccount)
	wait, by, err := t.Store.ThrottleReserve(a.ctx, t.now(), keys...)
	if wait > 0 && by >= 0 {
		t.rejected(kinds[by])
		// A refused sign-in is in the audit log too (reason throttled): one row per refusal, which retention bounds.
		if !signup {
			if err := t.Store.RecordSignInRefused(a.ctx, pool, email, models.ReasonThrottled); err != nil {
				request.Logger(a.ctx).Error("record throttled sign-in", "error", err)
			}
		}
	}
	return a, wait, err
}

func (t *Throttle) rejected(kind string) {
	if t.Rejections != nil {
		t.Rejections.ThrottleRejected(kind)
	}
}

// Succeeded: the secret was right. The account (or the device's key for it) starts afresh; the IP gets this
// attempt back.
func (a *Attempt) Succeeded() {
	if a.t == nil {
		return
	}
	if err := a.t.Store.ThrottleReset(a.ctx, a.account.Key); err != nil {
		request.Logger(a.ctx).Error("throttle reset", "error", err)
	}
	a.refund(a.ip)
}

// Failed: the secret was wrong, the email taken, or a sign-up failed after its password was hashed; the attempt
// stays counted. A sign-up reservation is given back, since only successful sign-ups count there.
func (a *Attempt) Failed() {
	if a.t != nil && a.signup != nil {
		a.refund(*a.signup)
	}
}

// Void: no password was hashed (a server fault before the check), so every key gets its attempt back. Input that
// cannot succeed is refused before reserving, never voided after: a void must not buy free hashes.
func (a *Attempt) Void() {
	if a.t == nil {
		return
	}
	a.refund(a.ip)
	if a.signup != nil {
		a.refund(*a.signup)
	}
	a.refund(a.account)
}

func (a *Attempt) refund(k models.ThrottleKey) {
	if err := a.t.Store.ThrottleRefund(a.ctx, k); err != nil {
		request.Logger(a.ctx).Error("throttle refund", "error", err)
	}
}

// Context is the attempt's context: the request's, which the client cannot cancel. Check the password on it.
func (a *Attempt) Context() context.Context { return a.ctx }

// ReservePush counts one request of a costly kind (a public client's pushed authorization request) against the
// client's IP under key kind, with policy p. Nothing is ever given back. A wait > 0 means the request must not go
// ahead; an error that the limit could not be consulted (never fail open).
func (t *Throttle) ReservePush(r *http.Request, kind string, p models.ThrottlePolicy) (time.Duration, error) {
	wait, _, err := t.Store.ThrottleReserve(context.WithoutCancel(r.Context()), t.now(), models.ThrottleKey{Key: kind + ":" + ipKey(r), Policy: p})
	if wait > 0 {
		t.rejected(kind)
	}
	return wait, err
}

// Seconds formats a wait as whole seconds, rounding up, for Retry-After and messages.
func Seconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// Refusal is the JSON APIs' answer to a reservation that did not go through, for jsonapi.Write: 429 with
// Retry-After when the caller must wait, 503 when the limits could not be consulted (the throttle never fails
// open); nil when the attempt may go ahead.
func Refusal(r *http.Request, wait time.Duration, err error) error {
	switch {
	case err != nil:
		return jsonapi.New(http.StatusServiceUnavailable, jsonapi.TemporarilyUnavailable, "Sign-in is temporarily unavailable; try again shortly.").
			WithCause(fmt.Errorf("sign-in throttle unavailable: %w", err))
	case wait > 0:
		request.Logger(r.Context()).Info("sign-in throttled", "retry_after", Seconds(wait))
		return jsonapi.New(http.StatusTooManyRequests, jsonapi.TooManyRequests, "Too many attempts. Try again in "+Seconds(wait)+" seconds.").
			WithHeader("Retry-After", Seconds(wait))
	}
	return nil
}

// DefaultPARPolicy is the rate of pushed authorization requests per client IP from public clients: 60 pushes at
// once, then one a second for as long as they keep coming; a quiet minute starts afresh. A single address can
// then hold at most a few hundred unused requests (each lives 5 minutes), while a busy office behind one NAT
// keeps a push a second.
var DefaultPARPolicy = models.ThrottlePolicy{Free: 60, Base: time.Second, Max: time.Second, Window: time.Minute}

// Oversized reports whether a sign-in's email or password is over what a stored user may have, so it cannot be
// anyone's: such an attempt is counted like any other and then answered as a wrong password without hashing.
func Oversized(email, password string) bool {
	return len(email) > models.MaxEmailLength || len(password) > passwords.MaxLength
}
