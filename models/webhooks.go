package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Webhooks tell an operator's backend what happened to users and sessions. A Webhook is a subscription: a URL,
// the event types it wants, and the pool it watches (or all). An event is fanned out, in the transaction of the
// change that causes it (fanOutWebhooks), into one outbox message of kind OutboxWebhook per matching webhook; the
// outbox worker (package outbox: Webhook) signs and POSTs it. Deliveries to one webhook about one user share an
// order key, so they arrive in order. The rules for a webhook live here once (Webhook.Validate) for the CLI and
// the admin API.

// OutboxWebhook is the outbox kind of a webhook delivery: Target is the webhook's id (its URL and secret are read
// at each attempt, so a changed URL or a rotated secret applies to what is still pending), the payload is the
// event exactly as it is POSTed (a WebhookPayload).
const OutboxWebhook = "webhook"

// The event types a webhook may subscribe to: audit events (audit.go), which recordEvent fans out
// (webhookFor). WebhookEventTypes lists them with what they mean (the README and the admin API's documentation
// say the same).
const (
	WebhookUserCreated         = EventUserCreated
	WebhookUserUpdated         = EventUserUpdated
	WebhookUserDeleted         = EventUserDeleted
	WebhookUserEmailVerified   = EventEmailVerified
	WebhookUserPasswordChanged = EventPasswordChanged
	WebhookSessionStarted      = EventSessionStarted
	WebhookSessionEnded        = EventSessionEnded
)

// webhookFor is the webhook event an audit event also is, if any. recordEvent calls it for every event it
// writes, so a delivery is enqueued exactly when its audit row is, in the same transaction.
func webhookFor(ev Event, now time.Time) (WebhookEvent, bool) {
	switch ev.Type {
	case EventUserCreated, EventUserUpdated, EventUserDeleted, EventEmailVerified, EventPasswordChanged:
		return userEvent(ev.Type, ev.UserID), true
	case EventPasswordReset:
		return userEvent(WebhookUserPasswordChanged, ev.UserID), true
	case EventSessionStarted, EventSessionEnded:
		sid, _ := ev.Details["session_id"].(string)
		return sessionEvent(ev.Type, sid, ev.UserID, now), true
	}
	return WebhookEvent{}, false
}

// WebhookEventTypes is the catalog of event types: type -> when it is sent.
var WebhookEventTypes = map[string]string{
	WebhookUserCreated:         "a user was created (sign-up, the CLI, the admin API, a first sign-in through another provider)",
	WebhookUserUpdated:         "a user's name, roles, claims or disabled flag changed",
	WebhookUserDeleted:         "a user was deleted (data: the user as it was)",
	WebhookUserEmailVerified:   "a user verified their email address",
	WebhookUserPasswordChanged: "a user's password was changed or reset",
	WebhookSessionStarted:      "a browser session started (a sign-in, or tokens minted through the admin API)",
	WebhookSessionEnded:        "a browser session ended (sign-out, revocation, password change, disable, the session cap)",
}

// maxWebhookURL bounds a webhook's URL.
const maxWebhookURL = 2000

