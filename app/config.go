package app

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/handlers/registration"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/mailer"
	"github.com/latchkey/latchkey/provider"
)

// Config is every setting Latchkey reads, from LATCHKEY_* environment variables or the matching flags
// (flags win). It is loaded in one place and validated all at once.
type Config struct {
	Issuer            string
	Addr              string
	DatabaseURL       string
	Secret            string
	AccessTokenTTL    time.Duration
	RefreshTokenTTL   time.Duration
	AuthCodeTTL       time.Duration
	DeviceCodeTTL     time.Duration
	DevicePoll        time.Duration
	IDTokenTTL        time.Duration
	AccessTokenFormat string
	SigningAlg        string
	KeyRotation       time.Duration
	KeyReloadInterval time.Duration
	JWKSMaxAge        time.Duration
	AutoMigrate       bool
	CleanupInterval   time.Duration
	CleanupBatch      int
	AuditRetention    time.Duration
	DBMaxConns        int
	LogLevel          string
	LogFormat         string
	MaxBodyBytes      int64
	ShutdownTimeout   time.Duration
	SessionIdleTTL    time.Duration
	SessionTTL        time.Duration
	APITokenHeader    string
	PasswordMinLength int
	PasswordBlocklist string
	DebugAddr         string
	MetricsAddr       string
	TrustedProxies    request.TrustedProxies

	// JWKSURIAllowPrivate lets the server fetch clients' jwks_uri from loopback, private and link-local
	// addresses (package jwksfetch refuses them otherwise).
	JWKSURIAllowPrivate bool
	Registration        string
	// DPoPNonce: DPoP proofs must carry a server nonce (RFC 9449 §8, §9).
	DPoPNonce bool

	// The outbox (back-channel logout): BackchannelLogoutAllowPrivate lets deliveries go to loopback, private and
	// link-local addresses; OutboxPoll is how often each node looks for due messages; OutboxRetryBase is the
	// first retry's wait (doubling to an hour; 12 attempts or 24 hours, then dead).
	BackchannelLogoutAllowPrivate bool
	// WebhookAllowPrivate lets webhook deliveries go to loopback, private and link-local addresses.
	WebhookAllowPrivate bool
	OutboxPoll          time.Duration
	OutboxRetryBase     time.Duration
	// OutboxMaxAttempts is how many attempts a message gets before it is dead (visible, redeliverable).
	OutboxMaxAttempts int

	// Mail (email verification, password reset): SMTPURL is smtp://user:pass@host:587 (STARTTLS), smtps://...
	// (implicit TLS) or smtp://host:25 (no auth); empty: no mail, and the mail features answer
	// mail_not_configured. SMTPFrom is the From address; MailTemplatesDir overrides embedded mail templates.
	SMTPURL          string
	SMTPFrom         string
	MailTemplatesDir string

	// Passkeys (WebAuthn): WebAuthnRPID is the relying party id ("": the issuer's host), WebAuthnOrigins the
	// origins besides the issuer's whose pages may use passkeys through the token API (apps on a sibling host).
	WebAuthnRPID    string
	WebAuthnOrigins []string
}

// setting describes one configuration value: its flag, its variable, its default and how to parse it.
type setting struct {
	flag, env, def, help string
	set                  func(c *Config, v string) error
}

