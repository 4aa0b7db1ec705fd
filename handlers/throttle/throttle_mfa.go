package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/telemetry"
)

// ChallengePolicy limits the codes tried on one MFA challenge: 5, then none for longer than the challenge lives.
var ChallengePolicy = models.ThrottlePolicy{Free: 5, Base: 10 * time.Minute, Max: 10 * time.Minute, Window: 10 * time.Minute}

// ReserveCode counts one try at a user's second factor (a TOTP or recovery code) before it is checked: per IP,
// per user (with the Account policy: a guess at a 6-digit code is cheap, so the same back-off as a password),
// and, when the try answers an MFA challenge, per challenge. The outcome is reported on the Attempt as for a
// password: Succeeded resets the user's count, Failed keeps it.
func (t *Throttle) ReserveCode(r *http.Request, userID, challenge string) (*Attempt, time.Duration, error) {
	a := &Attempt{ctx: context.WithoutCancel(r.Context()), t: t}
	if t == nil {
		return a, 0, nil
	}
	a.ip = models.ThrottleKey{Key: ipKey(r), Policy: t.IP}
	a.account = models.ThrottleKey{Key: "mfa:user:" + userID, Policy: t.Account}
	keys := []models.ThrottleKey{a.ip, a.account}
	kinds := []string{telemetry.ThrottleIP, telemetry.ThrottleAccount}
	if challenge != "" {
		// The challenge's hash, not the token: throttle rows are not secrets' place (a database reader could
		// otherwise finish a sign-in whose password it never saw).
		sum := sha256.Sum256([]byte(challenge))
		keys = append(keys, models.ThrottleKey{Key: "mfa:challenge:" + hex.EncodeToString(sum[:16]), Policy: ChallengePolicy})
		kinds = append(kinds, telemetry.ThrottleAccount)
	}
	wait, by, err := t.Store.ThrottleReserve(a.ctx, t.now(), keys...)
	if wait > 0 && by >= 0 {
		t.rejected(kinds[by])
	}
	return a, wait, err
}
