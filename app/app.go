package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/handlers/account"
	"github.com/latchkey/latchkey/handlers/accountmail"
	"github.com/latchkey/latchkey/handlers/admin"
	"github.com/latchkey/latchkey/handlers/browser"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/oauth"
	"github.com/latchkey/latchkey/handlers/passkeys"
	"github.com/latchkey/latchkey/handlers/registration"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/handlers/tokenapi"
	"github.com/latchkey/latchkey/jwksfetch"
	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/logwriter"
	"github.com/latchkey/latchkey/mailer"
	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/outbox"
	"github.com/latchkey/latchkey/passkey"
	"github.com/latchkey/latchkey/passwords"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/telemetry"
	"github.com/latchkey/latchkey/templates"
	"github.com/latchkey/latchkey/upstream"
)

// app is everything a command needs, wired in one place: config -> store -> keys -> provider -> handlers.
type app struct {
	cfg    Config
	logger *slog.Logger
	secret []byte
	store  *models.Store
	keys   *keys.Manager
	prov   *provider.Provider
	pages  *templates.Renderer
	policy *passwords.Policy
	// mail renders account mails and smtp is where they go; both nil without LATCHKEY_SMTP_URL.
	mail *mailer.Composer
	smtp *mailer.SMTP
	// now is the one clock: the store's timestamps, key activation, token issuance, sessions, consents and the
	// sign-in throttle all read it (through clock). It must follow the wall clock, because fosite checks token
	// expiry and auth_time against time.Now itself.
	now func() time.Time
	// throttleNow, when a test sets it before serving, replaces the clock for the sign-in throttle alone: the
	// throttle tests jump hours ahead to let blocks pass, which the rest of the app cannot follow (see now).
	throttleNow func() time.Time
	// metrics is the Prometheus registry and the counters handlers report to; tracing wraps the router when
	// trace export is configured (nil: off).
	metrics *telemetry.Metrics
	tracing *telemetry.Tracing
	// passkeys is the WebAuthn relying party (the issuer's host and origin).
	passkeys *passkey.RP
}

// clock is the app's current time.
func (a *app) clock() time.Time { return a.now() }

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevels[cfg.LogLevel]}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	// slog's JSON output, encoded more cheaply for plain records such as the access log's.
	return slog.New(logwriter.NewJSONHandler(w, opts))
}

