-- Migration 13 (SQLite): logout reaches every app (OpenID Connect Back-Channel and Front-Channel Logout 1.0).
-- clients gain their logout URIs. session_clients records which clients took part in a browser session (got a
-- code or a token through it), written only for clients with a logout URI, so ending the session knows whom
-- to tell; it goes with its session or client. outbox is the one durable outbox (mail, webhooks, back-channel
-- logout): a message is enqueued in the transaction that causes it, and workers on any node claim due rows
-- with a lease (lease_until, leased_by), deliver, and record delivered_at, or the next attempt, or dead_at.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN frontchannel_logout_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN frontchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE session_clients (
	sid TEXT NOT NULL REFERENCES browser_sessions (id) ON DELETE CASCADE,
	client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (sid, client_id)
);
CREATE INDEX session_clients_client_id_idx ON session_clients (client_id);
CREATE TABLE outbox (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	target TEXT NOT NULL,
	payload TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt_at DATETIME NOT NULL,
	lease_until DATETIME NULL,
	leased_by TEXT NOT NULL DEFAULT '',
	last_error TEXT NOT NULL DEFAULT '',
	created_at DATETIME NOT NULL,
	delivered_at DATETIME NULL,
	dead_at DATETIME NULL
);
-- Workers look for due rows: pending ones by next attempt.
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND dead_at IS NULL;
-- Cleanup sweeps finished rows by when they finished.
CREATE INDEX outbox_delivered_at_idx ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX outbox_dead_at_idx ON outbox (dead_at) WHERE dead_at IS NOT NULL;
