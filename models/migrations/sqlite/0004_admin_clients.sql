-- Migration 4 (SQLite): admin power belongs to clients an operator marked admin (optionally limited to some pools;
-- admin_pools '[]' means every pool), not to whoever holds the latchkey.admin scope.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE clients ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN admin_pools TEXT NOT NULL DEFAULT '[]';

-- Challenges are now created per signed-in browser session, and capped per session.
CREATE INDEX auth_challenges_browser_session_idx ON auth_challenges (browser_session_id, created_at);

-- Only an admin client may hold latchkey.admin (models.Client validation): every client that will not become
-- one below (confidential, client_credentials only, not first-party) loses the scope, so no grant made for a
-- user can carry it. The scopes column is a compact JSON list.
UPDATE clients SET scopes = REPLACE(REPLACE(REPLACE(scopes,
	',"latchkey.admin"', ''), '"latchkey.admin",', ''), '"latchkey.admin"', '')
WHERE scopes LIKE '%"latchkey.admin"%'
	AND NOT (is_public = FALSE AND first_party = FALSE AND grant_types = '["client_credentials"]');

-- Backfill: a confidential client that could only use client credentials and had the latchkey.admin scope was a
-- backend using the admin API, so it becomes an admin of every pool. Any other client holding the scope lost it
-- above (an operator can grant admin power again).
UPDATE clients SET admin = TRUE
WHERE is_public = FALSE AND grant_types = '["client_credentials"]' AND scopes LIKE '%"latchkey.admin"%';
