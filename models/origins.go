package models

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// clientOriginRow is the client_origins table: every web origin a client may call from (CORS).
type clientOriginRow struct {
	ClientID string `gorm:"column:client_id;primaryKey"`
	Origin   string `gorm:"column:origin;primaryKey"`
}

func (clientOriginRow) TableName() string { return "client_origins" }

// Origin returns the normalised origin of an http(s) URL: scheme://host[:port], scheme and host
// lower-cased, the scheme's default port dropped. ok is false for anything else (other schemes, no host,
// unparsable).
func Origin(rawURL string) (string, bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", false
	}
	return originOf(u)
}

func originOf(u *url.URL) (string, bool) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || u.Opaque != "" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", false
	}
	port := u.Port() // url.Parse has checked it is digits
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", false
		}
		port = strconv.Itoa(n) // as a browser writes it: no leading zeros
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(host, port), true
	}
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	return scheme + "://" + host, true
}

// parseOrigin accepts exactly an origin, scheme://host[:port] with no user info, path, query or fragment,
// and returns it normalised.
func parseOrigin(v string) (string, bool) {
	u, err := url.Parse(v)
	if err != nil || u.User != nil || (u.Path != "" || u.RawPath != "") || u.RawQuery != "" || u.ForceQuery ||
		u.Fragment != "" || strings.Contains(v, "#") {
		return "", false
	}
	return originOf(u)
}

// normalizeAllowedOrigins validates AllowedOrigins and returns them normalised, without duplicates, in
// their first order.
func normalizeAllowedOrigins(origins []string) ([]string, error) {
	if len(origins) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(origins))
	seen := map[string]bool{}
	for _, o := range origins {
		n, ok := parseOrigin(o)
		if !ok {
			return nil, fmt.Errorf("%w: allowed origin %q is not an http(s) origin scheme://host[:port] without a path", ErrInvalid, o)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// clientOrigins is the sorted set of origins of the http(s) redirect URIs plus the (already normalised)
// allowed origins.
func clientOrigins(redirectURIs, allowedOrigins []string) []string {
	set := map[string]bool{}
	for _, u := range redirectURIs {
		if o, ok := Origin(u); ok {
			set[o] = true
		}
	}
	for _, o := range allowedOrigins {
		set[o] = true
	}
	out := make([]string, 0, len(set))
	for o := range set {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}

func insertClientOrigins(tx *gorm.DB, clientID string, origins []string) error {
	if len(origins) == 0 {
		return nil
	}
	rows := make([]clientOriginRow, len(origins))
	for i, o := range origins {
		rows[i] = clientOriginRow{ClientID: clientID, Origin: o}
	}
	return mapErr(tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error)
}

// OriginAllowed reports whether origin (an Origin header value) is an origin of any client. A value that is
// not an http(s) origin is (false, nil).
func (s *Store) OriginAllowed(ctx context.Context, origin string) (bool, error) {
	o, ok := parseOrigin(origin)
	if !ok {
		return false, nil
	}
	var n int64
	if err := s.conn(ctx).Model(&clientOriginRow{}).Where("origin = ?", o).Count(&n).Error; err != nil {
		return false, fmt.Errorf("check origin: %w", mapErr(err))
	}
	return n > 0, nil
}

// ClientOriginAllowed reports whether origin (an Origin header value) is an origin of client clientID. An
// unknown client or a value that is not an http(s) origin is (false, nil).
func (s *Store) ClientOriginAllowed(ctx context.Context, clientID, origin string) (bool, error) {
	o, ok := parseOrigin(origin)
	if !ok {
		return false, nil
	}
	var n int64
	err := s.conn(ctx).Model(&clientOriginRow{}).Where("client_id = ? AND origin = ?", clientID, o).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("check client origin: %w", mapErr(err))
	}
	return n > 0, nil
}
