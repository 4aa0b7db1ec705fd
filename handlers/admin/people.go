package admin

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
)

// Users beyond reading and patching (admin.go): create, delete, set the password, list second factors, end every
// session. The same store calls as the CLI's users commands, so the same rules (CreateUserWith,
// ChangePassword, DeleteUser).

// adminUser is a user as the admin API shows it: the token API's user object and whether the user is disabled.
type adminUser struct {
	jsonapi.User
	Disabled bool `json:"disabled"`
}

func userView(u *models.User) adminUser {
	return adminUser{User: jsonapi.UserOf(u), Disabled: u.Disabled}
}

func (h *API) createUser(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	var body struct {
		Email         string         `json:"email"`
		Password      string         `json:"password"`
		Name          string         `json:"name"`
		Pool          string         `json:"pool"`
		Roles         []string       `json:"roles"`
		Extras        map[string]any `json:"extras"`
		EmailVerified bool           `json:"email_verified"`
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	if !admin.AdministersPool(body.Pool) {
		return notYourPool(body.Pool)
	}
	ctx := r.Context()
	u, err := h.Store.CreateUserWith(ctx, models.NewUser{Email: body.Email, Password: body.Password, Name: body.Name,
		Pool: body.Pool, Roles: body.Roles, Extras: body.Extras, EmailVerified: body.EmailVerified})
	if errors.Is(err, models.ErrConflict) {
		return jsonapi.New(http.StatusConflict, jsonapi.EmailTaken, "A user with this email already exists in the pool.")
	} else if err != nil {
		return storeError("admin api: create user", err)
	}
	request.Logger(ctx).Info("admin created user", "user", u.ID, "client", admin.ID)
	w.Header().Set("Location", Prefix+"/users/"+u.ID)
	jsonapi.RespondTagged(w, http.StatusCreated, userView(u))
	return nil
}

func (h *API) deleteUser(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	u, err := h.user(r, admin, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	conditional, err := jsonapi.IfMatch(r, jsonapi.ETag(userView(u)))
	if err != nil {
		return err
	}
	if conditional {
		err = h.Store.DeleteUserIf(ctx, u.ID, u.UpdatedAt)
	} else {
		err = h.Store.DeleteUser(ctx, u.ID)
	}
	if err != nil {
		return writeError("admin api: delete user", err, "No such user.")
	}
	request.Logger(ctx).Info("admin deleted user", "user", u.ID, "client", admin.ID)
	jsonapi.NoContent(w)
	return nil
}

// setPassword answers PUT /users/{id}/password: the new password, and every session of the user ended with its
// tokens (as the CLI's users set-password).
func (h *API) setPassword(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	var body struct {
		Password string `json:"password"`
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	u, err := h.user(r, admin, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	r = request.Detached(r) // a hash, then a transaction: finish what was started
	n, err := h.Store.ChangePassword(r.Context(), u.ID, body.Password, "", h.Now())
	if err != nil {
		return storeError("admin api: set password", err)
	}
	request.Logger(r.Context()).Info("admin set a password", "user", u.ID, "sessions_ended", n, "client", admin.ID)
	jsonapi.Respond(w, http.StatusOK, map[string]int{"sessions_ended": n})
	return nil
}

// factorView is a second factor as the admin API shows it: never its secret.
type factorView struct {
	ID          string     `json:"id"`
	Kind        string     `json:"kind"`
	Name        string     `json:"name"`
	CreatedAt   time.Time  `json:"created_at"`
	ConfirmedAt *time.Time `json:"confirmed_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
}

func (h *API) factors(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	u, err := h.user(r, admin, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	list, err := h.Store.Factors(r.Context(), u.ID)
	if err != nil {
		return fmt.Errorf("admin api: list factors: %w", err)
	}
	out := make([]factorView, 0, len(list))
	for _, f := range list {
		out = append(out, factorView{ID: f.ID, Kind: f.Kind, Name: f.Name, CreatedAt: f.CreatedAt, ConfirmedAt: f.ConfirmedAt, LastUsedAt: f.LastUsedAt})
	}
	jsonapi.Respond(w, http.StatusOK, map[string]any{"factors": out})
	return nil
}

// endSessions answers DELETE /users/{id}/sessions: every session of the user ends, its tokens revoked.
func (h *API) endSessions(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	u, err := h.user(r, admin, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	n, err := h.Store.EndUserBrowserSessions(r.Context(), u.ID, "", h.Now())
	if err != nil {
		return fmt.Errorf("admin api: end sessions: %w", err)
	}
	request.Logger(r.Context()).Info("admin ended every session", "user", u.ID, "sessions_ended", n, "client", admin.ID)
	jsonapi.Respond(w, http.StatusOK, map[string]int{"sessions_ended": n})
	return nil
}