var settings = []setting{
	{"issuer", "LATCHKEY_ISSUER", "http://localhost:8080", "public base URL of this server; appears as iss in tokens",
		func(c *Config, v string) error { c.Issuer = v; return nil }},
	{"addr", "LATCHKEY_ADDR", ":8080", "address to listen on",
		func(c *Config, v string) error { c.Addr = v; return nil }},
	{"database-url", "LATCHKEY_DATABASE_URL", "sqlite://latchkey.db", "sqlite://PATH or postgres://...",
		func(c *Config, v string) error { c.DatabaseURL = v; return nil }},
	{"system-secret", "LATCHKEY_SECRET", "", "system secret (>= 32 characters): encrypts keys at rest, keys token HMACs and client secret hashes",
		func(c *Config, v string) error { c.Secret = v; return nil }},
	{"access-token-ttl", "LATCHKEY_ACCESS_TOKEN_TTL", "1h", "access token lifetime",
		durationSetter(func(c *Config) *time.Duration { return &c.AccessTokenTTL })},
	{"refresh-token-ttl", "LATCHKEY_REFRESH_TOKEN_TTL", "720h", "refresh token lifetime",
		durationSetter(func(c *Config) *time.Duration { return &c.RefreshTokenTTL })},
	{"auth-code-ttl", "LATCHKEY_AUTH_CODE_TTL", "1m", "authorization code lifetime",
		durationSetter(func(c *Config) *time.Duration { return &c.AuthCodeTTL })},
	{"device-code-ttl", "LATCHKEY_DEVICE_CODE_TTL", "10m", "how long a device sign-in (RFC 8628 device and user code) may take",
		durationSetter(func(c *Config) *time.Duration { return &c.DeviceCodeTTL })},
	{"device-poll-interval", "LATCHKEY_DEVICE_POLL_INTERVAL", "5s", "how often a device may poll the token endpoint (whole seconds); each slow_down adds 5s",
		durationSetter(func(c *Config) *time.Duration { return &c.DevicePoll })},
	{"id-token-ttl", "LATCHKEY_ID_TOKEN_TTL", "1h", "ID token lifetime",
		durationSetter(func(c *Config) *time.Duration { return &c.IDTokenTTL })},
	{"default-access-token-format", "LATCHKEY_DEFAULT_ACCESS_TOKEN_FORMAT", "opaque", "default access token format: opaque or jwt (clients may override)",
		func(c *Config, v string) error { c.AccessTokenFormat = v; return nil }},
	{"signing-alg", "LATCHKEY_SIGNING_ALG", "RS256", "algorithm for JWTs we sign: RS256 or ES256",
		func(c *Config, v string) error { c.SigningAlg = v; return nil }},
	{"key-rotation", "LATCHKEY_KEY_ROTATION", "0", "rotate signing keys automatically at this age (0 = only by 'latchkey keys rotate'); must exceed the key activation delay",
		durationSetter(func(c *Config) *time.Duration { return &c.KeyRotation })},
	{"key-reload-interval", "LATCHKEY_KEY_RELOAD_INTERVAL", "30s", "how often each node reloads signing keys from the database; a rotated-in key signs only after 2x this plus the JWKS max-age",
		durationSetter(func(c *Config) *time.Duration { return &c.KeyReloadInterval })},
	{"jwks-max-age", "LATCHKEY_JWKS_MAX_AGE", "5m", "how long verifiers may cache the JWKS (its Cache-Control max-age, whole seconds)",
		durationSetter(func(c *Config) *time.Duration { return &c.JWKSMaxAge })},
	{"auto-migrate", "LATCHKEY_AUTO_MIGRATE", "true", "apply database migrations at start",
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			c.AutoMigrate = b
			return err
		}},
	{"cleanup-interval", "LATCHKEY_CLEANUP_INTERVAL", "1m", "how often expired codes and tokens are deleted (0 = never)",
		durationSetter(func(c *Config) *time.Duration { return &c.CleanupInterval })},
	{"cleanup-batch", "LATCHKEY_CLEANUP_BATCH", "0", "rows deleted per table per cleanup statement (0 = 5000 for PostgreSQL, 1000 for SQLite)",
		intSetter(func(c *Config) *int { return &c.CleanupBatch })},
	{"audit-retention", "LATCHKEY_AUDIT_RETENTION", "2160h", "how long audit events are kept (2160h = 90 days; 0 = forever); older ones go in the cleanup",
		durationSetter(func(c *Config) *time.Duration { return &c.AuditRetention })},
	{"db-max-conns", "LATCHKEY_DB_MAX_CONNS", "0", "database connection pool size (0 = 1 for SQLite, 20 for PostgreSQL)",
		intSetter(func(c *Config) *int { return &c.DBMaxConns })},
	{"log-level", "LATCHKEY_LOG_LEVEL", "info", "debug, info, warn or error",
		func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{"log-format", "LATCHKEY_LOG_FORMAT", "json", "json or text",
		func(c *Config, v string) error { c.LogFormat = v; return nil }},
	{"max-body-bytes", "LATCHKEY_MAX_BODY_BYTES", "65536", "largest request body accepted",
		func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return errors.New("not a whole number of bytes")
			}
			c.MaxBodyBytes = n
			return nil
		}},
	{"session-idle-ttl", "LATCHKEY_SESSION_IDLE_TTL", "168h", "a browser session ends after this long unused",
		durationSetter(func(c *Config) *time.Duration { return &c.SessionIdleTTL })},
	{"session-ttl", "LATCHKEY_SESSION_TTL", "720h", "a browser session ends this long after sign-in in any case",
		durationSetter(func(c *Config) *time.Duration { return &c.SessionTTL })},
	{"api-token-header", "LATCHKEY_API_TOKEN_HEADER", "", "extra header the token API accepts the access token in, for tools that cannot set Authorization (e.g. X-Auth-Token)",
		func(c *Config, v string) error { c.APITokenHeader = v; return nil }},
	{"password-min-length", "LATCHKEY_PASSWORD_MIN_LENGTH", "10", "shortest password users may choose (at least 8)",
		intSetter(func(c *Config) *int { return &c.PasswordMinLength })},
	{"password-blocklist", "LATCHKEY_PASSWORD_BLOCKLIST", "", "file of refused passwords, one per line (default: a built-in list of common ones)",
		func(c *Config, v string) error { c.PasswordBlocklist = v; return nil }},
	{"debug-addr", "LATCHKEY_DEBUG_ADDR", "", "loopback host:port serving Go's pprof profiles for operators (empty = off)",
		func(c *Config, v string) error { c.DebugAddr = v; return nil }},
	{"metrics-addr", "LATCHKEY_METRICS_ADDR", "", "host:port serving Prometheus metrics on /metrics, apart from the public listener (empty = off; LATCHKEY_DEBUG_ADDR serves them too)",
		func(c *Config, v string) error { c.MetricsAddr = v; return nil }},
	{"trusted-proxies", "LATCHKEY_TRUSTED_PROXIES", "", "comma-separated CIDRs or addresses of load balancers whose X-Forwarded-For names the client (empty = trust none)",
		func(c *Config, v string) error {
			p, err := request.ParseTrustedProxies(v)
			c.TrustedProxies = p
			return err
		}},
	{"jwks-uri-allow-private", "LATCHKEY_JWKS_URI_ALLOW_PRIVATE", "false", "fetch clients' jwks_uri from loopback, private and link-local addresses too (development, or JWKS hosts inside your network)",
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			c.JWKSURIAllowPrivate = b
			return err
		}},
	{"registration", "LATCHKEY_REGISTRATION", "token", "dynamic client registration (RFC 7591) at /oauth2/register: off, token (needs an initial access token from 'latchkey clients registration-token') or open",
		func(c *Config, v string) error { c.Registration = v; return nil }},
	{"dpop-nonce", "LATCHKEY_DPOP_NONCE", "false", "DPoP proofs (RFC 9449) must carry a nonce the server issued (DPoP-Nonce): limits proofs made ahead of time",
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			c.DPoPNonce = b
			return err
		}},
	{"backchannel-logout-allow-private", "LATCHKEY_BACKCHANNEL_LOGOUT_ALLOW_PRIVATE", "false", "deliver back-channel logout tokens to loopback, private and link-local addresses too (clients' backends inside your network)",
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			c.BackchannelLogoutAllowPrivate = b
			return err
		}},
	{"webhook-allow-private", "LATCHKEY_WEBHOOK_ALLOW_PRIVATE", "false", "deliver webhooks to loopback, private and link-local addresses too (receivers inside your network); off, an admin API caller cannot aim deliveries inside",
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			c.WebhookAllowPrivate = b
			return err
		}},
	{"outbox-poll", "LATCHKEY_OUTBOX_POLL", "1s", "how often each node looks for outbox messages due (back-channel logout)",
		durationSetter(func(c *Config) *time.Duration { return &c.OutboxPoll })},
	{"outbox-retry-base", "LATCHKEY_OUTBOX_RETRY_BASE", "30s", "wait before the first retry of a failed outbox delivery; it doubles each time, to at most an hour",
		durationSetter(func(c *Config) *time.Duration { return &c.OutboxRetryBase })},
	{"outbox-max-attempts", "LATCHKEY_OUTBOX_MAX_ATTEMPTS", "12", "attempts an outbox delivery gets before it is dead (counted in latchkey_outbox_dead_messages; a dead webhook delivery can be redelivered)",
		intSetter(func(c *Config) *int { return &c.OutboxMaxAttempts })},
	{"smtp-url", "LATCHKEY_SMTP_URL", "", "SMTP server for account mail: smtp://user:pass@host:587 (STARTTLS, required with credentials), smtps://user:pass@host:465, or smtp://host:25; empty: no mail (verification and password reset are off)",
		func(c *Config, v string) error { c.SMTPURL = v; return nil }},
	{"smtp-from", "LATCHKEY_SMTP_FROM", "", "From address of account mail, e.g. 'Acme <no-reply@acme.example>' (required with LATCHKEY_SMTP_URL)",
		func(c *Config, v string) error { c.SMTPFrom = v; return nil }},
	{"mail-templates-dir", "LATCHKEY_MAIL_TEMPLATES_DIR", "", "directory whose verify_email.{txt,html}.tmpl and reset_password.{txt,html}.tmpl replace the embedded mail templates",
		func(c *Config, v string) error { c.MailTemplatesDir = v; return nil }},
	{"webauthn-rp-id", "LATCHKEY_WEBAUTHN_RP_ID", "", "passkeys' relying party id: the issuer's host (default) or a parent domain of it, e.g. example.com for apps on app.example.com",
		func(c *Config, v string) error { c.WebAuthnRPID = strings.ToLower(v); return nil }},
	{"webauthn-origins", "LATCHKEY_WEBAUTHN_ORIGINS", "", "comma-separated origins besides the issuer's whose pages may use passkeys through the token API (each within the relying party id)",
		func(c *Config, v string) error {
			c.WebAuthnOrigins = nil
			for _, o := range strings.Split(v, ",") {
				if o = strings.TrimSpace(o); o != "" {
					c.WebAuthnOrigins = append(c.WebAuthnOrigins, strings.ToLower(o))
				}
			}
			return nil
		}},
	{"shutdown-timeout", "LATCHKEY_SHUTDOWN_TIMEOUT", "15s", "how long in-flight requests get on SIGTERM",
		durationSetter(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
}

func durationSetter(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("not a duration (e.g. 90s, 15m, 1h)")
		}
		*field(c) = d
		return nil
	}
}

