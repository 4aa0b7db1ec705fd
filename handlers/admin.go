package handlers

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// AdminScope is the scope a service client needs (client_credentials) to use the admin API.
const AdminScope = "latchkey.admin"

type adminStore interface {
	UserByID(ctx context.Context, id string) (*models.User, error)
	UserByEmail(ctx context.Context, pool, email string) (*models.User, error)
	ListUsers(ctx context.Context, pool string) ([]models.User, error)
	SetName(ctx context.Context, userID, name string) error
	SetRoles(ctx context.Context, userID string, roles []string) error
	SetExtras(ctx context.Context, userID string, extras map[string]any) error
	SetDisabled(ctx context.Context, userID string, disabled bool, now time.Time) error
}

// Admin is the admin surface for backends (Xano-style): read users and set their roles, custom claims ("extras"),
// name and disabled flag. Callers authenticate with an access token carrying the latchkey.admin scope, obtained
// through the client credentials grant by a client registered with that scope.
type Admin struct {
	OAuth fosite.OAuth2Provider
	Store adminStore
	Now   func() time.Time
}

func (h *Admin) Mount(r *mux.Router) {
	if h.Now == nil {
		h.Now = time.Now
	}
	s := r.PathPrefix("/api/v1/admin").Subrouter()
	s.HandleFunc("/users", h.list).Methods(http.MethodGet)
	s.HandleFunc("/users/{id}", h.get).Methods(http.MethodGet)
	s.HandleFunc("/users/{id}", h.patch).Methods(http.MethodPatch)
}

// authorize accepts only an active access token with the admin scope.
func (h *Admin) authorize(w http.ResponseWriter, r *http.Request) bool {
	token := bearerToken(r)
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey"`)
		apiError(w, http.StatusUnauthorized, "invalid_token", "An access token with the "+AdminScope+" scope is required.")
		return false
	}
	ar, _, err := activeAccessToken(r.Context(), h.OAuth, token)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`)
		apiError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return false
	}
	if !ar.GetGrantedScopes().Has(AdminScope) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", error="insufficient_scope", scope="`+AdminScope+`"`)
		apiError(w, http.StatusForbidden, "insufficient_scope", "The access token lacks the "+AdminScope+" scope.")
		return false
	}
	return true
}

func (h *Admin) list(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r) {
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	if email := q.Get("email"); email != "" {
		u, err := h.Store.UserByEmail(ctx, q.Get("pool"), email)
		if errors.Is(err, models.ErrNotFound) {
			writeAPIJSON(w, http.StatusOK, map[string]any{"users": []apiUser{}})
			return
		} else if err != nil {
			h.fail(w, r, err)
			return
		}
		writeAPIJSON(w, http.StatusOK, map[string]any{"users": []apiUser{toAPIUser(u)}})
		return
	}
	list, err := h.Store.ListUsers(ctx, q.Get("pool"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]apiUser, 0, len(list))
	for i := range list {
		out = append(out, toAPIUser(&list[i]))
	}
	writeAPIJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (h *Admin) get(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r) {
		return
	}
	u, err := h.Store.UserByID(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeAPIJSON(w, http.StatusOK, toAPIUser(u))
}

func (h *Admin) patch(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r) {
		return
	}
	ctx := r.Context()
	var body struct {
		Name     *string         `json:"name"`
		Roles    *[]string       `json:"roles"`
		Extras   *map[string]any `json:"extras"`
		Disabled *bool           `json:"disabled"`
	}
	if !decodeJSON(w, r, &body) {
		return
	}
	id := mux.Vars(r)["id"]
	if _, err := h.Store.UserByID(ctx, id); err != nil {
		h.fail(w, r, err)
		return
	}
	if body.Extras != nil {
		for k := range *body.Extras {
			if provider.IsRegisteredClaim(k) {
				apiError(w, http.StatusBadRequest, "invalid_request", "extras may not use the registered claim name "+k+".")
				return
			}
		}
	}
	if body.Name != nil && utf8.RuneCountInString(*body.Name) > 200 {
		apiError(w, http.StatusBadRequest, "invalid_request", "name is longer than 200 characters.")
		return
	}
	// Extras go first: they are the one field the store may still refuse (size), and a refused request should
	// leave the user as it was.
	steps := []func() error{}
	if body.Extras != nil {
		steps = append(steps, func() error { return h.Store.SetExtras(ctx, id, *body.Extras) })
	}
	if body.Name != nil {
		steps = append(steps, func() error { return h.Store.SetName(ctx, id, *body.Name) })
	}
	if body.Roles != nil {
		steps = append(steps, func() error { return h.Store.SetRoles(ctx, id, *body.Roles) })
	}
	if body.Disabled != nil {
		steps = append(steps, func() error { return h.Store.SetDisabled(ctx, id, *body.Disabled, h.Now()) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	u, err := h.Store.UserByID(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	Logger(ctx).Info("admin updated user", "user", id)
	writeAPIJSON(w, http.StatusOK, toAPIUser(u))
}

func (h *Admin) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, models.ErrNotFound):
		apiError(w, http.StatusNotFound, "not_found", "No such user.")
	case errors.Is(err, models.ErrInvalid):
		apiError(w, http.StatusBadRequest, "invalid_request", strings.TrimPrefix(err.Error(), "invalid: "))
	default:
		Logger(r.Context()).Error("admin api", "error", err)
		apiError(w, http.StatusInternalServerError, "server_error", "Internal server error.")
	}
}
