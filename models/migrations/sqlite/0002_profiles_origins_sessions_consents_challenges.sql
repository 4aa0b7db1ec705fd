-- Migration 2 (SQLite): user profile columns, first-party clients with post-logout redirect URIs and allowed CORS
-- origins (client_origins indexes every client's origins), browser sessions and the sid of the tokens issued through
-- them, consents, and pending authorization challenges. The origins of the clients that already existed are
-- backfilled by frozen Go after these statements (models/migrations/backfill_0002.go says why that cannot be SQL).
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN extras TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
CREATE TABLE client_origins (
	client_id TEXT NOT NULL,
	origin TEXT NOT NULL,
	PRIMARY KEY (client_id, origin)
);
CREATE INDEX client_origins_origin_idx ON client_origins (origin);
CREATE TABLE browser_sessions (
	id TEXT PRIMARY KEY,
	token_hash TEXT NOT NULL,
	user_id TEXT NOT NULL,
	ip TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	auth_time DATETIME NOT NULL,
	created_at DATETIME NOT NULL,
	last_active_at DATETIME NOT NULL,
	idle_expires_at DATETIME NOT NULL,
	expires_at DATETIME NOT NULL,
	ended_at DATETIME NULL
);
CREATE UNIQUE INDEX browser_sessions_token_hash_key ON browser_sessions (token_hash);
CREATE INDEX browser_sessions_user_id_idx ON browser_sessions (user_id, last_active_at);

-- idle_expires_at never exceeds expires_at, so it alone says when a session expired.
CREATE INDEX browser_sessions_idle_expires_at_idx ON browser_sessions (idle_expires_at);
CREATE INDEX browser_sessions_ended_at_idx ON browser_sessions (ended_at);
CREATE TABLE consents (
	user_id TEXT NOT NULL,
	client_id TEXT NOT NULL,
	scopes TEXT NOT NULL DEFAULT '[]',
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client_id_idx ON consents (client_id);
CREATE TABLE auth_challenges (
	id TEXT PRIMARY KEY,
	query TEXT NOT NULL,
	client_id TEXT NOT NULL DEFAULT '',
	browser_session_id TEXT NOT NULL DEFAULT '',
	login_at DATETIME NULL,
	consent_at DATETIME NULL,
	created_at DATETIME NOT NULL,
	expires_at DATETIME NOT NULL
);
CREATE INDEX auth_challenges_expires_at_idx ON auth_challenges (expires_at);
ALTER TABLE oauth2_access ADD COLUMN sid TEXT NULL;
CREATE INDEX oauth2_access_sid_idx ON oauth2_access (sid);
ALTER TABLE oauth2_refresh ADD COLUMN sid TEXT NULL;
CREATE INDEX oauth2_refresh_sid_idx ON oauth2_refresh (sid);
ALTER TABLE oauth2_code ADD COLUMN sid TEXT NULL;
CREATE INDEX oauth2_code_sid_idx ON oauth2_code (sid);