// Webhook is a subscription to events.
type Webhook struct {
	ID     string   `json:"id"` // "whk_" + 26 base32 characters
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Pool   string   `json:"pool"` // "" for every pool
	// SealedSecret is the signing secret sealed (outbox.WebhookSecrets, bound to ID); never shown.
	SealedSecret string    `json:"-"`
	Enabled      bool      `json:"enabled"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// NewWebhookID is a new webhook's id; the secret is sealed for it before the webhook is stored.
func NewWebhookID() (string, error) { return newPublicID("whk_") }

// Validate checks a webhook as stored: an absolute http(s) URL without credentials or fragment (http is allowed:
// the operator decides; the body is signed but readable on the way), at least one event type, each from
// WebhookEventTypes, and a well-formed pool name or "". ErrInvalid (a ValidationError naming the fields).
// Events are sorted and deduplicated. Whether the pool exists is checked when it is stored.
func (w *Webhook) Validate() error {
	var p problems
	u, err := url.Parse(w.URL)
	switch {
	case w.URL == "":
		p.add("url", "is required")
	case len(w.URL) > maxWebhookURL:
		p.add("url", "is longer than %d characters", maxWebhookURL)
	case err != nil || !u.IsAbs() || u.Host == "":
		p.add("url", "must be an absolute http or https URL")
	case u.Scheme != "https" && u.Scheme != "http":
		p.add("url", "must use https (or http), not %q", u.Scheme)
	case u.User != nil:
		p.add("url", "must not carry credentials; the signature authenticates deliveries")
	case u.Fragment != "" || strings.HasSuffix(w.URL, "#"):
		p.add("url", "must not have a fragment")
	}
	if len(w.Events) == 0 {
		p.add("events", "name at least one event type (known: %s)", strings.Join(WebhookEventTypeNames(), ", "))
	}
	for _, e := range w.Events {
		if _, ok := WebhookEventTypes[e]; !ok {
			p.add("events", "%q is not an event type (known: %s)", e, strings.Join(WebhookEventTypeNames(), ", "))
		}
	}
	slices.Sort(w.Events)
	w.Events = slices.Compact(w.Events)
	if w.Pool != "" && validatePoolName(w.Pool) != nil {
		p.add("pool", "%q is not a pool name", w.Pool)
	}
	return p.err()
}

// WebhookEventTypeNames is the catalog's types, sorted.
func WebhookEventTypeNames() []string {
	names := make([]string, 0, len(WebhookEventTypes))
	for n := range WebhookEventTypes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

type webhookRow struct {
	ID           string    `gorm:"column:id;primaryKey"`
	URL          string    `gorm:"column:url"`
	Events       string    `gorm:"column:events"` // a JSON list, so a subscription is found with LIKE '%"type"%'
	Pool         string    `gorm:"column:pool"`
	SecretSealed string    `gorm:"column:secret_sealed"`
	Enabled      bool      `gorm:"column:enabled"`
	CreatedAt    time.Time `gorm:"column:created_at"`
	UpdatedAt    time.Time `gorm:"column:updated_at"`
}

func (webhookRow) TableName() string { return "webhooks" }

func (r *webhookRow) webhook() (*Webhook, error) {
	events, err := decodeList(r.Events)
	if err != nil {
		return nil, err
	}
	return &Webhook{ID: r.ID, URL: r.URL, Events: events, Pool: r.Pool, SealedSecret: r.SecretSealed, Enabled: r.Enabled,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}, nil
}

// CreateWebhook validates and stores w (ID and SealedSecret set by the caller). ErrInvalid as Validate, and for
// a pool that does not exist; ErrConflict if the id is taken.
func (s *Store) CreateWebhook(ctx context.Context, w *Webhook) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	if !strings.HasPrefix(w.ID, "whk_") || w.SealedSecret == "" {
		return fmt.Errorf("create webhook: %w: id and sealed secret are required", ErrInvalid)
	}
	now := dbTime(s.now())
	row := webhookRow{ID: w.ID, URL: w.URL, Events: encodeList(w.Events), Pool: w.Pool, SecretSealed: w.SealedSecret,
		Enabled: w.Enabled, CreatedAt: now, UpdatedAt: now}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if w.Pool != "" {
			if err := requirePool(tx, w.Pool); err != nil {
				return err
			}
		}
		if err := tx.Create(&row).Error; errors.Is(err, gorm.ErrDuplicatedKey) {
			return ErrConflict
		} else if err != nil {
			return mapErr(err)
		}
		return recordWebhookChange(ctx, tx, EventWebhookCreated, w.ID, nil)
	})
	if err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	w.CreatedAt, w.UpdatedAt = now, now
	return nil
}

// storedWebhook reads webhook id in tx as it is now, for an event's before or after; nil if there is none.
func storedWebhook(tx *gorm.DB, id string) *Webhook {
	var row webhookRow
	if tx.Where("id = ?", id).Take(&row).Error != nil {
		return nil
	}
	w, err := row.webhook()
	if err != nil {
		return nil
	}
	return w
}

// webhookAuditView is what a webhook event shows of w (nil: none): never its secret, and its URL without the
// query, which may carry a receiver's token.
func webhookAuditView(w *Webhook) map[string]any {
	if w == nil {
		return nil
	}
	u := w.URL
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i] + "?(set)"
	}
	return map[string]any{"url": u, "events": w.Events, "pool": w.Pool, "enabled": w.Enabled}
}

// recordWebhookChange records evType for webhook id in tx, with the webhook as it was (nil for a creation) and
// as it now is in tx (nil after a deletion); the event is in the webhook's pool ("" for every pool, so only an
// admin client of every pool sees it).
func recordWebhookChange(ctx context.Context, tx *gorm.DB, evType, id string, before *Webhook) error {
	ev := Event{Type: evType, Details: map[string]any{"webhook_id": id}}
	after := storedWebhook(tx, id)
	for _, w := range []*Webhook{after, before} {
		if w != nil {
			ev.Pool = w.Pool
		}
	}
	if evType != EventWebhookRotated {
		if b := webhookAuditView(before); b != nil {
			ev.Details["before"] = b
		}
		if a := webhookAuditView(after); a != nil {
			ev.Details["after"] = a
		}
	}
	return recordEvent(ctx, tx, ev)
}

// WebhookByID returns a webhook; ErrNotFound if there is none.
func (s *Store) WebhookByID(ctx context.Context, id string) (*Webhook, error) {
	var row webhookRow
	if err := s.conn(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("get webhook: %w", mapErr(err))
	}
	return row.webhook()
}

// ListWebhooks returns the webhooks of pools (nil: every webhook, also those of all pools), oldest first.
func (s *Store) ListWebhooks(ctx context.Context, pools []string) ([]Webhook, error) {
	q := s.conn(ctx).Order("created_at, id")
	switch {
	case pools == nil:
	case len(pools) == 0:
		return []Webhook{}, nil
	default:
		q = q.Where("pool IN ?", pools)
	}
	var rows []webhookRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list webhooks: %w", mapErr(err))
	}
	out := make([]Webhook, 0, len(rows))
	for i := range rows {
		w, err := rows[i].webhook()
		if err != nil {
			return nil, fmt.Errorf("list webhooks: %w", err)
		}
		out = append(out, *w)
	}
	return out, nil
}

// UpdateWebhook replaces the URL, events and enabled flag of webhook w.ID (its pool and secret stay), validated
// as CreateWebhook; ErrNotFound if there is no such webhook.
func (s *Store) UpdateWebhook(ctx context.Context, w *Webhook) error {
	return s.UpdateWebhookIf(ctx, w, nil)
}

// UpdateWebhookIf is UpdateWebhook applied only while the webhook's updated_at is still unmodified (nil: always),
// decided in the UPDATE itself; ErrPreconditionFailed when it changed.
func (s *Store) UpdateWebhookIf(ctx context.Context, w *Webhook, unmodified *time.Time) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("update webhook: %w", err)
	}
	now := dbTime(s.now())
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		before := storedWebhook(tx, w.ID)
		q := tx.Model(&webhookRow{}).Where("id = ?", w.ID)
		if unmodified != nil {
			now = stamp(now, *unmodified) // a new ETag even within the clock's resolution
			q = q.Where("updated_at = ?", dbTime(*unmodified))
		}
		res := q.UpdateColumns(map[string]any{"url": w.URL, "events": encodeList(w.Events), "enabled": w.Enabled, "updated_at": now})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 0 && unmodified != nil {
			return unlessGone(tx, &webhookRow{}, "id = ?", w.ID)
		} else if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return recordWebhookChange(ctx, tx, EventWebhookUpdated, w.ID, before)
	})
	if err != nil {
		return fmt.Errorf("update webhook: %w", err)
	}
	w.UpdatedAt = now
	return nil
}

// SetWebhookSecret replaces a webhook's sealed secret: deliveries still pending are signed with the new one.
// ErrNotFound if there is no such webhook.
func (s *Store) SetWebhookSecret(ctx context.Context, id, sealed string) error {
	if sealed == "" {
		return fmt.Errorf("set webhook secret: %w: no secret", ErrInvalid)
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&webhookRow{}).Where("id = ?", id).
			UpdateColumns(map[string]any{"secret_sealed": sealed, "updated_at": dbTime(s.now())})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return recordWebhookChange(ctx, tx, EventWebhookRotated, id, nil)
	})
	if err != nil {
		return fmt.Errorf("set webhook secret: %w", err)
	}
	return nil
}

// DeleteWebhook deletes a webhook and its deliveries, pending or done, in one transaction; ErrNotFound if there
// is no such webhook.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	return s.DeleteWebhookIf(ctx, id, nil)
}

// DeleteWebhookIf is DeleteWebhook applied only while the webhook's updated_at is still unmodified (nil: always);
// ErrPreconditionFailed when it changed.
func (s *Store) DeleteWebhookIf(ctx context.Context, id string, unmodified *time.Time) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		before := storedWebhook(tx, id)
		q := tx.Where("id = ?", id)
		if unmodified != nil {
			q = q.Where("updated_at = ?", dbTime(*unmodified))
		}
		res := q.Delete(&webhookRow{})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 0 && unmodified != nil {
			return unlessGone(tx, &webhookRow{}, "id = ?", id)
		} else if res.RowsAffected == 0 {
			return ErrNotFound
		}
		if err := tx.Where("kind = ? AND target = ?", OutboxWebhook, id).Delete(&outboxRow{}).Error; err != nil {
			return mapErr(err)
		}
		return recordWebhookChange(ctx, tx, EventWebhookDeleted, id, before)
	})
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	return nil
}

// WebhookDeliveries is a page of webhook id's deliveries, newest first: at most limit, before cursor ("" for
// the newest); next is the cursor of the following page, "" at the end.
func (s *Store) WebhookDeliveries(ctx context.Context, id, cursor string, limit int) (list []OutboxMessage, next string, err error) {
	seq := s.outboxSeq()
	q := s.outboxRows(ctx).Where("kind = ? AND target = ?", OutboxWebhook, id).Order(seq + " DESC").Limit(limit + 1)
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", fmt.Errorf("webhook deliveries: %w: bad cursor", ErrInvalid)
		}
		q = q.Where(seq+" < ?", n)
	}
	var rows []outboxRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("webhook deliveries: %w", mapErr(err))
	}
	if len(rows) > limit {
		rows = rows[:limit]
		next = strconv.FormatInt(rows[limit-1].Seq, 10)
	}
	list = make([]OutboxMessage, len(rows))
	for i := range rows {
		list[i] = rows[i].message()
	}
	return list, next, nil
}

// WebhookDelivery returns one delivery and the webhook it belongs to; ErrNotFound if there is no such delivery.
func (s *Store) WebhookDelivery(ctx context.Context, deliveryID string) (*OutboxMessage, error) {
	var row outboxRow
	if err := s.outboxRows(ctx).Where("id = ? AND kind = ?", deliveryID, OutboxWebhook).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("webhook delivery: %w", mapErr(err))
	}
	m := row.message()
	return &m, nil
}

// RedeliverWebhook sends a delivered or dead delivery again (RequeueOutbox): same event, same event id, a new
// delivery, after the webhook's pending deliveries about the same user. It returns the new delivery's id.
func (s *Store) RedeliverWebhook(ctx context.Context, deliveryID string, now time.Time) (string, error) {
	return s.RequeueOutbox(ctx, OutboxWebhook, deliveryID, now)
}

// WebhookPayload is the body of a delivery.
type WebhookPayload struct {
	ID        string    `json:"id"` // "evt_…": the same in every delivery of the event, and in the Latchkey-Event-Id header
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Pool      string    `json:"pool"`
	Data      any       `json:"data"`
}

// WebhookUser is a user as events carry it: no password hash, nothing secret.
type WebhookUser struct {
	ID            string         `json:"id"`
	Email         string         `json:"email"`
	Pool          string         `json:"pool"`
	Name          string         `json:"name"`
	Roles         []string       `json:"roles"`
	Extras        map[string]any `json:"extras"`
	EmailVerified bool           `json:"email_verified"`
	Disabled      bool           `json:"disabled"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
}

