-- Migration 17 (SQLite): sign in with another provider. upstream_providers are a pool's OpenID Connect or GitHub
-- providers (the client secret sealed under a key derived from the system secret, bound to the row's id).
-- user_identities link an upstream account (provider, subject) to one of our users, once. upstream_logins are
-- the sign-ins under way: keyed by the hash of the state sent upstream, bound to the browser (browser_hash, of a
-- cookie) and taken (deleted) once by the callback. browser_sessions record how the user authenticated.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
CREATE TABLE upstream_providers (
	id TEXT PRIMARY KEY,
	pool TEXT NOT NULL REFERENCES pools (name),
	kind TEXT NOT NULL,
	display_name TEXT NOT NULL,
	issuer TEXT NOT NULL DEFAULT '',
	client_id TEXT NOT NULL,
	client_secret_sealed TEXT NOT NULL,
	scopes TEXT NOT NULL DEFAULT '[]',
	claim_email TEXT NOT NULL DEFAULT '',
	claim_name TEXT NOT NULL DEFAULT '',
	claim_roles TEXT NOT NULL DEFAULT '',
	auth_url TEXT NOT NULL DEFAULT '',
	token_url TEXT NOT NULL DEFAULT '',
	api_url TEXT NOT NULL DEFAULT '',
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL
);
CREATE INDEX upstream_providers_pool_idx ON upstream_providers (pool);
CREATE TABLE user_identities (
	provider_id TEXT NOT NULL REFERENCES upstream_providers (id) ON DELETE CASCADE,
	subject TEXT NOT NULL,
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (provider_id, subject)
);
CREATE INDEX user_identities_user_id_idx ON user_identities (user_id);
CREATE TABLE upstream_logins (
	state_hash TEXT PRIMARY KEY,
	provider_id TEXT NOT NULL REFERENCES upstream_providers (id) ON DELETE CASCADE,
	browser_hash TEXT NOT NULL,
	nonce TEXT NOT NULL,
	code_verifier TEXT NOT NULL,
	pending TEXT NOT NULL DEFAULT '',
	return_to TEXT NOT NULL DEFAULT '',
	expires_at DATETIME NOT NULL
);
CREATE INDEX upstream_logins_expires_at_idx ON upstream_logins (expires_at);
ALTER TABLE browser_sessions ADD COLUMN auth_method TEXT NOT NULL DEFAULT '';
