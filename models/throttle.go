package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Sign-in throttling, shared by every node through the login_throttle table. Callers choose the keys
// (e.g. "acct:customers:ada@example.com", "ip:203.0.113.7"); only hashKey of a key is stored, so the table
// holds no email or IP address.
//
// A guard is a reservation: an attempt is counted before the password hash runs, and the same atomic step
// decides whether it may run at all, so no number of parallel requests, nodes or dropped connections gets more
// attempts evaluated than the policy allows. The columns keep their first names: failures is the number of
// attempts counted in the current window, last_failure_at the time of the last one.

// ThrottlePolicy says how attempts turn into waits.
type ThrottlePolicy struct {
	Free   int           // attempts per window that proceed without any wait (at least 1)
	Base   time.Duration // the wait after the Free-th attempt; it doubles with each further one
	Max    time.Duration // cap: nobody is ever locked out longer than this
	Window time.Duration // the count starts again once the last attempt is older than this
}

func (p ThrottlePolicy) validate() error {
	if p.Free < 1 || p.Base <= 0 || p.Max < p.Base || p.Window <= 0 {
		return fmt.Errorf("%w: throttle policy needs Free >= 1, Base > 0, Max >= Base and Window > 0 (got %+v)", ErrInvalid, p)
	}
	return nil
}

// blockAfter is the wait the n-th attempt of a window sets for the next one: none before the Free-th, then
// Base, 2*Base, 4*Base, ..., capped at Max.
func (p ThrottlePolicy) blockAfter(n int) time.Duration {
	k := n - p.Free
	if k < 0 {
		return 0
	}
	d := p.Base
	for range k {
		if d >= p.Max/2 { // doubling would reach Max (and, far enough on, overflow)
			return p.Max
		}
		d *= 2
	}
	return min(d, p.Max)
}

// ThrottleKey is one counter an attempt is reserved on, with its policy.
type ThrottleKey struct {
	Key    string
	Policy ThrottlePolicy
}

// throttleRow is the login_throttle table.
type throttleRow struct {
	KeyHash       string     `gorm:"column:key_hash;primaryKey"`
	Failures      int        `gorm:"column:failures"`
	LastFailureAt time.Time  `gorm:"column:last_failure_at"`
	BlockedUntil  *time.Time `gorm:"column:blocked_until"`
}

func (throttleRow) TableName() string { return "login_throttle" }

// throttleRetention is how long a row is kept after its last attempt (once its block has passed too).
const throttleRetention = 24 * time.Hour

// errThrottled rolls back a reservation one of its keys refused.
var errThrottled = errors.New("throttled")

// ThrottleReserve reserves one attempt at now on every key, in order, as one transaction. It returns 0 when
// the attempt may proceed: each key counted it, and a key whose count reached its policy's Free is now blocked
// for the next wait. While a key is blocked it returns the remaining wait and the index of that key in keys
// (refusedBy; -1 when nothing refused), and counts nothing on any key; keys after the refusing one are not
// touched, so put the caller's IP key before keys a stranger can name.
//
// Each key's row is created or locked by an upsert before it is read (PostgreSQL holds the row lock to the
// commit; SQLite has one writer), so the decision and its write are one step on every node: of any number of
// concurrent attempts, at most Free proceed in a window and then one per block. Call it on a context the
// client cannot cancel.
func (s *Store) ThrottleReserve(ctx context.Context, now time.Time, keys ...ThrottleKey) (wait time.Duration, refusedBy int, err error) {
	for _, k := range keys {
		if err := k.Policy.validate(); err != nil {
			return 0, -1, fmt.Errorf("reserve sign-in attempt: %w", err)
		}
	}
	now = dbTime(now)
	refusedBy = -1
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		for i, k := range keys {
			h := hashKey(k.Key)
			err := tx.Exec(`INSERT INTO login_throttle (key_hash, failures, last_failure_at, blocked_until)
VALUES (?, 0, ?, NULL)
ON CONFLICT (key_hash) DO UPDATE SET failures = login_throttle.failures`, h, now).Error
			if err != nil {
				return mapErr(err)
			}
			var row throttleRow
			if err := tx.Where("key_hash = ?", h).Take(&row).Error; err != nil {
				return mapErr(err)
			}
			if row.BlockedUntil != nil && row.BlockedUntil.After(now) {
				wait, refusedBy = row.BlockedUntil.Sub(now), i
				return errThrottled
			}
			n := row.Failures
			if row.LastFailureAt.Before(now.Add(-k.Policy.Window)) {
				n = 0
			}
			n++
			var until *time.Time
			if d := k.Policy.blockAfter(n); d > 0 {
				u := now.Add(d)
				until = &u
			}
			err = tx.Exec("UPDATE login_throttle SET failures = ?, last_failure_at = ?, blocked_until = ? WHERE key_hash = ?",
				n, now, until, h).Error
			if err != nil {
				return mapErr(err)
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errThrottled):
		return wait, refusedBy, nil
	case err != nil:
		return 0, -1, fmt.Errorf("reserve sign-in attempt: %w", err)
	}
	return 0, -1, nil
}

// ThrottleRefund gives back one attempt reserved on k (one that did not count against the key, e.g. a
// successful sign-in on the IP key). A count that falls below k.Policy.Free loses its block, since the rules
// would not have set one yet; above it the block stays. A row left with no attempts and no block is deleted,
// so refunded attempts leave nothing behind.
func (s *Store) ThrottleRefund(ctx context.Context, k ThrottleKey) error {
	h := hashKey(k.Key)
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		err := tx.Exec(`UPDATE login_throttle SET failures = failures - 1,
	blocked_until = CASE WHEN failures - 1 < ? THEN NULL ELSE blocked_until END
WHERE key_hash = ? AND failures > 0`, k.Policy.Free, h).Error
		if err != nil {
			return mapErr(err)
		}
		return mapErr(tx.Exec("DELETE FROM login_throttle WHERE key_hash = ? AND failures <= 0 AND blocked_until IS NULL", h).Error)
	})
	if err != nil {
		return fmt.Errorf("refund sign-in attempt: %w", err)
	}
	return nil
}

// ThrottleReset forgets key: its count and any block (after a successful sign-in, for the account key).
func (s *Store) ThrottleReset(ctx context.Context, key string) error {
	if err := s.conn(ctx).Where("key_hash = ?", hashKey(key)).Delete(&throttleRow{}).Error; err != nil {
		return fmt.Errorf("reset sign-in throttle: %w", mapErr(err))
	}
	return nil
}
