-- Migration 9 (PostgreSQL): client_secret_jwt client authentication (RFC 7523 §2.2 with an HMAC, OpenID Connect Core
-- §9). An HMAC assertion is verified with the client's secret itself, and secret_hash cannot give it back, so a
-- client_secret_jwt client's secret is also kept sealed: client_secret_sealed is base64url of AES-256-GCM under a
-- key derived from the system secret, the client id as additional data (provider.ClientSecretSealer). '' for every
-- other client.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE clients ADD COLUMN client_secret_sealed TEXT NOT NULL DEFAULT '';
