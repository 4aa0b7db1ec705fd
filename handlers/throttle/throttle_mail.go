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
//
// It is counted twice, all or nothing: per address and IP (DefaultMailPolicy), whose limit the asker is told
// (wait > 0); and per address from anywhere (DefaultMailAccountPolicy), so many IPs cannot flood one mailbox or
// collect codes to guess at. Past that second limit send is false and wait 0: the asker gets the usual answer
// and no mail goes, so it learns nothing and the mailbox's owner is not told to wait by a stranger's requests.
func (t *Throttle) ReserveMail(r *http.Request, purpose, pool, email string) (wait time.Duration, send bool, err error) {
	if t == nil {
		return 0, true, nil
	}
	account := "mail:" + purpose + ":" + pool + ":" + strings.ToLower(strings.TrimSpace(email))
	wait, refusedBy, err := t.Store.ThrottleReserve(r.Context(), t.now(),
		models.ThrottleKey{Key: account + ":" + ipKey(r), Policy: DefaultMailPolicy},
		models.ThrottleKey{Key: account, Policy: DefaultMailAccountPolicy})
	if err == nil && wait > 0 && refusedBy == 1 {
		t.rejected("mail_account")
		return 0, false, nil
	}
	return wait, wait == 0, err
}

// DefaultMailAccountPolicy limits the mails of one purpose to one address, whoever asks: 5 at once, then one in
// 15 minutes, doubling up to an hour.
var DefaultMailAccountPolicy = models.ThrottlePolicy{Free: 5, Base: 15 * time.Minute, Max: time.Hour, Window: time.Hour}

// The policies for typed mail codes (6 digits): per account 10 wrong codes an hour, then a minute, doubling up to
// an hour, whatever the IPs (each mail also allows only 5 guesses at its own code); per IP 30, then a second,
// doubling up to 15 minutes. A right code gives its guess back.
var (
	DefaultMailCodeAccountPolicy = models.ThrottlePolicy{Free: 10, Base: time.Minute, Max: time.Hour, Window: time.Hour}
	DefaultMailCodeIPPolicy      = models.ThrottlePolicy{Free: 30, Base: time.Second, Max: 15 * time.Minute, Window: time.Hour}
)

// ReserveMailCode counts one typed code for email in pool, before it is checked: per account and per IP. A wait
// > 0 means the code must not be checked; an error that the limit could not be consulted (never fail open).
func (t *Throttle) ReserveMailCode(r *http.Request, pool, email string) (*Guess, time.Duration, error) {
	account := "mailcode:" + pool + ":" + strings.ToLower(strings.TrimSpace(email))
	return t.reserveGuess(r, "mail_code",
		models.ThrottleKey{Key: account, Policy: DefaultMailCodeAccountPolicy},
		models.ThrottleKey{Key: "mailcode:" + ipKey(r), Policy: DefaultMailCodeIPPolicy})
}
