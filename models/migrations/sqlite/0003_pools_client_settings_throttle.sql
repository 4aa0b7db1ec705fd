-- Migration 3 (SQLite): user pools (every existing user and client lands in "default"; email addresses become unique
-- per pool instead of globally), clients' signup switch and OpenID Connect encryption settings, and the shared
-- sign-in throttle.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
CREATE TABLE pools (
	name TEXT PRIMARY KEY,
	signup_enabled BOOLEAN NOT NULL DEFAULT FALSE,
	default_roles TEXT NOT NULL DEFAULT '[]',
	created_at DATETIME NOT NULL
);

-- No foreign keys to pools: SQLite cannot add a REFERENCES column with a non-NULL default. Pools are
-- never deleted, and the store checks the pool exists in the transaction that writes the user or client.
ALTER TABLE users ADD COLUMN pool TEXT NOT NULL DEFAULT 'default';

-- users_email_normalized_key was created by migration 1 as a plain unique index (not a table
-- constraint) on both dialects, so DROP INDEX removes it.
DROP INDEX users_email_normalized_key;
CREATE UNIQUE INDEX users_pool_email_normalized_key ON users (pool, email_normalized);
CREATE INDEX users_pool_created_at_idx ON users (pool, created_at, id);
ALTER TABLE clients ADD COLUMN pool TEXT NOT NULL DEFAULT 'default';
ALTER TABLE clients ADD COLUMN allow_signup BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN encryption_jwk TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN id_token_encrypted_response_alg TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN id_token_encrypted_response_enc TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN userinfo_encrypted_response_alg TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN userinfo_encrypted_response_enc TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN access_token_encryption_jwk TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN access_token_encryption_alg TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN access_token_encryption_enc TEXT NOT NULL DEFAULT '';
CREATE TABLE login_throttle (
	key_hash TEXT PRIMARY KEY,
	failures INTEGER NOT NULL,
	last_failure_at DATETIME NOT NULL,
	blocked_until DATETIME NULL
);
CREATE INDEX login_throttle_last_failure_at_idx ON login_throttle (last_failure_at);

-- Backfill: the "default" pool, the one every existing user and client now belongs to. Signup is off: nobody
-- could sign themselves up before pools existed. created_at is text in the form the SQLite driver writes a UTC
-- time ("2006-01-02 15:04:05.999+00:00"), so it sorts among the times the store writes later (ListPools orders by it).
INSERT INTO pools (name, signup_enabled, default_roles, created_at)
VALUES ('default', FALSE, '[]', strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'));