// openApp opens the database (migrating unless told not to), loads the signing keys and composes the provider.
func openApp(ctx context.Context, cfg Config, logger *slog.Logger) (*app, error) {
	secret, err := cfg.systemSecret(logger)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, logger: logger, secret: secret, now: time.Now}
	store, err := models.Open(ctx, cfg.DatabaseURL, models.Options{
		Now:            a.clock,
		Logger:         logger,
		MaxOpenConns:   cfg.DBMaxConns,
		NewSession:     func() fosite.Session { return provider.NewSession() },
		AuditRetention: cfg.AuditRetention,
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	a.store = store
	if cfg.AutoMigrate {
		if err := store.Migrate(ctx); err != nil {
			store.Close()
			return nil, fmt.Errorf("migrate database: %w", err)
		}
	}
	a.keys, err = keys.NewManager(store, secret, keys.Options{
		Now:          a.clock,
		Logger:       logger,
		RetainFor:    cfg.keyRetention(),
		RotateEvery:  cfg.KeyRotation,
		RefreshEvery: cfg.KeyReloadInterval,
		JWKSMaxAge:   cfg.JWKSMaxAge,
		OnRotation:   func(alg, outcome string) { a.metrics.KeyRotation(alg, outcome) }, // a.metrics is set below, before any rotation
	})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("key manager: %w", err)
	}
	if err := a.keys.Load(ctx); err != nil {
		v, verr := store.SchemaVersion(ctx)
		store.Close()
		if verr != nil || v == 0 {
			return nil, fmt.Errorf("the database has no schema yet: run `latchkey migrate` (or leave LATCHKEY_AUTO_MIGRATE on): %w", err)
		}
		return nil, err
	}
	a.policy, err = passwords.NewPolicy(cfg.PasswordMinLength, cfg.PasswordBlocklist)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("LATCHKEY_PASSWORD_BLOCKLIST: %w", err)
	}
	a.pages, err = templates.New()
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("parse templates: %w", err)
	}
	// WebAuthn needs a domain: an issuer on an IP address (a test, a LAN) serves everything else, without passkeys.
	if rp, perr := passkey.New(passkey.Config{Issuer: cfg.Issuer, RPID: cfg.WebAuthnRPID, Origins: cfg.WebAuthnOrigins}, store); perr != nil {
		logger.Warn("passkeys are off", "reason", perr.Error())
	} else {
		rp.Log, a.passkeys = request.Logger, rp
		a.pages.OfferPasskeySignIn(passkeys.PathSignIn)
	}
	if cfg.SMTPURL != "" {
		if a.smtp, err = mailer.ParseSMTPURL(cfg.SMTPURL); err == nil {
			a.mail, err = mailer.NewComposer(cfg.SMTPFrom, cfg.Issuer, cfg.MailTemplatesDir, a.clock)
		}
		if err != nil {
			store.Close()
			return nil, err
		}
	}
	a.prov, err = provider.New(provider.Options{
		FormPostTemplate:      a.pages.FormPostTemplate(),
		Issuer:                cfg.Issuer,
		SystemSecret:          secret,
		AccessTokenLifespan:   cfg.AccessTokenTTL,
		RefreshTokenLifespan:  cfg.RefreshTokenTTL,
		AuthorizeCodeLifespan: cfg.AuthCodeTTL,
		IDTokenLifespan:       cfg.IDTokenTTL,
		AccessTokenFormat:     cfg.AccessTokenFormat,
		SigningAlg:            cfg.SigningAlg,
		Now:                   a.clock,
		Directory:             grantDirectory{store: store, idle: cfg.SessionIdleTTL},
		DeviceCodes:           deviceCodes{store},
		JWKSFetcher:           jwksfetch.New(jwksfetch.Options{AllowPrivate: cfg.JWKSURIAllowPrivate, Logger: request.Logger}),
		DPoPNonce:             cfg.DPoPNonce,
	}, store, a.keys)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("compose provider: %w", err)
	}
	a.metrics = telemetry.New(telemetry.Options{GrantTypes: slices.Concat(a.prov.GrantTypes(), []string{provider.GrantTypeFirstPartySignIn})})
	a.metrics.WatchDBPools(store.PoolStats)
	a.metrics.WatchOutbox(store.OutboxCounts)
	return a, nil
}

// grantDirectory is what the provider reads again at every code exchange and refresh: the user and the browser
// session behind the grant.
type grantDirectory struct {
	store *models.Store
	idle  time.Duration
}

func (d grantDirectory) GrantUser(ctx context.Context, userID string) (provider.Identity, error) {
	u, err := d.store.UserByID(ctx, userID)
	if errors.Is(err, models.ErrNotFound) || err == nil && u.Disabled {
		return provider.Identity{}, provider.ErrGrantEnded
	} else if err != nil {
		return provider.Identity{}, err
	}
	return provider.Identity{
		UserID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name,
		Roles: u.Roles, Extras: u.Extras, Pool: u.Pool, UpdatedAt: u.UpdatedAt,
	}, nil
}

func (d grantDirectory) UseGrantSession(ctx context.Context, sid string, now time.Time) error {
	if err := d.store.UseBrowserSession(ctx, sid, now, d.idle); errors.Is(err, models.ErrNotFound) {
		return provider.ErrGrantEnded
	} else if err != nil {
		return err
	}
	return nil
}

// deviceCodes is the device authorizations' storage as the provider's token endpoint polls it.
type deviceCodes struct{ store *models.Store }

func (d deviceCodes) PollDeviceCode(ctx context.Context, deviceCode, clientID string, now time.Time) (provider.DevicePoll, error) {
	p, err := d.store.PollDeviceAuthorization(ctx, deviceCode, clientID, now)
	if err != nil {
		return provider.DevicePoll{}, err
	}
	out := provider.DevicePoll{Interval: p.Interval, Session: p.Session, Scopes: p.Scopes}
	switch {
	case p.Expired:
		out.State = provider.DeviceExpired
	case p.SlowDown:
		out.State = provider.DeviceSlowDown
	case p.Outcome == models.DevicePending:
		out.State = provider.DevicePending
	case p.Outcome == models.DeviceDenied:
		out.State = provider.DeviceDenied
	case p.Outcome == models.DeviceApproved:
		out.State = provider.DeviceApproved
	default:
		out.State = provider.DeviceSpent
	}
	return out, nil
}

