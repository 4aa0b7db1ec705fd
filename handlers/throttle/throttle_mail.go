package throttle

import (
	"net/http"
	"strings"
	"time"

	"github.com/latchkey/latchkey/models"
)

// DefaultMailPolicy limits mails a stranger can make us send to one address from one IP: 3 at once, then one
// a minute, doubling up to an hour; an hour quiet starts afresh.
var DefaultMailPolicy = models.ThrottlePolicy{Free: 3, Base: time.Minute, Max: time.Hour, Window: time.Hour}

// ReserveMail counts one request for a mail of purpose to email in pool from this client's IP (the same
// count for an address that has an account and one that has not, so the answer never tells). A wait > 0 or an
// error means no mail may be sent; see Refusal.
func (t *Throttle) ReserveMail(r *http.Request, purpose, pool, email string) (time.Duration, error) {
	if t == nil {
		return 0, nil
	}
	key := "mail:" + purpose + ":" + pool + ":" + strings.ToLower(strings.TrimSpace(email)) + ":" + ipKey(r)
	wait, _, err := t.Store.ThrottleReserve(r.Context(), t.now(), models.ThrottleKey{Key: key, Policy: DefaultMailPolicy})
	return wait, err
}
