package throttle

import (
	"context"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/telemetry"
)

// PasskeyBeginPolicy limits the passwordless passkey sign-ins an address may begin (each stores a ceremony row
// for 5 minutes), as DefaultPARPolicy limits pushes: 60 at once, then one a second; a quiet minute starts afresh.
var PasskeyBeginPolicy = models.ThrottlePolicy{Free: 60, Base: time.Second, Max: time.Second, Window: time.Minute}

// ReservePasskey counts one try at a passwordless passkey sign-in before its assertion is checked, per IP (the
// user is unknown until the assertion names one): a try that does not verify stays counted, as a wrong password.
func (t *Throttle) ReservePasskey(r *http.Request) (*Attempt, time.Duration, error) {
	a := &Attempt{ctx: context.WithoutCancel(r.Context()), t: t}
	if t == nil {
		return a, 0, nil
	}
	a.ip = models.ThrottleKey{Key: ipKey(r), Policy: t.IP}
	a.account = models.ThrottleKey{Key: "passkey:" + ipKey(r), Policy: t.Account}
	wait, by, err := t.Store.ThrottleReserve(a.ctx, t.now(), a.ip, a.account)
	if wait > 0 && by >= 0 {
		t.rejected([]string{telemetry.ThrottleIP, telemetry.ThrottleAccount}[by])
	}
	return a, wait, err
}
