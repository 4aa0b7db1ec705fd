-- Migration 21 (PostgreSQL): webhooks. A webhook is an operator's subscription: a URL that receives the events it
-- names (user.created, session.ended, ...), of one pool or of all (pool ''), signed with its secret, which is kept
-- sealed (it is needed in clear to sign). Each delivery is an outbox message of kind 'webhook' whose target is the
-- webhook's id. outbox gains order_key: a message is not claimed while an earlier (lower seq) undelivered, not dead
-- message with the same key exists, so deliveries to one webhook about one user arrive in order; seq is that order,
-- taken at insert (after the change's row locks, so it follows commit order for one user).
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE outbox ADD COLUMN order_key TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN seq BIGSERIAL;
-- The claim's "no earlier pending message with my key" look-up.
CREATE INDEX outbox_order_idx ON outbox (order_key, seq) WHERE order_key <> '' AND delivered_at IS NULL AND dead_at IS NULL;
-- A webhook's delivery log, newest first.
CREATE INDEX outbox_kind_target_idx ON outbox (kind, target, seq);
CREATE TABLE webhooks (
	id TEXT PRIMARY KEY,
	url TEXT NOT NULL,
	events TEXT NOT NULL,
	pool TEXT NOT NULL DEFAULT '',
	secret_sealed TEXT NOT NULL,
	enabled BOOLEAN NOT NULL DEFAULT TRUE,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhooks_enabled_idx ON webhooks (enabled);
