-- Migration 17 (SQLite): mail for accounts (email verification, password reset). A pool may require a verified
-- email before anyone signs in. mail_tokens holds what a mail proves: a link token and a 6-digit code, both
-- stored only as hashes, single use (used_at), short-lived; code_attempts counts guesses at the code (reserved
-- before each check). Issuing a new token of a purpose retires the user's older ones of that purpose.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE pools ADD COLUMN require_email_verification BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE mail_tokens (
	id TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	purpose TEXT NOT NULL,
	token_hash TEXT NOT NULL UNIQUE,
	code_hash TEXT NOT NULL,
	code_attempts INTEGER NOT NULL DEFAULT 0,
	expires_at DATETIME NOT NULL,
	code_expires_at DATETIME NOT NULL,
	used_at DATETIME NULL,
	created_at DATETIME NOT NULL
);
CREATE INDEX mail_tokens_user_idx ON mail_tokens (user_id, purpose);
CREATE INDEX mail_tokens_expires_at_idx ON mail_tokens (expires_at);
