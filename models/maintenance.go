package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// expiringTables are the tables DeleteExpired sweeps: table, primary key, the condition for a row to go
// (each ? is bound to the cutoff), and how long past `before` rows are kept (cutoff = before - keep). When
// keeps is set, the i-th ? is bound to before - keeps[i] instead.
var expiringTables = []struct {
	table, pk, expired string
	keep               time.Duration
	keeps              []time.Duration
}{
	{tableAccess, "signature", "expires_at < ?", 0, nil},
	{tableRefresh, "signature", "expires_at < ?", 0, nil},
	{tableCode, "signature", "expires_at < ?", 0, nil},
	{tablePKCE, "signature", "expires_at < ?", 0, nil},
	{tableOIDC, "signature", "expires_at < ?", 0, nil},
	{tablePAR, "signature", "expires_at < ?", 0, nil},
	{"oauth2_jti", "jti", "expires_at < ?", 0, nil},
	{"signing_keys", "kid", "not_after < ?", 0, nil},
	{"auth_challenges", "id", "expires_at < ?", 0, nil},
	// A session expires when idle_expires_at passes (it never exceeds expires_at).
	{"browser_sessions", "id", "ended_at < ? OR idle_expires_at < ?", browserSessionRetention, nil},
	// A throttle row goes a day after its last failure, once its block has passed too.
	{"login_throttle", "key_hash", "last_failure_at < ? AND (blocked_until IS NULL OR blocked_until < ?)", 0,
		[]time.Duration{throttleRetention, 0}},
}

// DeleteExpired deletes at most batch rows from each table whose expiry is before `before` (rows without
// an expiry never expire; signing keys go when their not_after has passed; browser sessions go 7 days
// after they ended or expired; sign-in throttle rows go 24 hours after their last failure, once their
// block has passed). Each delete is one bounded statement, so it holds locks briefly. It
// returns the total deleted; the caller loops while that is >= batch.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		return 0, errors.New("delete expired: batch must be positive")
	}
	// On PostgreSQL every node cleans: SKIP LOCKED lets concurrent nodes take different rows instead of
	// queueing behind each other's row locks.
	lock := ""
	if s.dialect == dialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var total int64
	for _, t := range expiringTables {
		q := fmt.Sprintf("DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE %[3]s LIMIT ?%[4]s)",
			t.table, t.pk, t.expired, lock)
		args := make([]any, 0, 3)
		for i := range strings.Count(t.expired, "?") {
			keep := t.keep
			if t.keeps != nil {
				keep = t.keeps[i]
			}
			args = append(args, dbTime(before.Add(-keep)))
		}
		res := s.conn(ctx).Exec(q, append(args, batch)...)
		if res.Error != nil {
			return total, fmt.Errorf("delete expired %s: %w", t.table, mapErr(res.Error))
		}
		total += res.RowsAffected
	}
	return total, nil
}
