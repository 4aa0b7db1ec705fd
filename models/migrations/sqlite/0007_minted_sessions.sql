-- Migration 7 (SQLite): a session an admin client started by minting tokens for a user (the admin API's
-- POST /api/v1/admin/users/{id}/tokens) records that client; sessions a user signed in to have ''.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE browser_sessions ADD COLUMN minted_by TEXT NOT NULL DEFAULT '';
