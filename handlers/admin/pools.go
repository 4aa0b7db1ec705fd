package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/models"
)

// Pools (list, get, create, update, as the CLI's pools commands) and signing keys (list, schedule a rotation).
// A pool-limited admin client reads and updates its own pools only; creating a pool and rotating the signing
// keys, which every pool shares, are an unrestricted admin client's alone.

// keyRing is the signing keys as the CLI's keys commands use them.
type keyRing interface {
	List(ctx context.Context) ([]keys.KeyInfo, error)
	Rotate(ctx context.Context) ([]keys.KeyInfo, error)
}

// poolFields are a pool's settings as the admin API writes them; a PATCH body is decoded over the current ones.
type poolFields struct {
	SignupEnabled            bool     `json:"signup_enabled"`
	DefaultRoles             []string `json:"default_roles"`
	MFA                      string   `json:"mfa"`
	RequireEmailVerification bool     `json:"require_email_verification"`
	PasswordlessCodes        bool     `json:"passwordless_codes"`
}

func poolView(p *models.Pool) models.Pool {
	v := *p
	v.DefaultRoles = list(v.DefaultRoles)
	return v
}

// unrestricted refuses a pool-limited admin client what concerns every pool.
func unrestricted(admin *models.Client, what string) error {
	if limited(admin) {
		return grant.InsufficientScope(Scope, "Only an admin client of every pool may "+what+".")
	}
	return nil
}

func (h *API) listPools(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	all, err := h.Store.ListPools(r.Context())
	if err != nil {
		return fmt.Errorf("admin api: list pools: %w", err)
	}
	out := make([]models.Pool, 0, len(all))
	for i := range all {
		if admin.AdministersPool(all[i].Name) {
			out = append(out, poolView(&all[i]))
		}
	}
	jsonapi.Respond(w, http.StatusOK, map[string]any{"pools": out})
	return nil
}

// pool loads the pool a request names; one the admin client does not administer is not found.
func (h *API) pool(r *http.Request, admin *models.Client) (*models.Pool, error) {
	name := mux.Vars(r)["name"]
	if !admin.AdministersPool(name) {
		return nil, jsonapi.New(http.StatusNotFound, jsonapi.NotFound, "No such pool.")
	}
	p, err := h.Store.GetPool(r.Context(), name)
	if err != nil {
		return nil, writeError("admin api: load pool", err, "No such pool.")
	}
	return p, nil
}

// poolExists answers an empty list of a pool that is not there as 404, not as an empty page.
func (h *API) poolExists(r *http.Request, name string) error {
	if _, err := h.Store.GetPool(r.Context(), name); err != nil {
		return writeError("admin api: look up pool", err, "No such pool.")
	}
	return nil
}

func (h *API) getPool(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	p, err := h.pool(r, admin)
	if err != nil {
		return err
	}
	jsonapi.RespondTagged(w, http.StatusOK, poolView(p))
	return nil
}

func (h *API) createPool(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	if err := unrestricted(admin, "create pools"); err != nil {
		return err
	}
	var body struct {
		Name string `json:"name"`
		poolFields
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	ctx := r.Context()
	f := body.poolFields
	err = h.Store.CreatePool(ctx, models.Pool{Name: body.Name, SignupEnabled: f.SignupEnabled, DefaultRoles: f.DefaultRoles,
		MFA: f.MFA, RequireEmailVerification: f.RequireEmailVerification, PasswordlessCodes: f.PasswordlessCodes})
	if errors.Is(err, models.ErrConflict) {
		return jsonapi.New(http.StatusConflict, jsonapi.Conflict, "A pool with this name already exists.")
	} else if err != nil {
		return storeError("admin api: create pool", err)
	}
	p, err := h.Store.GetPool(ctx, body.Name)
	if err != nil {
		return fmt.Errorf("admin api: read the new pool: %w", err)
	}
	request.Logger(ctx).Info("admin created pool", "pool", p.Name, "client", admin.ID)
	w.Header().Set("Location", Prefix+"/pools/"+p.Name)
	jsonapi.RespondTagged(w, http.StatusCreated, poolView(p))
	return nil
}

func (h *API) patchPool(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	cur, err := h.pool(r, admin)
	if err != nil {
		return err
	}
	conditional, err := jsonapi.IfMatch(r, jsonapi.ETag(poolView(cur)))
	if err != nil {
		return err
	}
	f := poolFields{SignupEnabled: cur.SignupEnabled, DefaultRoles: cur.DefaultRoles, MFA: cur.MFA,
		RequireEmailVerification: cur.RequireEmailVerification, PasswordlessCodes: cur.PasswordlessCodes}
	if err := jsonapi.Decode(r, &f); err != nil {
		return err
	}
	next := models.Pool{Name: cur.Name, SignupEnabled: f.SignupEnabled, DefaultRoles: f.DefaultRoles, MFA: f.MFA,
		RequireEmailVerification: f.RequireEmailVerification, PasswordlessCodes: f.PasswordlessCodes, CreatedAt: cur.CreatedAt}
	if conditional {
		err = h.Store.UpdatePoolIf(ctx, next, *cur)
	} else {
		err = h.Store.UpdatePool(ctx, next)
	}
	if err != nil {
		return writeError("admin api: update pool", err, "No such pool.")
	}
	p, err := h.Store.GetPool(ctx, cur.Name)
	if err != nil {
		return fmt.Errorf("admin api: read the pool back: %w", err)
	}
	request.Logger(ctx).Info("admin updated pool", "pool", p.Name, "client", admin.ID)
	jsonapi.RespondTagged(w, http.StatusOK, poolView(p))
	return nil
}

func (h *API) listKeys(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.authorize(r); err != nil {
		return err
	}
	list, err := h.Keys.List(r.Context())
	if err != nil {
		return fmt.Errorf("admin api: list signing keys: %w", err)
	}
	if list == nil {
		list = []keys.KeyInfo{}
	}
	jsonapi.Respond(w, http.StatusOK, map[string]any{"keys": list})
	return nil
}

// rotateKeys answers POST /keys/rotation: a new key per algorithm, published now and signing only from its
// activates_at, once every node has reloaded and every cached JWKS has expired (publish before sign). There is
// no immediate rotation here: that breaks verifiers' caches and stays an operator's emergency tool (the CLI's
// keys rotate --now).
func (h *API) rotateKeys(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	if err := unrestricted(admin, "rotate the signing keys"); err != nil {
		return err
	}
	r = request.Detached(r)
	scheduled, err := h.Keys.Rotate(r.Context())
	if errors.Is(err, keys.ErrRotationConflict) {
		return jsonapi.New(http.StatusConflict, jsonapi.Conflict, "Another rotation was made meanwhile; list the keys.")
	} else if err != nil {
		return fmt.Errorf("admin api: rotate signing keys: %w", err)
	}
	request.Logger(r.Context()).Info("admin scheduled a key rotation", "keys", len(scheduled), "client", admin.ID)
	if scheduled == nil {
		scheduled = []keys.KeyInfo{}
	}
	jsonapi.Respond(w, http.StatusAccepted, map[string]any{"scheduled": scheduled})
	return nil
}
