package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Sign-in throttling, shared by every node through the login_throttle table. Callers choose the keys
// (e.g. "acct:customers:ada@example.com", "ip:203.0.113.7"); only hashKey of a key is stored, so the table
// holds no email or IP address.

// ThrottlePolicy says how failures turn into delays.
type ThrottlePolicy struct {
	Free   int           // failures allowed before any delay
	Base   time.Duration // first delay; doubles with each further failure
	Max    time.Duration // cap: nobody is ever locked out longer than this
	Window time.Duration // failures older than this are forgotten
}

func (p ThrottlePolicy) validate() error {
	if p.Free < 0 || p.Base <= 0 || p.Max < p.Base || p.Window <= 0 {
		return fmt.Errorf("%w: throttle policy needs Free >= 0, Base > 0, Max >= Base and Window > 0 (got %+v)", ErrInvalid, p)
	}
	return nil
}

// delay is the block after the failures-th failure: none within Free, then Base, 2*Base, 4*Base, ...,
// capped at Max.
func (p ThrottlePolicy) delay(failures int) time.Duration {
	n := failures - p.Free
	if n <= 0 {
		return 0
	}
	d := p.Base
	for i := 1; i < n; i++ {
		if d >= p.Max/2 { // doubling would reach Max (and, far enough on, overflow)
			return p.Max
		}
		d *= 2
	}
	return min(d, p.Max)
}

// throttleRow is the login_throttle table.
type throttleRow struct {
	KeyHash       string     `gorm:"column:key_hash;primaryKey"`
	Failures      int        `gorm:"column:failures"`
	LastFailureAt time.Time  `gorm:"column:last_failure_at"`
	BlockedUntil  *time.Time `gorm:"column:blocked_until"`
}

func (throttleRow) TableName() string { return "login_throttle" }

// throttleRetention is how long a row is kept after its last failure (once its block has passed too).
const throttleRetention = 24 * time.Hour

// ThrottleCheck returns how long the caller must still wait before trying again (0 = go ahead): the
// largest remaining block among keys at now.
func (s *Store) ThrottleCheck(ctx context.Context, keys []string, now time.Time) (time.Duration, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	now = dbTime(now)
	hashes := make([]string, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if h := hashKey(k); !seen[h] {
			seen[h] = true
			hashes = append(hashes, h)
		}
	}
	var rows []throttleRow
	err := s.conn(ctx).Select("key_hash", "blocked_until").
		Where("key_hash IN ? AND blocked_until > ?", hashes, now).Find(&rows).Error
	if err != nil {
		return 0, fmt.Errorf("check sign-in throttle: %w", mapErr(err))
	}
	var wait time.Duration
	for _, r := range rows {
		if r.BlockedUntil != nil {
			wait = max(wait, r.BlockedUntil.Sub(now))
		}
	}
	return wait, nil
}

// ThrottleFailure records a failed attempt for key at now and returns how long the caller must now wait
// (0 while within p.Free). The count restarts at 1 when the previous failure is older than p.Window; past
// p.Free the key is blocked until now + min(p.Base * 2^(failures-Free-1), p.Max), and a block already in
// place is never shortened. It is atomic across nodes: the count is incremented by an upsert that locks the
// row until the block is written, so racing failures are all counted.
func (s *Store) ThrottleFailure(ctx context.Context, key string, now time.Time, p ThrottlePolicy) (time.Duration, error) {
	if err := p.validate(); err != nil {
		return 0, fmt.Errorf("record sign-in failure: %w", err)
	}
	now = dbTime(now)
	h := hashKey(key)
	var wait time.Duration
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		// Every SET expression sees the row as it was before this statement.
		err := tx.Exec(`INSERT INTO login_throttle (key_hash, failures, last_failure_at, blocked_until)
VALUES (?, 1, ?, NULL)
ON CONFLICT (key_hash) DO UPDATE SET
	failures = CASE WHEN login_throttle.last_failure_at < ? THEN 1 ELSE login_throttle.failures + 1 END,
	last_failure_at = ?`, h, now, now.Add(-p.Window), now).Error
		if err != nil {
			return mapErr(err)
		}
		var row throttleRow
		if err := tx.Where("key_hash = ?", h).Take(&row).Error; err != nil {
			return mapErr(err)
		}
		d := p.delay(row.Failures)
		until := now.Add(d)
		if row.BlockedUntil != nil && !row.BlockedUntil.Before(until) {
			wait = max(row.BlockedUntil.Sub(now), 0)
			return nil
		}
		wait = d
		if d == 0 {
			return nil
		}
		return mapErr(tx.Model(&throttleRow{}).Where("key_hash = ?", h).UpdateColumn("blocked_until", until).Error)
	})
	if err != nil {
		return 0, fmt.Errorf("record sign-in failure: %w", err)
	}
	return wait, nil
}

// ThrottleReset forgets key: its failures and any block (after a successful sign-in, for the account key).
func (s *Store) ThrottleReset(ctx context.Context, key string) error {
	if err := s.conn(ctx).Where("key_hash = ?", hashKey(key)).Delete(&throttleRow{}).Error; err != nil {
		return fmt.Errorf("reset sign-in throttle: %w", mapErr(err))
	}
	return nil
}
