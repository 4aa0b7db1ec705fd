-- Migration 9 (PostgreSQL): a client's public keys by reference: jwks_uri is the https URL of its public JWK Set ('' for
-- none), fetched and cached by the server (package jwksfetch), for private_key_jwt client authentication and
-- signed request objects. A client registers jwks or jwks_uri, never both (see validateJWKS).
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE clients ADD COLUMN jwks_uri TEXT NOT NULL DEFAULT '';
