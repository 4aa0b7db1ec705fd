package models

import (
	"context"
	"maps"
	"slices"

	"golang.org/x/crypto/argon2"
)

func argonKey(password, salt string, t, m uint32, p uint8, n uint32) []byte {
	return argon2.IDKey([]byte(password), []byte(salt), t, m, p, n)
}

// MigrateTo applies the migrations up to version, so tests can build an older schema.
func (s *Store) MigrateTo(ctx context.Context, version int) error { return s.migrateTo(ctx, version) }

// ExecSQL runs a statement, for tests that fill an older schema directly.
func (s *Store) ExecSQL(ctx context.Context, stmt string, args ...any) error {
	return s.conn(ctx).Exec(stmt, args...).Error
}

// LatestSchemaVersion is the version Migrate brings a database to.
var LatestSchemaVersion = migrations[len(migrations)-1].version

// RegisteredClaims lists the claim names a user's extras may not use, sorted, so tests can try every one.
func RegisteredClaims() []string { return slices.Sorted(maps.Keys(registeredClaims)) }