// WebhookSession is a browser session as session events carry it (never its token).
type WebhookSession struct {
	SessionID  string    `json:"session_id"`
	UserID     string    `json:"user_id"`
	AuthMethod string    `json:"auth_method,omitempty"`
	MintedBy   string    `json:"minted_by,omitempty"`
	At         time.Time `json:"at"` // when it started or ended
}

// WebhookEvent is one event to fan out: of Type, about user UserID (whose deliveries keep their order).
// Data returns the user's pool and the event's data; it is called only when some webhook subscribes to Type, so
// an event nobody wants costs one indexed read.
type WebhookEvent struct {
	Type   string
	UserID string
	Data   func(tx *gorm.DB) (pool string, data any, err error)
}

// fanOutWebhooks enqueues, inside tx, one delivery of ev per enabled webhook that subscribes to its type and
// watches its pool. It is the one place events become deliveries.
func fanOutWebhooks(tx *gorm.DB, ev WebhookEvent, now time.Time) error {
	var hooks []webhookRow
	err := tx.Select("id", "pool").Where("enabled = ? AND events LIKE ?", true, `%"`+ev.Type+`"%`).Order("id").Find(&hooks).Error
	if err != nil || len(hooks) == 0 {
		return mapErr(err)
	}
	pool, data, err := ev.Data(tx)
	if err != nil {
		return err
	}
	var evID string
	var body json.RawMessage
	for _, h := range hooks {
		if h.Pool != "" && h.Pool != pool {
			continue
		}
		if body == nil {
			if evID, err = newPublicID("evt_"); err != nil {
				return err
			}
			if body, err = json.Marshal(WebhookPayload{ID: evID, Type: ev.Type, CreatedAt: dbTime(now), Pool: pool, Data: data}); err != nil {
				return fmt.Errorf("webhook event %s: %w", ev.Type, err)
			}
		}
		if _, err := enqueueOutboxOrdered(tx, OutboxWebhook, h.ID, h.ID+"/"+ev.UserID, body, now); err != nil {
			return err
		}
	}
	return nil
}

