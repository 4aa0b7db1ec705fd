-- Migration 8 (SQLite): a client's public keys for private_key_jwt client authentication (RFC 7523 §2.2,
-- OpenID Connect Core §9): jwks is the JSON text of a public JWK Set ('' for none), and
-- token_endpoint_auth_signing_alg the one algorithm its assertions must be signed with ('' → inferred from its keys).
-- Replayed assertion ids are refused through oauth2_jti (migration 1), whose primary key makes a jti single-use.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE clients ADD COLUMN jwks TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN token_endpoint_auth_signing_alg TEXT NOT NULL DEFAULT '';
