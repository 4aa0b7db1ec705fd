-- Migration 17 (SQLite): multi-factor authentication. user_factors holds a user's second factors of every kind
-- (kind 'totp' now; 'webauthn' later), each pending until confirmed (confirmed_at). A TOTP secret is kept only
-- sealed (AES-GCM under a key derived from the system secret, bound to the factor id); last_used_step is the
-- last accepted TOTP time step, so a code is accepted once. mfa_recovery_codes are single-use codes, kept
-- hashed. mfa_challenges are the short-lived, single-use challenges between a checked password and a second
-- factor, kept hashed. pools gain their MFA policy (off, optional, required); browser_sessions record how the
-- user authenticated (the ID token's amr, space separated; '' is a password alone).
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
CREATE TABLE user_factors (
	id TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	kind TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	secret_sealed TEXT NOT NULL DEFAULT '',
	created_at DATETIME NOT NULL,
	confirmed_at DATETIME NULL,
	last_used_at DATETIME NULL,
	last_used_step BIGINT NULL
);
CREATE INDEX user_factors_user_id_idx ON user_factors (user_id);
CREATE TABLE mfa_recovery_codes (
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	code_hash TEXT NOT NULL,
	created_at DATETIME NOT NULL,
	used_at DATETIME NULL,
	PRIMARY KEY (user_id, code_hash)
);
CREATE TABLE mfa_challenges (
	token_hash TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id TEXT NOT NULL DEFAULT '',
	purpose TEXT NOT NULL,
	data TEXT NOT NULL DEFAULT '',
	created_at DATETIME NOT NULL,
	expires_at DATETIME NOT NULL,
	used_at DATETIME NULL
);
CREATE INDEX mfa_challenges_expires_at_idx ON mfa_challenges (expires_at);
ALTER TABLE pools ADD COLUMN mfa_policy TEXT NOT NULL DEFAULT 'optional';
ALTER TABLE browser_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
