-- Migration 9 (SQLite): signed request objects (RFC 9101, JAR) per client, as RFC 9101 §10.5 and OpenID Connect
-- Registration name them: require_signed_request_object (every authorization request of the client must come as a
-- request object signed with its keys, by value or pushed with PAR), and request_object_signing_alg, the one
-- algorithm its request objects are signed with ('' → any asymmetric algorithm its keys fit; never none).
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE clients ADD COLUMN require_signed_request_object BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN request_object_signing_alg TEXT NOT NULL DEFAULT '';
