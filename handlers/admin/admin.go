// Package admin serves the admin API for backends (Xano-style): read users and set their roles, custom claims
// ("extras"), name and disabled flag; mint tokens for a user; list and end a user's sessions. Every error goes
// through jsonapi.Write.
package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/reqmeta"
)

// Scope is the scope an admin client's client_credentials token carries for the admin API.
const Scope = models.AdminScope

// Prefix is where the admin API lives.
const Prefix = "/api/v1/admin"

type store interface {
	ClientByID(ctx context.Context, id string) (*models.Client, error)
	UserByID(ctx context.Context, id string) (*models.User, error)
	UserByEmail(ctx context.Context, pool, email string) (*models.User, error)
	ListUsers(ctx context.Context, pool string) ([]models.User, error)
	UpdateUser(ctx context.Context, id string, p models.UserPatch, now time.Time) (*models.User, error)
	ResetMFA(ctx context.Context, userID string) (int, error)
	sessionStore
	auditStore
}

// API is the admin surface. Callers authenticate with an access token carrying the latchkey.admin scope,
// obtained through the client credentials grant by a client an operator made admin (clients create --admin), and
// manage only the users of the pools that client administers.
type API struct {
	OAuth fosite.OAuth2Provider
	Store store
	// DPoP verifies the proof of a DPoP-bound access token (RFC 9449); nil: DPoP-bound tokens are refused.
	DPoP grant.Proofs
	// Issuer mints tokens for a user (mint.go) through the token API's issuance.
	Issuer minter
	// SessionIdle and SessionAbsolute are the lifetimes of a minted session, as of a signed-in one.
	SessionIdle     time.Duration
	SessionAbsolute time.Duration
	Now             func() time.Time
	// Issued counts minted grants as the token API counts sign-ins; nil: none.
	Issued interface{ TokenIssued(grantType string) }
}

func (h *API) Mount(r *mux.Router) {
	if h.Now == nil {
		h.Now = time.Now
	}
	s := r.PathPrefix(Prefix).Subrouter()
	s.Handle("/users", handler(h.list)).Methods(http.MethodGet)
	s.Handle("/users/{id}", handler(h.get)).Methods(http.MethodGet)
	s.Handle("/users/{id}", handler(h.patch)).Methods(http.MethodPatch)
	s.Handle("/users/{id}/tokens", handler(h.mint)).Methods(http.MethodPost)
	s.Handle("/users/{id}/sessions", handler(h.sessions)).Methods(http.MethodGet)
	s.Handle("/users/{id}/sessions/{sid}", handler(h.endSession)).Methods(http.MethodDelete)
	s.Handle("/users/{id}/mfa", handler(h.resetMFA)).Methods(http.MethodDelete)
	h.mountAudit(s)
}

// handler serves fn, answering the error it returns through jsonapi.Write.
type handler func(w http.ResponseWriter, r *http.Request) error

func (fn handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := fn(w, r); err != nil {
		jsonapi.Write(w, r, err)
	}
}

// authorize accepts only an active client_credentials access token with the admin scope, of a client that is,
// as read now, an admin client; it returns that client, whose pools bound what the request may touch.
func (h *API) authorize(r *http.Request) (*models.Client, error) {
	ctx := r.Context()
	token := grant.Bearer(r)
	if token == "" {
		return nil, grant.Missing("An access token with the " + Scope + " scope is required.")
	}
	invalid := grant.Invalid("The access token is invalid, expired or revoked.")
	ar, sess, err := grant.ActiveAccessToken(r, h.OAuth, h.DPoP, token)
	if err != nil {
		if refused := grant.Refusal(err); refused != nil {
			return nil, refused
		}
		if grant.StoreFailed(ctx, err) {
			return nil, fmt.Errorf("admin api: look up access token: %w", err)
		}
		return nil, invalid
	}
	clientID := ar.GetClient().GetID()
	// A client_credentials token is the client's own, its subject the client: no user's grant gets through.
	if ar.GetRequestForm().Get("grant_type") != "client_credentials" || sess.Subject != clientID {
		request.Logger(ctx).Warn("admin api refused a user's token", "client", clientID)
		return nil, grant.InsufficientScope(Scope, "The admin API takes an admin client's client_credentials token, not a user's.")
	}
	c, err := h.Store.ClientByID(ctx, clientID)
	switch {
	case errors.Is(err, models.ErrNotFound):
		return nil, invalid
	case err != nil:
		return nil, fmt.Errorf("admin api: load the token's client: %w", err)
	case !c.Admin:
		request.Logger(ctx).Warn("admin api refused a client that is not admin", "client", clientID)
		return nil, grant.InsufficientScope(Scope, "This client is not an admin client.")
	case !ar.GetGrantedScopes().Has(Scope):
		return nil, grant.InsufficientScope(Scope, "The access token lacks the "+Scope+" scope.")
	}
	reqmeta.SetActor(ctx, "client:"+c.ID) // what this request changes, the audit log credits to this admin client
	return c, nil
}

