-- Migration 21 (SQLite): the audit log. One append-only row per auth event (sign-in, sign-up, password and
-- MFA changes, tokens issued, refreshed and revoked, sessions, consents, admin and client changes, key rotation),
-- written in the transaction of the change it records; only retention deletes rows. Keyset pagination and
-- retention walk (occurred_at, id); the per-user and per-client indexes leave out the rows without one, so the
-- client_credentials tokens (no user) add no entry to the user index.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
CREATE TABLE audit_events (
	id INTEGER PRIMARY KEY,
	occurred_at DATETIME NOT NULL,
	type TEXT NOT NULL,
	pool TEXT NOT NULL DEFAULT '',
	user_id TEXT NOT NULL DEFAULT '',
	client_id TEXT NOT NULL DEFAULT '',
	actor TEXT NOT NULL DEFAULT '',
	ip TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	request_id TEXT NOT NULL DEFAULT '',
	reason TEXT NOT NULL DEFAULT '',
	details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_occurred_at_idx ON audit_events (occurred_at, id);
CREATE INDEX audit_events_user_idx ON audit_events (user_id, occurred_at, id) WHERE user_id <> '';
CREATE INDEX audit_events_client_idx ON audit_events (client_id, occurred_at, id) WHERE client_id <> '';
