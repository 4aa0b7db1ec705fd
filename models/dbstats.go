package models

import "database/sql"

// PoolStats reports each of the store's connection pools by name, for metrics read at scrape time: "main" (the
// pool requests and transactions use), and where they are separate pools, "read" (SQLite's read-only
// connections for token lookups) and "cleanup" (PostgreSQL's connection for expired-row cleanup).
func (s *Store) PoolStats() map[string]sql.DBStats {
	stats := map[string]sql.DBStats{"main": s.sqlDB.Stats()}
	if s.readDB != s.sqlDB {
		stats["read"] = s.readDB.Stats()
	}
	if s.maintDB != s.sqlDB {
		stats["cleanup"] = s.maintDB.Stats()
	}
	return stats
}
