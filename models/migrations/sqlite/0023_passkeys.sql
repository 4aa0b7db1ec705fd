-- Migration 21 (SQLite): passkeys (WebAuthn). A passkey is a user_factors row of kind 'webauthn', active from the
-- start (a registration ceremony that verified is its confirmation); its credential id (base64url) is unique
-- across all users, so a discoverable sign-in finds the passkey, and so its user, from the id alone. public_key
-- is the COSE key (base64url), sign_count the authenticator's counter (a non-zero counter must grow: a clone
-- shows as one that does not), aaguid the authenticator model, transports space separated, backup_eligible and
-- backup_state the BE/BS flags (a synced passkey), attestation_type as registered. webauthn_ceremonies are the
-- challenges between a ceremony's begin and its finish, keyed by the challenge's hash: short-lived and taken by
-- the finish in one DELETE ... RETURNING, so any node finishes what another began and a challenge counts once.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE user_factors ADD COLUMN credential_id TEXT NULL;
ALTER TABLE user_factors ADD COLUMN public_key TEXT NOT NULL DEFAULT '';
ALTER TABLE user_factors ADD COLUMN sign_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE user_factors ADD COLUMN aaguid TEXT NOT NULL DEFAULT '';
ALTER TABLE user_factors ADD COLUMN transports TEXT NOT NULL DEFAULT '';
ALTER TABLE user_factors ADD COLUMN backup_eligible BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE user_factors ADD COLUMN backup_state BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE user_factors ADD COLUMN attestation_type TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX user_factors_credential_id_idx ON user_factors (credential_id);
CREATE TABLE webauthn_ceremonies (
	challenge_hash TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	user_id TEXT NOT NULL DEFAULT '',
	bound_to TEXT NOT NULL DEFAULT '',
	session_data TEXT NOT NULL,
	created_at DATETIME NOT NULL,
	expires_at DATETIME NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires_at_idx ON webauthn_ceremonies (expires_at);
