package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/latchkey/latchkey/provider"
)

// firstClientCommand is what the first-start hint tells an operator to run: a service signing in with
// client_credentials, the shortest useful registration.
const firstClientCommand = "latchkey clients create --id my-service --scopes read"

// firstStartHint tells an operator who has just started Latchkey on a database without clients (the first
// start, in practice) where its state is and what to do next: one structured record, and on a terminal the
// same in plain words. Later starts say nothing.
func (a *app) firstStartHint(ctx context.Context, w io.Writer, terminal bool) {
	if !a.logger.Enabled(ctx, slog.LevelInfo) {
		return
	}
	if has, err := a.store.HasClients(ctx); err != nil || has {
		return // a database that cannot answer now shows up in /readyz and the next request's log
	}
	database, secret := describeDatabase(a.cfg.DatabaseURL), "LATCHKEY_SECRET (or --system-secret)"
	if a.cfg.Secret == "" {
		secret = absPath(a.cfg.secretFile()) + " (back it up with the database)"
	}
	discovery := a.cfg.Issuer + provider.PathOpenIDConfig
	a.logger.Info("first start: no client registered yet", "database", database, "secret", secret,
		"discovery", discovery, "next", firstClientCommand)
	if terminal {
		fmt.Fprintf(w, "\nFirst start: no client is registered yet.\n  database   %s\n  secret     %s\n  discovery  %s\n"+
			"Register a client (where the server runs, with the same LATCHKEY_* settings):\n  %s\n\n",
			database, secret, discovery, firstClientCommand)
	}
}

// describeDatabase names the database for an operator: the SQLite file's absolute path, or the PostgreSQL URL
// without its password.
func describeDatabase(dbURL string) string {
	if path, ok := strings.CutPrefix(dbURL, "sqlite://"); ok {
		path, _, _ = strings.Cut(path, "?")
		return absPath(path)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return "PostgreSQL (LATCHKEY_DATABASE_URL)" // never echo a URL that may hold a password unparsed
	}
	return u.Redacted()
}

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}
