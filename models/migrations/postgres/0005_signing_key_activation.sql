-- Migration 5 (PostgreSQL): a signing key starts signing at activates_at, a moment every node obeys, so a rotated-in
-- key can be published for a while before it signs. retired_at now means "stops signing at" and may be in the
-- future.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE signing_keys ADD COLUMN activates_at TIMESTAMPTZ NULL;

-- Existing keys activated when they were created. (The column stays nullable: SQLite cannot add a NOT NULL
-- column without a constant default; the store always writes it.)
UPDATE signing_keys SET activates_at = created_at;
