// Package migrations holds Latchkey's database migrations: one SQL file per version and dialect,
// postgres/NNNN_name.sql and sqlite/NNNN_name.sql, embedded into the binary and applied in order by
// models.Store.Migrate, which records each version in schema_migrations.
//
// A released migration is frozen: never edit, rename, renumber or delete its files (or its backfill), because
// databases in production were built by exactly those statements. Change the schema by adding the next version
// for both dialects. A test in models holds the SHA-256 of every released file and fails when one changes; another
// builds the schema fresh and version by version and requires both to be identical.
//
// A file is a sequence of statements, each ending with a semicolon at the end of a line; lines starting with "--"
// before a statement are comments. Data backfills are SQL in the migration's file. Only where SQL cannot express
// the backfill is it frozen Go in this package (Backfills), which may use nothing of the rest of Latchkey — this
// package imports nothing of ours, so it cannot — and runs in the migration's transaction after its statements.
package migrations

import (
	"embed"

	"gorm.io/gorm"
)

// Files holds postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var Files embed.FS

// Backfills are the frozen Go backfills, by migration version; each runs after that version's statements, in its
// transaction.
var Backfills = map[int]func(tx *gorm.DB) error{
	2: backfillClientOrigins,
}
