package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
)

// The admin API's webhooks: subscriptions (create, list, get, update, delete, rotate the secret) and their
// delivery log (list, redeliver). models.Webhook.Validate owns the rules, as for the CLI. An admin client
// limited to pools sees and manages only the webhooks of its pools, and cannot subscribe to all pools.

// Webhooks is what the webhook routes need; nil on API leaves them unmounted.
type Webhooks struct {
	Store   webhookStore
	Secrets webhookSecrets
}

type webhookStore interface {
	CreateWebhook(ctx context.Context, w *models.Webhook) error
	WebhookByID(ctx context.Context, id string) (*models.Webhook, error)
	ListWebhooks(ctx context.Context, pools []string) ([]models.Webhook, error)
	UpdateWebhookIf(ctx context.Context, w *models.Webhook, unmodified *time.Time) error
	SetWebhookSecret(ctx context.Context, id, sealed string) error
	DeleteWebhookIf(ctx context.Context, id string, unmodified *time.Time) error
	WebhookDeliveries(ctx context.Context, id, cursor string, limit int) ([]models.OutboxMessage, string, error)
	WebhookDelivery(ctx context.Context, deliveryID string) (*models.OutboxMessage, error)
	RedeliverWebhook(ctx context.Context, deliveryID string, now time.Time) (string, error)
}

// webhookSecrets makes a webhook's secret: shown once, stored sealed (outbox.WebhookSecrets).
type webhookSecrets interface {
	New(webhookID string) (secret, sealed string, err error)
}

func (h *API) mountWebhooks(s *mux.Router) {
	if h.Webhooks == nil {
		return
	}
	s.Handle("/webhooks", handler(h.listWebhooks)).Methods(http.MethodGet)
	s.Handle("/webhooks", handler(h.createWebhook)).Methods(http.MethodPost)
	s.Handle("/webhooks/{id}", handler(h.getWebhook)).Methods(http.MethodGet)
	s.Handle("/webhooks/{id}", handler(h.patchWebhook)).Methods(http.MethodPatch)
	s.Handle("/webhooks/{id}", handler(h.deleteWebhook)).Methods(http.MethodDelete)
	s.Handle("/webhooks/{id}/secret", handler(h.rotateWebhookSecret)).Methods(http.MethodPost)
	s.Handle("/webhooks/{id}/deliveries", handler(h.webhookDeliveries)).Methods(http.MethodGet)
	s.Handle("/webhooks/{id}/deliveries/{did}/redeliver", handler(h.redeliverWebhook)).Methods(http.MethodPost)
}

// webhookJSON is a webhook as the admin API shows it; Secret only in the answer that made it.
type webhookJSON struct {
	*models.Webhook
	Secret string `json:"secret,omitempty"`
}

