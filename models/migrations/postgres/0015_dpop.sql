-- Migration 13: DPoP (RFC 9449). clients.dpop_bound_access_tokens (RFC 9449 §5.2): every token request of the
-- client must carry a DPoP proof, so each of its access tokens is bound to a key it holds. Spent proof ids share
-- oauth2_jti (migration 1) with client assertion ids, under a key of their own (models/dpop.go).
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens BOOLEAN NOT NULL DEFAULT FALSE;
