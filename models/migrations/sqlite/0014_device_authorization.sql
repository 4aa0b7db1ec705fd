-- Migration 13 (SQLite): the device authorization grant (RFC 8628). One row per device authorization request:
-- only the hashes of its device code and user code are stored; status is pending, approved, denied or redeemed;
-- an approval records the user, the browser session that approved and the grant's session (JSON, scopes
-- included); polls are paced by interval_seconds (raised by slow_down) against last_polled_at, and counted in
-- polls, on which a compare-and-swap keeps racing polls apart.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
CREATE TABLE device_authorizations (
	device_code_hash TEXT PRIMARY KEY,
	user_code_hash TEXT NOT NULL UNIQUE,
	client_id TEXT NOT NULL,
	scopes TEXT NOT NULL,
	status TEXT NOT NULL,
	user_id TEXT NOT NULL DEFAULT '',
	browser_session_id TEXT NOT NULL DEFAULT '',
	session TEXT NOT NULL DEFAULT '',
	interval_seconds INTEGER NOT NULL,
	polls INTEGER NOT NULL DEFAULT 0,
	last_polled_at DATETIME,
	created_at DATETIME NOT NULL,
	expires_at DATETIME NOT NULL
);
CREATE INDEX device_authorizations_expires_at_idx ON device_authorizations (expires_at);
