-- Migration 9 (PostgreSQL): dynamic client registration (RFC 7591) and its management protocol (RFC 7592).
-- registration_initial_tokens holds the initial access tokens an operator issues (`latchkey clients
-- registration-token`): only the keyed hash of a token is stored, with how many registrations it may still make
-- and when it expires; a registration spends one use in the transaction that stores its client.
-- clients.registration_token_hash is the keyed hash of the client's registration access token: '' for every
-- client the operator created, which can therefore never be managed through the registration endpoint.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
CREATE TABLE registration_initial_tokens (
	token_hash TEXT PRIMARY KEY,
	uses_left INTEGER NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX registration_initial_tokens_expires_at_idx ON registration_initial_tokens (expires_at);
ALTER TABLE clients ADD COLUMN registration_token_hash TEXT NOT NULL DEFAULT '';