func (d deviceCodes) ReleaseDeviceCode(ctx context.Context, deviceCode string) error {
	return d.store.ReleaseDeviceAuthorization(ctx, deviceCode)
}

// keyRetention is how long a retired public key stays in the JWKS: the longest lifetime of anything signed with
// it, plus a margin for clock skew and verifiers' JWKS caches.
func (c Config) keyRetention() time.Duration {
	return max(c.AccessTokenTTL, c.IDTokenTTL) + 10*time.Minute
}

func (a *app) Close() error { return a.store.Close() }

// handler is the whole HTTP surface.
func (a *app) handler() http.Handler {
	return handlers.NewRouter(handlers.RouterOptions{Logger: a.logger, MaxBodyBytes: a.cfg.MaxBodyBytes, TrustedProxies: a.cfg.TrustedProxies, Metrics: a.metrics},
		a.families()...)
}

// families are the endpoint families handler mounts, in one list.
func (a *app) families() []handlers.Routes {
	cors := &request.CORS{Origins: a.store, Unavailable: jsonapi.WriteUnavailable}
	throttleNow := a.clock
	if a.throttleNow != nil {
		throttleNow = a.throttleNow
	}
	signIns := &throttle.Throttle{Store: a.store, Account: throttle.DefaultAccountPolicy, IP: throttle.DefaultIPPolicy,
		DeviceKey: keys.Derive(a.secret, "device-token"), Now: throttleNow, Rejections: a.metrics}
	mfaSealer := mfa.NewSealer(a.secret)
	pages := &browser.Browser{
		OAuth: a.prov.OAuth2, Store: a.store, Hints: a.prov, Pages: a.pages, Issuer: a.cfg.Issuer, Throttle: signIns,
		Devices:     a.store,
		Upstream:    &browser.Upstream{Client: upstream.New(a.secret, a.cfg.Issuer+browser.PathUpstreamCallback, upstreamTimeout), Store: a.store},
		Mail:        a.composeMail(),
		MFASealer:   mfaSealer,
		Passkeys:    a.passkeys,
		Secret:      keys.Derive(a.secret, "csrf"),
		SessionIdle: a.cfg.SessionIdleTTL, SessionAbsolute: a.cfg.SessionTTL, Now: a.clock,
	}
	api := &tokenapi.API{
		OAuth: a.prov.OAuth2, Issuer: a.prov, Store: a.store, Policy: a.policy, Throttle: signIns, CORS: cors, DPoP: a.prov,
		TokenHeader: a.cfg.APITokenHeader, SessionIdle: a.cfg.SessionIdleTTL, SessionAbsolute: a.cfg.SessionTTL,
		Now: a.clock, Issued: a.metrics,
		Factors: a.store, Sealer: mfaSealer, MFAIssuer: mfaIssuer(a.cfg.Issuer), Mail: a.composeMail(),
		Passkeys: a.passkeys,
	}
	return []handlers.Routes{
		&handlers.Health{DB: a.store},
		&oauth.Discovery{Metadata: a.metadata()},
		&oauth.JWKS{Keys: a.keys, MaxAge: a.cfg.JWKSMaxAge},
		&oauth.Token{OAuth: a.prov.OAuth2, GrantTypes: a.prov.GrantTypes(), CORS: cors, Clients: a.store, Issued: a.metrics,
			Password: &oauth.PasswordGrant{Store: a.store, Throttle: signIns, SessionIdle: a.cfg.SessionIdleTTL, SessionAbsolute: a.cfg.SessionTTL, Now: a.clock},
			DPoP:     a.prov},
		&oauth.DeviceAuthorization{OAuth: a.prov.OAuth2, Clients: a.prov, Store: a.store, Issuer: a.cfg.Issuer,
			Lifetime: a.cfg.DeviceCodeTTL, Interval: a.cfg.DevicePoll, Throttle: signIns, Now: a.clock},
		&oauth.Introspect{OAuth: a.prov.OAuth2, Clients: a.store, Assertions: a.prov},
		&oauth.Revoke{OAuth: a.prov.OAuth2, CORS: cors, Clients: a.store},
		&oauth.PAR{OAuth: a.prov.OAuth2, Throttle: signIns},
		&oauth.UserInfo{OAuth: a.prov.OAuth2, Users: a.store, CORS: cors, DPoP: a.prov},
		pages,
		// Before the token API, whose /api/v1/auth subrouter would otherwise see /api/v1/auth/passkeys first.
		&passkeys.Passkeys{
			RP: a.passkeys, Store: a.store, API: api, Browser: pages, Pages: a.pages, Issuer: a.cfg.Issuer,
			Secret: keys.Derive(a.secret, "csrf"), Throttle: signIns, CORS: cors, Now: a.clock,
		},
		&accountmail.Pages{
			Store: a.store, Mail: a.composeMail(), Policy: a.policy, Throttle: signIns, Pages: a.pages,
			Issuer: a.cfg.Issuer, Secret: keys.Derive(a.secret, "csrf"), Now: a.clock,
		},
		&account.Pages{
			Store: a.store, Policy: a.policy, Throttle: signIns, Sealer: mfaSealer, MFAIssuer: mfaIssuer(a.cfg.Issuer),
			Mail: a.composeMail(), Pages: a.pages, Issuer: a.cfg.Issuer, Secret: keys.Derive(a.secret, "csrf"), Now: a.clock,
			SessionIdle: a.cfg.SessionIdleTTL,
		},
		&admin.API{
			OAuth: a.prov.OAuth2, Store: a.store, Issuer: a.prov, Now: a.clock, Issued: a.metrics, DPoP: a.prov,
			SessionIdle: a.cfg.SessionIdleTTL, SessionAbsolute: a.cfg.SessionTTL, Secrets: a.prov, Keys: a.keys,
			Webhooks: &admin.Webhooks{Store: a.store, Secrets: outbox.NewWebhookSecrets(a.secret)},
		},
		&registration.API{
			Mode: a.cfg.Registration, Issuer: a.cfg.Issuer, Store: a.store, Secrets: a.prov.Hasher, Sealer: a.prov.Sealer,
			Tokens: provider.NewRegistrationTokenHasher(a.secret), Policy: registrationPolicy, Throttle: signIns, Now: a.clock,
		},
		api,
	}
}

