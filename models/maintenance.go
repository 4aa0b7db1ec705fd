package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// expiringTables are the tables DeleteExpired sweeps: table, primary key, the condition for a row to go
// (each ? is bound to the cutoff), and how long past `before` rows are kept (cutoff = before - keep).
var expiringTables = []struct {
	table, pk, expired string
	keep               time.Duration
}{
	{tableAccess, "signature", "expires_at < ?", 0},
	{tableRefresh, "signature", "expires_at < ?", 0},
	{tableCode, "signature", "expires_at < ?", 0},
	{tablePKCE, "signature", "expires_at < ?", 0},
	{tableOIDC, "signature", "expires_at < ?", 0},
	{tablePAR, "signature", "expires_at < ?", 0},
	{"oauth2_jti", "jti", "expires_at < ?", 0},
	{"signing_keys", "kid", "not_after < ?", 0},
	{"auth_challenges", "id", "expires_at < ?", 0},
	// A session expires when idle_expires_at passes (it never exceeds expires_at).
	{"browser_sessions", "id", "ended_at < ? OR idle_expires_at < ?", browserSessionRetention},
}

// DeleteExpired deletes at most batch rows from each table whose expiry is before `before` (rows without
// an expiry never expire; signing keys go when their not_after has passed; browser sessions go 7 days
// after they ended or expired). Each delete is one bounded statement, so it holds locks briefly. It
// returns the total deleted; the caller loops while that is >= batch.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		return 0, errors.New("delete expired: batch must be positive")
	}
	var total int64
	for _, t := range expiringTables {
		q := fmt.Sprintf("DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE %[3]s LIMIT ?)",
			t.table, t.pk, t.expired)
		cutoff := dbTime(before.Add(-t.keep))
		args := make([]any, 0, 3)
		for range strings.Count(t.expired, "?") {
			args = append(args, cutoff)
		}
		res := s.conn(ctx).Exec(q, append(args, batch)...)
		if res.Error != nil {
			return total, fmt.Errorf("delete expired %s: %w", t.table, mapErr(res.Error))
		}
		total += res.RowsAffected
	}
	return total, nil
}