// deliveryJSON is one delivery of the log.
type deliveryJSON struct {
	ID          string     `json:"id"`
	EventID     string     `json:"event_id,omitempty"`
	EventType   string     `json:"event_type,omitempty"`
	State       string     `json:"state"` // pending, delivered or dead
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error,omitempty"`
	NextAttempt *time.Time `json:"next_attempt_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	DeadAt      *time.Time `json:"dead_at,omitempty"`
}

func deliveryOf(m models.OutboxMessage) deliveryJSON {
	d := deliveryJSON{ID: m.ID, Attempts: m.Attempts, LastError: m.LastError, CreatedAt: m.CreatedAt,
		DeliveredAt: m.DeliveredAt, DeadAt: m.DeadAt, State: "pending"}
	var head struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	if json.Unmarshal(m.Payload, &head) == nil {
		d.EventID, d.EventType = head.ID, head.Type
	}
	switch {
	case m.DeliveredAt != nil:
		d.State = "delivered"
	case m.DeadAt != nil:
		d.State = "dead"
	default:
		next := m.NextAttemptAt
		d.NextAttempt = &next
	}
	return d
}

// administersWebhook: an unrestricted admin client manages every webhook; one limited to pools only those of
// its pools (not those of all pools: they carry other pools' users).
func administersWebhook(c *models.Client, pool string) bool {
	if len(c.AdminPools) == 0 {
		return c.Admin
	}
	return pool != "" && slices.Contains(c.AdminPools, pool)
}

func webhookNotFound() error {
	return jsonapi.New(http.StatusNotFound, jsonapi.NotFound, "No such webhook.")
}

// webhook loads the webhook a request names: as not found when the client does not administer it.
func (h *API) webhook(r *http.Request, c *models.Client) (*models.Webhook, error) {
	w, err := h.Webhooks.Store.WebhookByID(r.Context(), mux.Vars(r)["id"])
	switch {
	case errors.Is(err, models.ErrNotFound), err == nil && !administersWebhook(c, w.Pool):
		return nil, webhookNotFound()
	case err != nil:
		return nil, fmt.Errorf("admin api: load webhook: %w", err)
	}
	return w, nil
}

// authorizedWebhook authorizes the caller and loads the webhook the path names, one of the caller's pools.
func (h *API) authorizedWebhook(r *http.Request) (*models.Client, *models.Webhook, error) {
	c, err := h.authorize(r)
	if err != nil {
		return nil, nil, err
	}
	wh, err := h.webhook(r, c)
	return c, wh, err
}

// webhookInvalid is a refused webhook: the store's reasons, field by field.
func webhookInvalid(what string, err error) error {
	var ve models.ValidationError
	if errors.As(err, &ve) {
		parts := make([]string, len(ve))
		for i, f := range ve {
			parts[i] = f.Error()
		}
		return jsonapi.BadRequest(strings.Join(parts, "; "))
	}
	return storeError(what, err)
}

func (h *API) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	c, err := h.authorize(r)
	if err != nil {
		return err
	}
	var pools []string // nil: all
	if p := r.URL.Query().Get("pool"); p != "" {
		if !administersWebhook(c, p) {
			return notYourPool(p)
		}
		pools = []string{p}
	} else if len(c.AdminPools) > 0 {
		pools = c.AdminPools
	}
	list, err := h.Webhooks.Store.ListWebhooks(r.Context(), pools)
	if err != nil {
		return fmt.Errorf("admin api: list webhooks: %w", err)
	}
	out := make([]webhookJSON, len(list))
	for i := range list {
		out[i] = webhookJSON{Webhook: &list[i]}
	}
	jsonapi.Respond(w, http.StatusOK, map[string]any{"webhooks": out})
	return nil
}

func (h *API) createWebhook(w http.ResponseWriter, r *http.Request) error {
	c, err := h.authorize(r)
	if err != nil {
		return err
	}
	var body struct {
		URL     string   `json:"url"`
		Events  []string `json:"events"`
		Pool    string   `json:"pool"`
		Enabled *bool    `json:"enabled"`
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	if !administersWebhook(c, body.Pool) {
		if body.Pool == "" {
			return jsonapi.BadRequest("pool: this client administers only some pools; name one of them")
		}
		return notYourPool(body.Pool)
	}
	ctx := r.Context()
	id, err := models.NewWebhookID()
	if err != nil {
		return err
	}
	secret, sealed, err := h.Webhooks.Secrets.New(id)
	if err != nil {
		return err
	}
	wh := &models.Webhook{ID: id, URL: body.URL, Events: body.Events, Pool: body.Pool, SealedSecret: sealed,
		Enabled: body.Enabled == nil || *body.Enabled}
	if err := h.Webhooks.Store.CreateWebhook(ctx, wh); err != nil {
		return webhookInvalid("admin api: create webhook", err)
	}
	request.Logger(ctx).Info("admin created webhook", "webhook", id, "client", c.ID)
	w.Header().Set("Location", Prefix+"/webhooks/"+id)
	w.Header().Set("ETag", jsonapi.ETag(webhookJSON{Webhook: wh}))
	jsonapi.Respond(w, http.StatusCreated, webhookJSON{Webhook: wh, Secret: secret})
	return nil
}

func (h *API) getWebhook(w http.ResponseWriter, r *http.Request) error {
	_, wh, err := h.authorizedWebhook(r)
	if err != nil {
		return err
	}
	jsonapi.RespondTagged(w, http.StatusOK, webhookJSON{Webhook: wh})
	return nil
}

// unmodifiedSince is the condition of a write with If-Match on wh as read: nil without the header; 412 when it
// names another representation.
func unmodifiedSince(r *http.Request, wh *models.Webhook) (*time.Time, error) {
	conditional, err := jsonapi.IfMatch(r, jsonapi.ETag(webhookJSON{Webhook: wh}))
	if err != nil || !conditional {
		return nil, err
	}
	at := wh.UpdatedAt
	return &at, nil
}

func (h *API) patchWebhook(w http.ResponseWriter, r *http.Request) error {
	c, err := h.authorize(r)
	if err != nil {
		return err
	}
	var body struct {
		URL     *string   `json:"url"`
		Events  *[]string `json:"events"`
		Enabled *bool     `json:"enabled"`
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	wh, err := h.webhook(r, c)
	if err != nil {
		return err
	}
	unmodified, err := unmodifiedSince(r, wh)
	if err != nil {
		return err
	}
	if body.URL != nil {
		wh.URL = *body.URL
	}
	if body.Events != nil {
		wh.Events = *body.Events
	}
	if body.Enabled != nil {
		wh.Enabled = *body.Enabled
	}
	if err := h.Webhooks.Store.UpdateWebhookIf(r.Context(), wh, unmodified); errors.Is(err, models.ErrPreconditionFailed) {
		return jsonapi.ErrPreconditionFailed()
	} else if errors.Is(err, models.ErrNotFound) {
		return webhookNotFound()
	} else if err != nil {
		return webhookInvalid("admin api: update webhook", err)
	}
	request.Logger(r.Context()).Info("admin updated webhook", "webhook", wh.ID, "client", c.ID)
	jsonapi.RespondTagged(w, http.StatusOK, webhookJSON{Webhook: wh})
	return nil
}

func (h *API) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	c, wh, err := h.authorizedWebhook(r)
	if err != nil {
		return err
	}
	unmodified, err := unmodifiedSince(r, wh)
	if err != nil {
		return err
	}
	if err := h.Webhooks.Store.DeleteWebhookIf(r.Context(), wh.ID, unmodified); errors.Is(err, models.ErrPreconditionFailed) {
		return jsonapi.ErrPreconditionFailed()
	} else if errors.Is(err, models.ErrNotFound) {
		return webhookNotFound()
	} else if err != nil {
		return fmt.Errorf("admin api: delete webhook: %w", err)
	}
	request.Logger(r.Context()).Info("admin deleted webhook", "webhook", wh.ID, "client", c.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *API) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) error {
	c, wh, err := h.authorizedWebhook(r)
	if err != nil {
		return err
	}
	secret, sealed, err := h.Webhooks.Secrets.New(wh.ID)
	if err != nil {
		return err
	}
	if err := h.Webhooks.Store.SetWebhookSecret(r.Context(), wh.ID, sealed); errors.Is(err, models.ErrNotFound) {
		return webhookNotFound()
	} else if err != nil {
		return fmt.Errorf("admin api: rotate webhook secret: %w", err)
	}
	request.Logger(r.Context()).Info("admin rotated webhook secret", "webhook", wh.ID, "client", c.ID)
	jsonapi.Respond(w, http.StatusOK, map[string]string{"id": wh.ID, "secret": secret})
	return nil
}

// maxDeliveriesPage bounds ?limit= of the delivery log.
const maxDeliveriesPage = 200

func (h *API) webhookDeliveries(w http.ResponseWriter, r *http.Request) error {
	_, wh, err := h.authorizedWebhook(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit := 50
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxDeliveriesPage {
			return jsonapi.BadRequest("limit must be 1 to " + strconv.Itoa(maxDeliveriesPage))
		}
	}
	list, next, err := h.Webhooks.Store.WebhookDeliveries(r.Context(), wh.ID, q.Get("cursor"), limit)
	if errors.Is(err, models.ErrInvalid) {
		return jsonapi.BadRequest("cursor is not one this API gave")
	} else if err != nil {
		return fmt.Errorf("admin api: webhook deliveries: %w", err)
	}
	out := make([]deliveryJSON, len(list))
	for i := range list {
		out[i] = deliveryOf(list[i])
	}
	body := map[string]any{"deliveries": out}
	if next != "" {
		body["next_cursor"] = next
	}
	jsonapi.Respond(w, http.StatusOK, body)
	return nil
}

func (h *API) redeliverWebhook(w http.ResponseWriter, r *http.Request) error {
	c, wh, err := h.authorizedWebhook(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	did := mux.Vars(r)["did"]
	d, err := h.Webhooks.Store.WebhookDelivery(ctx, did)
	if errors.Is(err, models.ErrNotFound) || err == nil && d.Target != wh.ID {
		return jsonapi.New(http.StatusNotFound, jsonapi.NotFound, "No such delivery of this webhook.")
	} else if err != nil {
		return fmt.Errorf("admin api: load delivery: %w", err)
	}
	newID, err := h.Webhooks.Store.RedeliverWebhook(ctx, did, h.Now())
	switch {
	case errors.Is(err, models.ErrConflict):
		return jsonapi.New(http.StatusConflict, jsonapi.InvalidRequest, "The delivery is still pending: it will be sent anyway.")
	case errors.Is(err, models.ErrNotFound):
		return jsonapi.New(http.StatusNotFound, jsonapi.NotFound, "No such delivery of this webhook.")
	case err != nil:
		return fmt.Errorf("admin api: redeliver: %w", err)
	}
	request.Logger(ctx).Info("admin redelivered webhook delivery", "webhook", wh.ID, "delivery", did, "new_delivery", newID, "client", c.ID)
	jsonapi.Respond(w, http.StatusAccepted, map[string]string{"id": newID, "redelivery_of": did})
	return nil
}