// list answers GET /users: ?pool=P lists one pool (which the client must administer); without it, every pool the
// client administers. ?email=E looks the address up in ?pool= (default: the default pool).
func (h *API) list(w http.ResponseWriter, r *http.Request) error {
	c, err := h.authorize(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	q := r.URL.Query()
	pool := q.Get("pool")
	if email := q.Get("email"); email != "" {
		if !c.AdministersPool(pool) {
			return notYourPool(pool)
		}
		u, err := h.Store.UserByEmail(ctx, pool, email)
		if errors.Is(err, models.ErrNotFound) {
			jsonapi.Respond(w, http.StatusOK, map[string]any{"users": []jsonapi.User{}})
			return nil
		} else if err != nil {
			return storeError("admin api: look up user by email", err)
		}
		jsonapi.Respond(w, http.StatusOK, map[string]any{"users": []jsonapi.User{jsonapi.UserOf(u)}})
		return nil
	}
	pools := []string{pool} // "" lists every pool
	switch {
	case pool != "" && !c.AdministersPool(pool):
		return notYourPool(pool)
	case pool == "" && len(c.AdminPools) > 0:
		pools = c.AdminPools
	}
	var list []models.User
	for _, p := range pools {
		users, err := h.Store.ListUsers(ctx, p)
		if err != nil {
			return storeError("admin api: list users", err)
		}
		list = append(list, users...)
	}
	if len(pools) > 1 {
		slices.SortStableFunc(list, func(a, b models.User) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
		})
	}
	out := make([]jsonapi.User, 0, len(list))
	for i := range list {
		out = append(out, jsonapi.UserOf(&list[i]))
	}
	jsonapi.Respond(w, http.StatusOK, map[string]any{"users": out})
	return nil
}

func notYourPool(pool string) error {
	if pool == "" {
		pool = models.DefaultPool
	}
	return grant.InsufficientScope(Scope, "This client does not administer the pool "+strconv.Quote(pool)+"; name one of its pools with ?pool=.")
}

// user loads the user a request names, as not found when it is in a pool the client does not administer: users
// of other pools are not there for it.
func (h *API) user(r *http.Request, c *models.Client, id string) (*models.User, error) {
	u, err := h.Store.UserByID(r.Context(), id)
	if err == nil && !c.AdministersPool(u.Pool) {
		err = models.ErrNotFound
	}
	if err != nil {
		return nil, storeError("admin api: load user", err)
	}
	return u, nil
}

func (h *API) get(w http.ResponseWriter, r *http.Request) error {
	c, err := h.authorize(r)
	if err != nil {
		return err
	}
	u, err := h.user(r, c, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	jsonapi.Respond(w, http.StatusOK, jsonapi.UserOf(u))
	return nil
}

func (h *API) patch(w http.ResponseWriter, r *http.Request) error {
	c, err := h.authorize(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var body struct {
		Name     *string         `json:"name"`
		Roles    *[]string       `json:"roles"`
		Extras   *map[string]any `json:"extras"`
		Disabled *bool           `json:"disabled"`
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	id := mux.Vars(r)["id"]
	if _, err := h.user(r, c, id); err != nil {
		return err
	}
	// One change, one transaction: a field the store refuses leaves the others unsaved too.
	u, err := h.Store.UpdateUser(ctx, id, models.UserPatch{Name: body.Name, Roles: body.Roles, Extras: body.Extras, Disabled: body.Disabled}, h.Now())
	if err != nil {
		return storeError("admin api: update user", err)
	}
	request.Logger(ctx).Info("admin updated user", "user", id, "client", c.ID)
	jsonapi.Respond(w, http.StatusOK, jsonapi.UserOf(u))
	return nil
}

// storeError turns what the store said into the answer: not found and invalid input are the caller's, anything
// else a fault (what names the step, for the log).
func storeError(what string, err error) error {
	switch {
	case errors.Is(err, models.ErrNotFound):
		return jsonapi.New(http.StatusNotFound, jsonapi.NotFound, "No such user.")
	case errors.Is(err, models.ErrInvalid):
		// The store's reason, without the steps it was wrapped in ("update user: invalid: name is ...").
		msg := err.Error()
		if _, reason, ok := strings.Cut(msg, models.ErrInvalid.Error()+": "); ok {
			msg = reason
		}
		return jsonapi.BadRequest(msg)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}
