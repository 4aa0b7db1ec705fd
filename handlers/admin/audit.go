package admin

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/models"
)

// auditStore is what the audit events route needs of the store.
type auditStore interface {
	ListAuditEvents(ctx context.Context, q models.AuditQuery) ([]models.AuditEvent, error)
}

func (h *API) mountAudit(s *mux.Router) {
	s.Handle("/audit-events", handler(h.auditEvents)).Methods(http.MethodGet)
}

// auditEvents answers GET /audit-events: the audit log, newest first, a page at a time (?limit=, default 100;
// the answer's next_cursor, passed back as ?cursor=, continues after its last event). Filters: ?since= and
// ?until= (RFC 3339), ?user_id=, ?client_id=, ?type= (comma separated or repeated), ?pool=. A client limited to
// some pools sees only their events (an event without a pool, such as a key rotation, only an unlimited one).
func (h *API) auditEvents(w http.ResponseWriter, r *http.Request) error {
	c, err := h.authorize(r)
	if err != nil {
		return err
	}
	q, err := auditQueryOf(r)
	if err != nil {
		return err
	}
	switch {
	case q.Pool != "" && !c.AdministersPool(q.Pool):
		return notYourPool(q.Pool)
	case len(c.AdminPools) > 0:
		q.Pools = c.AdminPools
	}
	events, err := h.Store.ListAuditEvents(r.Context(), q)
	if err != nil {
		return storeError("admin api: list audit events", err)
	}
	page := map[string]any{"events": events}
	if len(events) == q.Limit && len(events) > 0 {
		last := events[len(events)-1]
		page["next_cursor"] = encodeAuditCursor(models.AuditCursor{Time: last.Time, ID: last.ID})
	}
	jsonapi.Respond(w, http.StatusOK, page)
	return nil
}

// auditQueryOf reads the query's filters; a malformed one is 400 invalid_request naming it.
func auditQueryOf(r *http.Request) (models.AuditQuery, error) {
	v := r.URL.Query()
	q := models.AuditQuery{UserID: v.Get("user_id"), ClientID: v.Get("client_id"), Pool: v.Get("pool"), Limit: 100}
	for name, dst := range map[string]*time.Time{"since": &q.Since, "until": &q.Until} {
		if s := v.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return q, jsonapi.BadRequest("The " + name + " parameter must be an RFC 3339 time (2026-01-02T15:04:05Z).")
			}
			*dst = t
		}
	}
	for _, list := range v["type"] {
		for _, t := range strings.Split(list, ",") {
			if t = strings.TrimSpace(t); t != "" {
				q.Types = append(q.Types, t)
			}
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > models.MaxAuditPage {
			return q, jsonapi.BadRequest("The limit parameter must be a whole number from 1 to " + strconv.Itoa(models.MaxAuditPage) + ".")
		}
		q.Limit = n
	}
	if s := v.Get("cursor"); s != "" {
		cur, ok := decodeAuditCursor(s)
		if !ok {
			return q, jsonapi.BadRequest("The cursor parameter is not one this API handed out.")
		}
		q.Before = &cur
	}
	return q, nil
}

// A cursor is the last event's time (Unix microseconds) and id, "µs.id" in base64url: opaque to callers, so its
// form may change.
func encodeAuditCursor(c models.AuditCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.Time.UnixMicro(), 10) + "." + strconv.FormatInt(c.ID, 10)))
}

func decodeAuditCursor(s string) (models.AuditCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return models.AuditCursor{}, false
	}
	us, id, ok := strings.Cut(string(b), ".")
	if !ok {
		return models.AuditCursor{}, false
	}
	t, err1 := strconv.ParseInt(us, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil {
		return models.AuditCursor{}, false
	}
	return models.AuditCursor{Time: time.UnixMicro(t).UTC(), ID: n}, true
}