// mfaIssuer labels Latchkey's factors in authenticator apps: the issuer's host.
func mfaIssuer(issuer string) string {
	if u, err := url.Parse(issuer); err == nil && u.Host != "" {
		return u.Host
	}
	return "Latchkey"
}

// upstreamTimeout bounds each call to another provider during a sign-in through it.
const upstreamTimeout = 10 * time.Second

// registrationPolicy is what dynamically registered clients may hold: users of the default pool, the scopes
// Latchkey itself understands.
var registrationPolicy = models.RegistrationPolicy{Pool: models.DefaultPool, Scopes: provider.StandardScopes}

// metadata is the discovery document: the provider's, with the registration endpoint while registration is on.
func (a *app) metadata() provider.Metadata {
	md := a.prov.Metadata()
	if a.cfg.Registration != registration.ModeOff {
		md.RegistrationEndpoint = a.cfg.Issuer + provider.PathRegister
	}
	return md
}

// runCleanup deletes expired rows every interval, in bounded batches so no statement holds locks for long.
func (a *app) runCleanup(ctx context.Context) {
	if a.cfg.CleanupInterval <= 0 {
		return
	}
	t := time.NewTicker(a.cfg.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.cleanupOnce(ctx, a.clock())
		}
	}
}

// cleanupOnce deletes everything that expired before now, one bounded batch per table at a time; after the
// first round only the tables that still had a full batch are swept again.
func (a *app) cleanupOnce(ctx context.Context, now time.Time) int64 {
	batch := a.cfg.CleanupBatch
	if batch == 0 {
		batch = a.store.DefaultCleanupBatch()
	}
	var total int64
	var tables []string // nil: all of them
	for ctx.Err() == nil {
		start := time.Now()
		n, more, err := a.store.DeleteExpiredRound(ctx, now, batch, tables)
		if err != nil {
			if ctx.Err() == nil {
				a.logger.Error("delete expired rows", "error", err)
			}
			break
		}
		total += n
		if len(more) == 0 {
			break
		}
		tables = more
		// Rest as long as the batch took: a backlog then drains using at most half of this node's database
		// time, and requests in between keep their latency (SQLite's single connection most of all).
		select {
		case <-ctx.Done():
		case <-time.After(time.Since(start)):
		}
	}
	if total > 0 {
		a.logger.Info("deleted expired rows", "rows", total)
	}
	return total
}
