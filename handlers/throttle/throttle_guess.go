package throttle

import (
	"context"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/models"
)

// DefaultUserCodePolicy paces guesses at device user codes per client IP: 5 wrong codes free, then 1s, 2s, 4s …
// up to 15 minutes; forgotten after an hour quiet. A right code gives its attempt back.
var DefaultUserCodePolicy = models.ThrottlePolicy{Free: 5, Base: time.Second, Max: 15 * time.Minute, Window: time.Hour}

// Guess is one reserved try at a short code (a device's user code) from one IP: counted before the code is
// looked up, given back only when it was right.
type Guess struct {
	ctx  context.Context
	t    *Throttle
	keys []models.ThrottleKey
}

// ReserveGuess counts one guess of kind from the request's IP under policy p. A wait > 0 means the code must not
// be looked up; an error that the limit could not be consulted (never fail open).
func (t *Throttle) ReserveGuess(r *http.Request, kind string, p models.ThrottlePolicy) (*Guess, time.Duration, error) {
	return t.reserveGuess(r, kind, models.ThrottleKey{Key: kind + ":" + ipKey(r), Policy: p})
}

// reserveGuess counts one guess on every key (all or none, models.Store.ThrottleReserve).
func (t *Throttle) reserveGuess(r *http.Request, kind string, keys ...models.ThrottleKey) (*Guess, time.Duration, error) {
	g := &Guess{ctx: context.WithoutCancel(r.Context()), t: t, keys: keys}
	if t == nil {
		return g, 0, nil
	}
	wait, _, err := t.Store.ThrottleReserve(g.ctx, t.now(), keys...)
	if wait > 0 {
		t.rejected(kind)
	}
	return g, wait, err
}

// Right: the code was right; the guess is given back.
func (g *Guess) Right() {
	if g.t != nil {
		for _, k := range g.keys {
			g.refund(k)
		}
	}
}

func (g *Guess) refund(k models.ThrottleKey) {
	(&Attempt{ctx: g.ctx, t: g.t}).refund(k)
}
