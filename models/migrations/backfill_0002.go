package migrations

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// Frozen with migration 2: never edit this file.
//
// backfillClientOrigins fills client_origins for the clients that existed before migration 2, from their redirect
// URIs (they had no allowed origins yet). It is Go, not SQL, because an origin is what Go's net/url makes of a
// redirect URI — URLs it rejects are skipped, user info dropped, scheme and host lower-cased, default ports dropped,
// ports written without leading zeros, IPv6 hosts bracketed — and neither SQLite (no URL parser, no regular
// expressions by default) nor PostgreSQL can do that without a second implementation that would disagree at the
// edges. The code below is a copy of the rules as migration 2 shipped (models.Origin then), so a later change to
// models.Origin cannot change what an upgrade writes.
func backfillClientOrigins(tx *gorm.DB) error {
	type client struct{ id, redirectURIs string }
	var clients []client
	rows, err := tx.Raw("SELECT id, redirect_uris FROM clients").Rows()
	if err != nil {
		return fmt.Errorf("backfill client origins: %w", err)
	}
	for rows.Next() {
		var c client
		if err := rows.Scan(&c.id, &c.redirectURIs); err != nil {
			_ = rows.Close()
			return fmt.Errorf("backfill client origins: %w", err)
		}
		clients = append(clients, c)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("backfill client origins: %w", err)
	}
	for _, c := range clients {
		var uris []string
		if c.redirectURIs != "" {
			if err := json.Unmarshal([]byte(c.redirectURIs), &uris); err != nil {
				return fmt.Errorf("backfill client origins: client %q: decode list column: %w", c.id, err)
			}
		}
		for _, o := range originsV2(uris) {
			err := tx.Exec("INSERT INTO client_origins (client_id, origin) VALUES (?, ?) ON CONFLICT DO NOTHING", c.id, o).Error
			if err != nil {
				return fmt.Errorf("backfill client origins: client %q: %w", c.id, err)
			}
		}
	}
	return nil
}

// originsV2 is the sorted set of origins of the http(s) redirect URIs.
func originsV2(redirectURIs []string) []string {
	set := map[string]bool{}
	for _, u := range redirectURIs {
		if o, ok := originV2(u); ok {
			set[o] = true
		}
	}
	out := make([]string, 0, len(set))
	for o := range set {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}

// originV2 returns the normalised origin of an http(s) URL: scheme://host[:port], scheme and host lower-cased, the
// scheme's default port dropped. ok is false for anything else (other schemes, no host, unparsable).
func originV2(rawURL string) (string, bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || u.Opaque != "" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", false
	}
	port := u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", false
		}
		port = strconv.Itoa(n)
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(host, port), true
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, true
}
