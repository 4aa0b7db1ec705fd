-- Migration 1 (SQLite): the token tables (one per fosite token kind), used JWT ids, clients, users and signing keys.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
CREATE TABLE oauth2_access (
	signature TEXT PRIMARY KEY,
	request_id TEXT NOT NULL,
	requested_at DATETIME NOT NULL,
	client_id TEXT NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	requested_scopes TEXT NOT NULL DEFAULT '[]',
	granted_scopes TEXT NOT NULL DEFAULT '[]',
	requested_audience TEXT NOT NULL DEFAULT '[]',
	granted_audience TEXT NOT NULL DEFAULT '[]',
	form TEXT NOT NULL DEFAULT '',
	session TEXT NOT NULL DEFAULT '{}',
	active BOOLEAN NOT NULL DEFAULT TRUE,
	expires_at DATETIME NULL
);
CREATE INDEX oauth2_access_request_id_idx ON oauth2_access (request_id);
CREATE INDEX oauth2_access_client_id_idx ON oauth2_access (client_id);
CREATE INDEX oauth2_access_subject_idx ON oauth2_access (subject);
CREATE INDEX oauth2_access_expires_at_idx ON oauth2_access (expires_at);
CREATE TABLE oauth2_refresh (
	signature TEXT PRIMARY KEY,
	request_id TEXT NOT NULL,
	requested_at DATETIME NOT NULL,
	client_id TEXT NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	requested_scopes TEXT NOT NULL DEFAULT '[]',
	granted_scopes TEXT NOT NULL DEFAULT '[]',
	requested_audience TEXT NOT NULL DEFAULT '[]',
	granted_audience TEXT NOT NULL DEFAULT '[]',
	form TEXT NOT NULL DEFAULT '',
	session TEXT NOT NULL DEFAULT '{}',
	active BOOLEAN NOT NULL DEFAULT TRUE,
	expires_at DATETIME NULL,
	access_token_signature TEXT NOT NULL DEFAULT ''
);
CREATE INDEX oauth2_refresh_request_id_idx ON oauth2_refresh (request_id);
CREATE INDEX oauth2_refresh_client_id_idx ON oauth2_refresh (client_id);
CREATE INDEX oauth2_refresh_subject_idx ON oauth2_refresh (subject);
CREATE INDEX oauth2_refresh_expires_at_idx ON oauth2_refresh (expires_at);
CREATE TABLE oauth2_code (
	signature TEXT PRIMARY KEY,
	request_id TEXT NOT NULL,
	requested_at DATETIME NOT NULL,
	client_id TEXT NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	requested_scopes TEXT NOT NULL DEFAULT '[]',
	granted_scopes TEXT NOT NULL DEFAULT '[]',
	requested_audience TEXT NOT NULL DEFAULT '[]',
	granted_audience TEXT NOT NULL DEFAULT '[]',
	form TEXT NOT NULL DEFAULT '',
	session TEXT NOT NULL DEFAULT '{}',
	active BOOLEAN NOT NULL DEFAULT TRUE,
	expires_at DATETIME NULL
);
CREATE INDEX oauth2_code_request_id_idx ON oauth2_code (request_id);
CREATE INDEX oauth2_code_client_id_idx ON oauth2_code (client_id);
CREATE INDEX oauth2_code_subject_idx ON oauth2_code (subject);
CREATE INDEX oauth2_code_expires_at_idx ON oauth2_code (expires_at);
CREATE TABLE oauth2_pkce (
	signature TEXT PRIMARY KEY,
	request_id TEXT NOT NULL,
	requested_at DATETIME NOT NULL,
	client_id TEXT NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	requested_scopes TEXT NOT NULL DEFAULT '[]',
	granted_scopes TEXT NOT NULL DEFAULT '[]',
	requested_audience TEXT NOT NULL DEFAULT '[]',
	granted_audience TEXT NOT NULL DEFAULT '[]',
	form TEXT NOT NULL DEFAULT '',
	session TEXT NOT NULL DEFAULT '{}',
	active BOOLEAN NOT NULL DEFAULT TRUE,
	expires_at DATETIME NULL
);
CREATE INDEX oauth2_pkce_request_id_idx ON oauth2_pkce (request_id);
CREATE INDEX oauth2_pkce_client_id_idx ON oauth2_pkce (client_id);
CREATE INDEX oauth2_pkce_subject_idx ON oauth2_pkce (subject);
CREATE INDEX oauth2_pkce_expires_at_idx ON oauth2_pkce (expires_at);
CREATE TABLE oauth2_oidc (
	signature TEXT PRIMARY KEY,
	request_id TEXT NOT NULL,
	requested_at DATETIME NOT NULL,
	client_id TEXT NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	requested_scopes TEXT NOT NULL DEFAULT '[]',
	granted_scopes TEXT NOT NULL DEFAULT '[]',
	requested_audience TEXT NOT NULL DEFAULT '[]',
	granted_audience TEXT NOT NULL DEFAULT '[]',
	form TEXT NOT NULL DEFAULT '',
	session TEXT NOT NULL DEFAULT '{}',
	active BOOLEAN NOT NULL DEFAULT TRUE,
	expires_at DATETIME NULL
);
CREATE INDEX oauth2_oidc_request_id_idx ON oauth2_oidc (request_id);
CREATE INDEX oauth2_oidc_client_id_idx ON oauth2_oidc (client_id);
CREATE INDEX oauth2_oidc_subject_idx ON oauth2_oidc (subject);
CREATE INDEX oauth2_oidc_expires_at_idx ON oauth2_oidc (expires_at);
CREATE TABLE oauth2_par (
	signature TEXT PRIMARY KEY,
	request_id TEXT NOT NULL,
	requested_at DATETIME NOT NULL,
	client_id TEXT NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	requested_scopes TEXT NOT NULL DEFAULT '[]',
	granted_scopes TEXT NOT NULL DEFAULT '[]',
	requested_audience TEXT NOT NULL DEFAULT '[]',
	granted_audience TEXT NOT NULL DEFAULT '[]',
	form TEXT NOT NULL DEFAULT '',
	session TEXT NOT NULL DEFAULT '{}',
	active BOOLEAN NOT NULL DEFAULT TRUE,
	expires_at DATETIME NULL,
	authorize_params TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX oauth2_par_request_id_idx ON oauth2_par (request_id);
CREATE INDEX oauth2_par_client_id_idx ON oauth2_par (client_id);
CREATE INDEX oauth2_par_subject_idx ON oauth2_par (subject);
CREATE INDEX oauth2_par_expires_at_idx ON oauth2_par (expires_at);
CREATE TABLE oauth2_jti (
	jti TEXT PRIMARY KEY,
	expires_at DATETIME NOT NULL
);
CREATE INDEX oauth2_jti_expires_at_idx ON oauth2_jti (expires_at);
CREATE TABLE clients (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL DEFAULT '',
	secret_hash TEXT NOT NULL DEFAULT '',
	redirect_uris TEXT NOT NULL DEFAULT '[]',
	grant_types TEXT NOT NULL DEFAULT '[]',
	response_types TEXT NOT NULL DEFAULT '[]',
	scopes TEXT NOT NULL DEFAULT '[]',
	audience TEXT NOT NULL DEFAULT '[]',
	is_public BOOLEAN NOT NULL DEFAULT FALSE,
	token_endpoint_auth_method TEXT NOT NULL DEFAULT '',
	access_token_format TEXT NOT NULL DEFAULT '',
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL
);
CREATE INDEX clients_created_at_idx ON clients (created_at, id);
CREATE TABLE users (
	id TEXT PRIMARY KEY,
	email TEXT NOT NULL,
	email_normalized TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	roles TEXT NOT NULL DEFAULT '[]',
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX users_email_normalized_key ON users (email_normalized);
CREATE INDEX users_created_at_idx ON users (created_at, id);
CREATE TABLE signing_keys (
	kid TEXT PRIMARY KEY,
	alg TEXT NOT NULL,
	public_jwk BLOB NOT NULL,
	sealed_private BLOB NOT NULL,
	created_at DATETIME NOT NULL,
	retired_at DATETIME NULL,
	not_after DATETIME NULL
);

-- The backstop for rotation's compare-and-swap: at most one active key per algorithm.
CREATE UNIQUE INDEX signing_keys_active_alg_key ON signing_keys (alg) WHERE retired_at IS NULL;
CREATE INDEX signing_keys_not_after_idx ON signing_keys (not_after);