func intSetter(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("not a whole number")
		}
		*field(c) = n
		return nil
	}
}

// configFlags registers every setting on fs, defaulting to the environment; call load after fs.Parse.
type configFlags struct {
	values map[string]*string
}

func registerConfigFlags(fs *flag.FlagSet, env func(string) string) *configFlags {
	cf := &configFlags{values: map[string]*string{}}
	for _, s := range settings {
		def := s.def
		if v := env(s.env); v != "" {
			def = v
		}
		cf.values[s.flag] = fs.String(s.flag, def, s.help+" ("+s.env+")")
	}
	return cf
}

// load parses every setting and validates the whole, reporting every problem in one line.
func (cf *configFlags) load() (Config, error) {
	var c Config
	var problems []string
	unparsed := map[string]bool{}
	for _, s := range settings {
		if err := s.set(&c, *cf.values[s.flag]); err != nil {
			problems = append(problems, fmt.Sprintf("%s (--%s): %v", s.env, s.flag, err))
			unparsed[s.env] = true
		}
	}
	// A value that did not parse is reported once, not again by the checks on its (zero) value.
	for _, p := range c.validate() {
		if env, _, _ := strings.Cut(p, ":"); !unparsed[env] {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return c, fmt.Errorf("invalid configuration: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

func (c *Config) validate() []string {
	var p []string
	add := func(env, format string, args ...any) { p = append(p, env+": "+fmt.Sprintf(format, args...)) }

	if u, err := url.Parse(c.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(c.Issuer, "/") {
		add("LATCHKEY_ISSUER", "must be an absolute http(s) URL with no credentials, query, fragment or trailing slash")
	} else if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		add("LATCHKEY_ISSUER", "must use https unless the host is localhost or a loopback address")
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		add("LATCHKEY_ADDR", "must be host:port or :port, got %q", c.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		add("LATCHKEY_ADDR", "port must be a number from 0 to 65535, got %q", port)
	}
	switch {
	case strings.HasPrefix(c.DatabaseURL, "sqlite://"):
		if strings.TrimPrefix(c.DatabaseURL, "sqlite://") == "" {
			add("LATCHKEY_DATABASE_URL", "sqlite:// needs a file path, e.g. sqlite://latchkey.db")
		}
	case strings.HasPrefix(c.DatabaseURL, "postgres://"), strings.HasPrefix(c.DatabaseURL, "postgresql://"):
		if c.Secret == "" {
			add("LATCHKEY_SECRET", "required with PostgreSQL (at least 32 characters, the same on every node)")
		}
	default:
		add("LATCHKEY_DATABASE_URL", "must start with sqlite:// or postgres://")
	}
	if c.Secret != "" && len(c.Secret) < 32 {
		add("LATCHKEY_SECRET", "must be at least 32 characters")
	}
	for _, d := range []struct {
		env string
		v   time.Duration
	}{
		{"LATCHKEY_ACCESS_TOKEN_TTL", c.AccessTokenTTL}, {"LATCHKEY_REFRESH_TOKEN_TTL", c.RefreshTokenTTL},
		{"LATCHKEY_AUTH_CODE_TTL", c.AuthCodeTTL}, {"LATCHKEY_ID_TOKEN_TTL", c.IDTokenTTL},
		{"LATCHKEY_SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
		{"LATCHKEY_SESSION_IDLE_TTL", c.SessionIdleTTL}, {"LATCHKEY_SESSION_TTL", c.SessionTTL},
	} {
		if d.v <= 0 {
			add(d.env, "must be positive")
		}
	}
	if c.SessionIdleTTL > c.SessionTTL {
		add("LATCHKEY_SESSION_IDLE_TTL", "must not exceed LATCHKEY_SESSION_TTL")
	}
	if c.PasswordMinLength < 8 || c.PasswordMinLength > 128 {
		add("LATCHKEY_PASSWORD_MIN_LENGTH", "must be between 8 and 128")
	}
	if c.PasswordBlocklist != "" {
		if _, err := os.Stat(c.PasswordBlocklist); err != nil {
			add("LATCHKEY_PASSWORD_BLOCKLIST", "cannot read %q", c.PasswordBlocklist)
		}
	}
	c.validateWebAuthn(add)
	if c.APITokenHeader != "" && (strings.ContainsAny(c.APITokenHeader, " :\t\r\n") || strings.EqualFold(c.APITokenHeader, "Cookie")) {
		add("LATCHKEY_API_TOKEN_HEADER", "must be a plain header name such as X-Auth-Token")
	}
	if c.DeviceCodeTTL < time.Second || c.DeviceCodeTTL > time.Hour || c.DeviceCodeTTL%time.Second != 0 {
		add("LATCHKEY_DEVICE_CODE_TTL", "must be a whole number of seconds between 1s and 1h, got %v", c.DeviceCodeTTL)
	}
	if c.DevicePoll < time.Second || c.DevicePoll > time.Minute || c.DevicePoll%time.Second != 0 {
		add("LATCHKEY_DEVICE_POLL_INTERVAL", "must be a whole number of seconds between 1s and 1m, got %v", c.DevicePoll)
	}
	if c.AuthCodeTTL > 10*time.Minute {
		add("LATCHKEY_AUTH_CODE_TTL", "must be at most 10m (RFC 6749 §4.1.2)")
	}
	if c.SMTPURL != "" {
		if _, err := mailer.ParseSMTPURL(c.SMTPURL); err != nil {
			add("LATCHKEY_SMTP_URL", "%s", err.Error())
		}
		if c.SMTPFrom == "" {
			add("LATCHKEY_SMTP_FROM", "is required with LATCHKEY_SMTP_URL")
		}
	}
	if c.OutboxPoll <= 0 || c.OutboxRetryBase <= 0 || c.OutboxMaxAttempts <= 0 {
		add("LATCHKEY_OUTBOX_POLL/LATCHKEY_OUTBOX_RETRY_BASE/LATCHKEY_OUTBOX_MAX_ATTEMPTS", "must be positive")
	}
	if c.AuditRetention < 0 {
		add("LATCHKEY_AUDIT_RETENTION", "must not be negative (0 keeps audit events forever)")
	}
	if c.KeyRotation < 0 || c.CleanupInterval < 0 {
		add("LATCHKEY_KEY_ROTATION/LATCHKEY_CLEANUP_INTERVAL", "must not be negative")
	}
	if c.KeyRotation > 0 && c.KeyRotation < time.Hour {
		add("LATCHKEY_KEY_ROTATION", "must be 0 or at least 1h")
	}
	if c.KeyReloadInterval < time.Second || c.KeyReloadInterval > time.Hour {
		add("LATCHKEY_KEY_RELOAD_INTERVAL", "must be between 1s and 1h, got %v", c.KeyReloadInterval)
	}
	if c.JWKSMaxAge < time.Second || c.JWKSMaxAge > 24*time.Hour || c.JWKSMaxAge%time.Second != 0 {
		add("LATCHKEY_JWKS_MAX_AGE", "must be a whole number of seconds between 1s and 24h, got %v", c.JWKSMaxAge)
	}
	if delay := c.keyActivationDelay(); c.KeyRotation > 0 && c.KeyRotation <= delay {
		add("LATCHKEY_KEY_ROTATION", "must be longer than the key activation delay %v (2 x LATCHKEY_KEY_RELOAD_INTERVAL + LATCHKEY_JWKS_MAX_AGE)", delay)
	}
	if c.AccessTokenFormat != provider.FormatOpaque && c.AccessTokenFormat != provider.FormatJWT {
		add("LATCHKEY_DEFAULT_ACCESS_TOKEN_FORMAT", "must be opaque or jwt, got %q", c.AccessTokenFormat)
	}
	if c.SigningAlg != keys.RS256 && c.SigningAlg != keys.ES256 {
		add("LATCHKEY_SIGNING_ALG", "must be RS256 or ES256, got %q", c.SigningAlg)
	}
	if c.CleanupBatch < 0 || c.CleanupBatch > 100000 {
		add("LATCHKEY_CLEANUP_BATCH", "must be between 1 and 100000, or 0 for the database's default")
	}
	if c.DBMaxConns < 0 {
		add("LATCHKEY_DB_MAX_CONNS", "must not be negative")
	}
	if _, ok := logLevels[c.LogLevel]; !ok {
		add("LATCHKEY_LOG_LEVEL", "must be debug, info, warn or error")
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		add("LATCHKEY_LOG_FORMAT", "must be json or text")
	}
	if c.DebugAddr != "" {
		// Profiles expose memory contents and cost CPU: only an operator on the machine (or through a tunnel)
		// may reach them, never the public listener.
		if host, _, err := net.SplitHostPort(c.DebugAddr); err != nil || !isLoopbackHost(host) {
			add("LATCHKEY_DEBUG_ADDR", "must be a loopback host:port such as 127.0.0.1:6060, got %q", c.DebugAddr)
		}
	}
	if c.MetricsAddr != "" {
		// Metrics may be scraped from another host, so any address will do, but never the public listener's.
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			add("LATCHKEY_METRICS_ADDR", "must be host:port or :port, got %q", c.MetricsAddr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			add("LATCHKEY_METRICS_ADDR", "port must be a number from 0 to 65535, got %q", port)
		} else if sameListener(c.MetricsAddr, c.Addr) || sameListener(c.MetricsAddr, c.DebugAddr) {
			add("LATCHKEY_METRICS_ADDR", "must differ from LATCHKEY_ADDR and LATCHKEY_DEBUG_ADDR, got %q", c.MetricsAddr)
		}
	}
	if !slices.Contains(registration.Modes, c.Registration) {
		add("LATCHKEY_REGISTRATION", "must be off, token or open, got %q", c.Registration)
	}
	if c.MaxBodyBytes < 1024 {
		add("LATCHKEY_MAX_BODY_BYTES", "must be at least 1024")
	}
	return p
}

// keyActivationDelay is how long a rotated-in key is published before it signs (keys.Manager.ActivationDelay).
func (c *Config) keyActivationDelay() time.Duration {
	return keys.ActivationDelay(c.KeyReloadInterval, c.JWKSMaxAge)
}

// sameListener reports whether two listen addresses would claim the same port on a shared interface (":8080"
// and "0.0.0.0:8080" and "127.0.0.1:8080" all collide). Port 0 picks a free port, so it never collides.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wildcard(ha) || wildcard(hb)
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// secretFile is where the system secret is kept when LATCHKEY_SECRET is not set: beside the SQLite database.
func (c *Config) secretFile() string {
	path := strings.TrimPrefix(c.DatabaseURL, "sqlite://")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return path + ".secret"
}

// systemSecret returns the configured secret, or for SQLite without one, the secret kept in a 0600 file beside
// the database, generated on first use. PostgreSQL deployments must configure it (validate enforces that).
func (c *Config) systemSecret(logger *slog.Logger) ([]byte, error) {
	if c.Secret != "" {
		return []byte(c.Secret), nil
	}
	path := c.secretFile()
	if b, err := os.ReadFile(path); err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 32 {
			return nil, fmt.Errorf("LATCHKEY_SECRET: secret file %s holds fewer than 32 characters", path)
		}
		return []byte(s), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("LATCHKEY_SECRET: read secret file: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate system secret: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("LATCHKEY_SECRET: create directory for secret file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		// Another process created it between our read and our create: use theirs.
		return c.systemSecret(logger)
	} else if err != nil {
		return nil, fmt.Errorf("LATCHKEY_SECRET: create secret file: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("LATCHKEY_SECRET: write secret file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("LATCHKEY_SECRET: write secret file: %w", err)
	}
	logger.Warn("LATCHKEY_SECRET is not set: generated a system secret into a file beside the SQLite database; back it up with the database, and set LATCHKEY_SECRET in production", "file", path)
	return []byte(s), nil
}

// validateWebAuthn checks the passkey settings against the issuer: the relying party id must be the issuer's host or
// a parent domain of it (the sign-in pages are on the issuer's origin), and every extra origin an https origin (or
// http on localhost) whose host is within the relying party id, as browsers require.
func (c Config) validateWebAuthn(add func(setting, format string, args ...any)) {
	within := func(host, rpID string) bool { return host == rpID || strings.HasSuffix(host, "."+rpID) }
	iss, err := url.Parse(c.Issuer)
	if err != nil || iss.Host == "" {
		return // the issuer's own problem, reported with it
	}
	rpID := c.WebAuthnRPID
	if rpID == "" {
		rpID = iss.Hostname()
	} else if !within(iss.Hostname(), rpID) || !strings.Contains(strings.Trim(rpID, "."), ".") && rpID != "localhost" || net.ParseIP(rpID) != nil {
		add("LATCHKEY_WEBAUTHN_RP_ID", "must be the issuer's host %q or a parent domain of it (not a top-level domain), got %q", iss.Hostname(), rpID)
		return
	}
	for _, o := range c.WebAuthnOrigins {
		u, err := url.Parse(o)
		switch {
		case err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			add("LATCHKEY_WEBAUTHN_ORIGINS", "%q is not an origin (scheme://host[:port])", o)
		case u.Scheme != "https" && !(u.Scheme == "http" && u.Hostname() == "localhost"):
			add("LATCHKEY_WEBAUTHN_ORIGINS", "%q must be https (http only on localhost)", o)
		case !within(u.Hostname(), rpID):
			add("LATCHKEY_WEBAUTHN_ORIGINS", "%q is not within the relying party id %q", o, rpID)
		}
	}
}
