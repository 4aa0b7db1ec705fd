package models

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// expiringTables are the tables DeleteExpired sweeps: table, primary key, expiry column.
var expiringTables = []struct{ table, pk, expiry string }{
	{tableAccess, "signature", "expires_at"},
	{tableRefresh, "signature", "expires_at"},
	{tableCode, "signature", "expires_at"},
	{tablePKCE, "signature", "expires_at"},
	{tableOIDC, "signature", "expires_at"},
	{tablePAR, "signature", "expires_at"},
	{"oauth2_jti", "jti", "expires_at"},
	{"signing_keys", "kid", "not_after"},
}

// DeleteExpired deletes at most batch rows from each table whose expiry is before `before` (rows without
// an expiry never expire; signing keys go when their not_after has passed). Each delete is one bounded
// statement, so it holds locks briefly. It returns the total deleted; the caller loops while that is
// >= batch.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		return 0, errors.New("delete expired: batch must be positive")
	}
	var total int64
	for _, t := range expiringTables {
		q := fmt.Sprintf("DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE %[3]s < ? LIMIT ?)",
			t.table, t.pk, t.expiry)
		res := s.conn(ctx).Exec(q, dbTime(before), batch)
		if res.Error != nil {
			return total, fmt.Errorf("delete expired %s: %w", t.table, mapErr(res.Error))
		}
		total += res.RowsAffected
	}
	return total, nil
}
