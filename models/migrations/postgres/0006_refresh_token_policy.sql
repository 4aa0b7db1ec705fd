-- Migration 6 (PostgreSQL): a refresh policy per client. refresh_token_rotation 'off' keeps the presented refresh
-- token working until its absolute expiry instead of spending it at each refresh; refresh_token_reuse_interval_ms
-- lets a just-rotated refresh token be presented again for that long (two tabs refreshing at once) without
-- revoking its grant. oauth2_refresh.rotated_at is when a refresh token was spent by a rotation (NULL while it is
-- active, and again once its grant is revoked), the start of that interval. oauth2_refresh.successor is the
-- refresh token a rotation issued, sealed with a key only the rotated token's holder can derive: within the
-- interval the rotated token is answered that same successor, so a grant keeps one live chain.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE clients ADD COLUMN refresh_token_rotation TEXT NOT NULL DEFAULT 'on';
ALTER TABLE clients ADD COLUMN refresh_token_reuse_interval_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE oauth2_refresh ADD COLUMN rotated_at TIMESTAMPTZ NULL;
ALTER TABLE oauth2_refresh ADD COLUMN successor TEXT NULL;
