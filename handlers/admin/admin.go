// Package admin serves the admin API (/api/v1/admin) for backends and operators: users (list, create, read,
// patch, delete, password, factors, MFA reset, minted tokens), their sessions, clients (with secrets shown once),
// pools and signing keys (page.go: cursors and ETags; routes.go: the routes beyond the first users routes and the
// OpenAPI document, openapi.json, held to them by openapi_test.go). Every error goes through jsonapi.Write; every
// rule is the models' (the CLI's too).
package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
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
	ListUsersPage(ctx context.Context, q models.UserQuery) ([]models.User, error)
	UpdateUser(ctx context.Context, id string, p models.UserPatch, now time.Time) (*models.User, error)
	ResetMFA(ctx context.Context, userID string) (int, error)
	sessionStore
	moreStore
	auditStore
}

// moreStore is what the clients, pools and the rest of the users routes read and write.
type moreStore interface {
	ListClientsPage(ctx context.Context, q models.ClientQuery) ([]models.Client, error)
	RegisterClient(ctx context.Context, c *models.Client) error
	UpdateClient(ctx context.Context, c *models.Client) error
	UpdateClientAndSecret(ctx context.Context, c *models.Client) error
	UpdateClientIf(ctx context.Context, c *models.Client, unmodified time.Time, withSecret bool) error
	UpdateClientSecretIf(ctx context.Context, id, secretHash, sealed string, unmodified *time.Time) error
	DeleteClient(ctx context.Context, id string) error
	DeleteClientIf(ctx context.Context, id string, unmodified time.Time) error
	CreateUserWith(ctx context.Context, u models.NewUser) (*models.User, error)
	DeleteUser(ctx context.Context, id string) error
	DeleteUserIf(ctx context.Context, id string, unmodified time.Time) error
	ChangePassword(ctx context.Context, userID, password, keepSessionID string, now time.Time) (int, error)
	Factors(ctx context.Context, userID string) ([]models.Factor, error)
	EndUserBrowserSessions(ctx context.Context, userID, exceptID string, now time.Time) (int, error)
	ListPools(ctx context.Context) ([]models.Pool, error)
	GetPool(ctx context.Context, name string) (*models.Pool, error)
	CreatePool(ctx context.Context, p models.Pool) error
	UpdatePool(ctx context.Context, p models.Pool) error
	UpdatePoolIf(ctx context.Context, p models.Pool, was models.Pool) error
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
	// Secrets stores the secrets of clients made or rotated here; Keys are the signing keys.
	Secrets secrets
	Keys    keyRing
	// Webhooks serves /webhooks (webhooks.go); nil: not mounted.
	Webhooks *Webhooks
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
	h.mountMore(s)
	h.mountWebhooks(s)
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

// list answers GET /users, a page at a time (?limit=, ?cursor=): ?pool=P lists one pool (which the client must
// administer); without it, every pool the client administers. ?email=E looks the address up in ?pool= (default:
// the default pool); ?disabled=true|false filters.
func (h *API) list(w http.ResponseWriter, r *http.Request) error {
	c, err := h.authorize(r)
	if err != nil {
		return err
	}
	pg, err := jsonapi.ReadPage(r)
	if err != nil {
		return err
	}
	disabled, err := jsonapi.BoolParam(r, "disabled")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	pool, email := q.Get("pool"), q.Get("email")
	uq := models.UserQuery{Email: email, Disabled: disabled, After: pg.After, Limit: pg.Limit + 1}
	switch {
	case pool != "" || email != "":
		if !c.AdministersPool(pool) {
			return notYourPool(pool)
		}
		uq.Pools = []string{cmp.Or(pool, models.DefaultPool)}
	case len(c.AdminPools) > 0:
		uq.Pools = c.AdminPools
	}
	rows, err := h.Store.ListUsersPage(r.Context(), uq)
	if err != nil {
		return storeError("admin api: list users", err)
	}
	if len(rows) == 0 && pool != "" {
		if err := h.poolExists(r, pool); err != nil {
			return err
		}
	}
	rows, cursor := jsonapi.NextPage(rows, pg.Limit, func(u *models.User) (time.Time, string) { return u.CreatedAt, u.ID })
	out := make([]adminUser, 0, len(rows))
	for i := range rows {
		out = append(out, userView(&rows[i]))
	}
	jsonapi.Respond(w, http.StatusOK, map[string]any{"users": out, "next_cursor": cursor})
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
	jsonapi.RespondTagged(w, http.StatusOK, userView(u))
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
	cur, err := h.user(r, c, id)
	if err != nil {
		return err
	}
	patch := models.UserPatch{Name: body.Name, Roles: body.Roles, Extras: body.Extras, Disabled: body.Disabled}
	if conditional, err := jsonapi.IfMatch(r, jsonapi.ETag(userView(cur))); err != nil {
		return err
	} else if conditional {
		patch.Unmodified = &cur.UpdatedAt // decided by the update itself: of two PATCHes with one ETag, one wins
	}
	// One change, one transaction: a field the store refuses leaves the others unsaved too.
	u, err := h.Store.UpdateUser(ctx, id, patch, h.Now())
	if errors.Is(err, models.ErrPreconditionFailed) {
		return jsonapi.ErrPreconditionFailed()
	} else if err != nil {
		return storeError("admin api: update user", err)
	}
	request.Logger(ctx).Info("admin updated user", "user", id, "client", c.ID)
	jsonapi.RespondTagged(w, http.StatusOK, userView(u))
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
		// The store's reasons start with the field they are about ("name is ...", "extras may not ...").
		field, _, _ := strings.Cut(msg, " ")
		switch field {
		case "unknown": // "unknown pool ..."
			return jsonapi.Invalid("pool", msg)
		case "name", "email", "password", "extras", "roles", "pool", "mfa":
			return jsonapi.Invalid(field, msg)
		}
		return jsonapi.BadRequest(msg)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}
