-- Migration 20 (SQLite): passwordless sign-in with one-time codes. A pool may let its users sign in with a 6-digit
-- code and a link mailed to them (the mail_tokens of purpose sign_in); a client may name the page of its own that
-- a mailed link opens (magic_link_url, which receives ?token=... and calls the token API's otp/verify). '' (every
-- existing client): the mail carries the code only.
--
-- Released: frozen. Never edit this file; change the schema with a new migration (see migrations.go).
ALTER TABLE pools ADD COLUMN passwordless_codes BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN magic_link_url TEXT NOT NULL DEFAULT '';
