package handlers

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// AdminScope is the scope an admin client's client_credentials token carries for the admin API.
const AdminScope = models.AdminScope

type adminStore interface {
	ClientByID(ctx context.Context, id string) (*models.Client, error)
	UserByID(ctx context.Context, id string) (*models.User, error)
	UserByEmail(ctx context.Context, pool, email string) (*models.User, error)
	ListUsers(ctx context.Context, pool string) ([]models.User, error)
	UpdateUser(ctx context.Context, id string, p models.UserPatch, now time.Time) (*models.User, error)
}

// Admin is the admin surface for backends (Xano-style): read users and set their roles, custom claims ("extras"),
// name and disabled flag. Callers authenticate with an access token carrying the latchkey.admin scope, obtained
// through the client credentials grant by a client an operator made admin (clients create --admin), and manage
// only the users of the pools that client administers.
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

// authorize accepts only an active client_credentials access token with the admin scope, of a client that is,
// as read now, an admin client; it returns that client, whose pools bound what the request may touch.
func (h *Admin) authorize(w http.ResponseWriter, r *http.Request) (*models.Client, bool) {
	ctx := r.Context()
	token := bearerToken(r)
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey"`)
		apiError(w, http.StatusUnauthorized, "invalid_token", "An access token with the "+AdminScope+" scope is required.")
		return nil, false
	}
	invalid := func() (*models.Client, bool) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`)
		apiError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return nil, false
	}
	ar, sess, err := activeAccessToken(ctx, h.OAuth, token)
	if err != nil {
		if tokenStoreFailed(r.Context(), err) {
			serverFault(w, r, "admin api: look up access token", err)
			return nil, false
		}
		return invalid()
	}
	clientID := ar.GetClient().GetID()
	// A client_credentials token is the client's own, its subject the client: no user's grant gets through.
	if ar.GetRequestForm().Get("grant_type") != "client_credentials" || sess.Subject != clientID {
		Logger(ctx).Warn("admin api refused a user's token", "client", clientID)
		insufficientScope(w, AdminScope, "The admin API takes an admin client's client_credentials token, not a user's.")
		return nil, false
	}
	c, err := h.Store.ClientByID(ctx, clientID)
	switch {
	case errors.Is(err, models.ErrNotFound):
		return invalid()
	case err != nil:
		serverFault(w, r, "admin api: load the token's client", err)
		return nil, false
	case !c.Admin:
		Logger(ctx).Warn("admin api refused a client that is not admin", "client", clientID)
		insufficientScope(w, AdminScope, "This client is not an admin client.")
		return nil, false
	case !ar.GetGrantedScopes().Has(AdminScope):
		insufficientScope(w, AdminScope, "The access token lacks the "+AdminScope+" scope.")
		return nil, false
	}
	return c, true
}

// list answers GET /users: ?pool=P lists one pool (which the client must administer); without it, every pool the
// client administers. ?email=E looks the address up in ?pool= (default: the default pool).
func (h *Admin) list(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authorize(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	pool := q.Get("pool")
	if email := q.Get("email"); email != "" {
		if !c.AdministersPool(pool) {
			h.notYourPool(w, pool)
			return
		}
		u, err := h.Store.UserByEmail(ctx, pool, email)
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
	pools := []string{pool} // "" lists every pool
	switch {
	case pool != "" && !c.AdministersPool(pool):
		h.notYourPool(w, pool)
		return
	case pool == "" && len(c.AdminPools) > 0:
		pools = c.AdminPools
	}
	var list []models.User
	for _, p := range pools {
		users, err := h.Store.ListUsers(ctx, p)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		list = append(list, users...)
	}
	if len(pools) > 1 {
		slices.SortStableFunc(list, func(a, b models.User) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
		})
	}
	out := make([]apiUser, 0, len(list))
	for i := range list {
		out = append(out, toAPIUser(&list[i]))
	}
	writeAPIJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (h *Admin) notYourPool(w http.ResponseWriter, pool string) {
	if pool == "" {
		pool = models.DefaultPool
	}
	insufficientScope(w, AdminScope, "This client does not administer the pool "+strconv.Quote(pool)+"; name one of its pools with ?pool=.")
}

// user loads the user a request names, as not found when it is in a pool the client does not administer: users
// of other pools are not there for it.
func (h *Admin) user(w http.ResponseWriter, r *http.Request, c *models.Client, id string) (*models.User, bool) {
	u, err := h.Store.UserByID(r.Context(), id)
	if err == nil && !c.AdministersPool(u.Pool) {
		err = models.ErrNotFound
	}
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	return u, true
}

func (h *Admin) get(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authorize(w, r)
	if !ok {
		return
	}
	u, ok := h.user(w, r, c, mux.Vars(r)["id"])
	if !ok {
		return
	}
	writeAPIJSON(w, http.StatusOK, toAPIUser(u))
}

func (h *Admin) patch(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authorize(w, r)
	if !ok {
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
	if _, ok := h.user(w, r, c, id); !ok {
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
	// One change, one transaction: a field the store refuses leaves the others unsaved too.
	u, err := h.Store.UpdateUser(ctx, id, models.UserPatch{Name: body.Name, Roles: body.Roles, Extras: body.Extras, Disabled: body.Disabled}, h.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	Logger(ctx).Info("admin updated user", "user", id, "client", c.ID)
	writeAPIJSON(w, http.StatusOK, toAPIUser(u))
}

func (h *Admin) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, models.ErrNotFound):
		apiError(w, http.StatusNotFound, "not_found", "No such user.")
	case errors.Is(err, models.ErrInvalid):
		// The store's reason, without the steps it was wrapped in ("update user: invalid: name is ...").
		msg := err.Error()
		if _, reason, ok := strings.Cut(msg, models.ErrInvalid.Error()+": "); ok {
			msg = reason
		}
		apiError(w, http.StatusBadRequest, "invalid_request", msg)
	default:
		serverFault(w, r, "admin api", err)
	}
}
