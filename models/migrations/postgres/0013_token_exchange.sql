-- Migration 13 (PostgreSQL): OAuth 2.0 Token Exchange (RFC 8693) per client. token_exchange_audiences lists, as a JSON
-- array, the audiences (or RFC 8707 resources) a client may ask for in an exchange: '[]' (every existing client)
-- means the client may not exchange tokens. token_exchange_delegation_only refuses an exchange without an actor
-- token (impersonation) for that client.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE clients ADD COLUMN token_exchange_audiences TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN token_exchange_delegation_only BOOLEAN NOT NULL DEFAULT FALSE;