// userEvent is the event typ about user id, carrying the user as it is in tx when the event is fanned out.
func userEvent(typ, id string) WebhookEvent {
	return WebhookEvent{Type: typ, UserID: id, Data: func(tx *gorm.DB) (string, any, error) {
		var row userRow
		if err := tx.Where("id = ?", id).Take(&row).Error; err != nil {
			return "", nil, mapErr(err)
		}
		u, err := row.webhookUser()
		return row.Pool, u, err
	}}
}

func (r *userRow) webhookUser() (WebhookUser, error) {
	u, err := r.user()
	if err != nil {
		return WebhookUser{}, err
	}
	return WebhookUser{ID: u.ID, Email: u.Email, Pool: u.Pool, Name: u.Name, Roles: u.Roles, Extras: u.Extras,
		EmailVerified: u.EmailVerified, Disabled: u.Disabled, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}, nil
}

// sessionEvent is the event typ about session sid of user userID at at.
func sessionEvent(typ, sid, userID string, at time.Time) WebhookEvent {
	return WebhookEvent{Type: typ, UserID: userID, Data: func(tx *gorm.DB) (string, any, error) {
		var bs browserSessionRow
		if err := tx.Select("id", "auth_method", "minted_by").Where("id = ?", sid).Take(&bs).Error; err != nil {
			return "", nil, mapErr(err)
		}
		var pool []string
		if err := tx.Model(&userRow{}).Where("id = ?", userID).Limit(1).Pluck("pool", &pool).Error; err != nil {
			return "", nil, mapErr(err)
		}
		if len(pool) == 0 {
			return "", nil, fmt.Errorf("session event: user %q: %w", userID, ErrNotFound)
		}
		return pool[0], WebhookSession{SessionID: sid, UserID: userID, AuthMethod: bs.AuthMethod, MintedBy: bs.MintedBy, At: dbTime(at)}, nil
	}}
}
