package tokenapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// scopedUser is jsonapi.User as an access token's scopes release it, the mapping userinfo uses: id, pool and
// created_at always; email and email_verified with email; name, extras and updated_at with profile; roles with
// roles. A field the token may not read is left out, not emptied. A first-party app holding all its scopes
// sees exactly jsonapi.User.
type scopedUser struct {
	ID            string          `json:"id"`
	Email         *string         `json:"email,omitempty"`
	Name          *string         `json:"name,omitempty"`
	EmailVerified *bool           `json:"email_verified,omitempty"`
	Roles         *[]string       `json:"roles,omitempty"`
	Pool          string          `json:"pool"`
	Extras        *map[string]any `json:"extras,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     *time.Time      `json:"updated_at,omitempty"`
}

func toScopedUser(u *models.User, scopes fosite.Arguments) scopedUser {
	a := jsonapi.UserOf(u)
	out := scopedUser{ID: a.ID, Pool: a.Pool, CreatedAt: a.CreatedAt}
	if scopes.Has(provider.ScopeEmail) {
		out.Email, out.EmailVerified = &a.Email, &a.EmailVerified
	}
	if scopes.Has(provider.ScopeProfile) {
		out.Name, out.Extras, out.UpdatedAt = &a.Name, &a.Extras, &a.UpdatedAt
	}
	if scopes.Has(provider.ScopeRoles) {
		out.Roles = &a.Roles
	}
	return out
}

// me answers the user as the token's scopes release it (see scopedUser); changing the profile needs profile.
func (h *API) me(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	b, err := h.authenticateUser(r, false)
	if err != nil {
		return err
	}
	if r.Method == http.MethodPatch {
		if !b.scopes.Has(provider.ScopeProfile) {
			return grant.InsufficientScope(provider.ScopeProfile, "Changing the profile needs a token with the profile scope.")
		}
		var body struct {
			Name *string `json:"name"`
		}
		if err := jsonapi.Decode(r, &body); err != nil {
			return err
		}
		if body.Name != nil {
			if err := h.Store.SetName(ctx, b.user.ID, *body.Name); errors.Is(err, models.ErrInvalid) {
				return jsonapi.BadRequest(strings.TrimPrefix(err.Error(), "invalid: "))
			} else if err != nil {
				return fmt.Errorf("update profile: %w", err)
			}
		}
		u, err := h.Store.UserByID(ctx, b.user.ID)
		if err != nil {
			return fmt.Errorf("reload the updated user: %w", err)
		}
		b.user = u
	}
	jsonapi.Respond(w, http.StatusOK, toScopedUser(b.user, b.scopes))
	return nil
}

// logout ends the session the token belongs to, which revokes its refresh and access tokens.
func (h *API) logout(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	b, err := h.authenticate(r)
	if err != nil {
		return err
	}
	if r.ContentLength > 0 {
		var body struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := jsonapi.Decode(r, &body); err != nil {
			return err
		}
	}
	if err := h.Store.EndBrowserSession(ctx, b.session.SID, h.Now()); err != nil && !errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("end session: %w", err)
	}
	request.Logger(ctx).Info("api signed out", "user", b.user.ID, "session", b.session.SID)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// password changes the password and ends every other session of the user.
func (h *API) password(w http.ResponseWriter, r *http.Request) error {
	r = request.Detached(r)
	ctx := r.Context()
	b, err := h.authenticate(r)
	if err != nil {
		return err
	}
	var body struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	if body.CurrentPassword == "" || body.NewPassword == "" {
		return jsonapi.BadRequest("current_password and new_password are required.")
	}
	if err := h.Policy.Check(body.NewPassword, b.user.Email); err != nil {
		return weakPassword(err)
	}
	checked, ctx, err := h.checkOwnPassword(r, b, body.CurrentPassword)
	if err != nil {
		return err
	}
	wrongCurrent := errWrongCurrentPassword()
	// One transaction: the new password and the end of every other session (and their tokens), so no sign-in
	// with the old password survives the change; and only while the password checked is still current, so a
	// second change checked against the same old password cannot overwrite the first.
	n, err := h.Store.ChangeOwnPassword(ctx, checked, body.NewPassword, b.session.SID, h.Now())
	switch {
	case errors.Is(err, models.ErrInvalidCredentials):
		return wrongCurrent
	case errors.Is(err, models.ErrInvalid):
		return jsonapi.BadRequest(strings.TrimPrefix(err.Error(), "change password: invalid: "))
	case err != nil:
		return fmt.Errorf("change password: %w", err)
	}
	request.Logger(ctx).Info("password changed", "user", b.user.ID, "sessions_ended", n)
	jsonapi.Respond(w, http.StatusOK, map[string]any{"sessions_ended": n})
	return nil
}

type apiSession struct {
	ID           string    `json:"id"`
	Device       string    `json:"device"`
	IP           string    `json:"ip"`
	CreatedAt    time.Time `json:"created_at"`
	LastActiveAt time.Time `json:"last_active_at"`
	Current      bool      `json:"current"`
	// MintedBy is the admin client that minted the session's tokens (the admin API); absent for a sign-in.
	MintedBy string `json:"minted_by,omitempty"`
}

// sessions lists the user's active sessions (GET), or ends all but the caller's (DELETE).
func (h *API) sessions(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	b, err := h.authenticate(r)
	if err != nil {
		return err
	}
	if r.Method == http.MethodDelete {
		n, err := h.Store.EndUserBrowserSessions(ctx, b.user.ID, b.session.SID, h.Now())
		if err != nil {
			return fmt.Errorf("end other sessions: %w", err)
		}
		jsonapi.Respond(w, http.StatusOK, map[string]any{"sessions_ended": n})
		return nil
	}
	list, err := h.Store.ListBrowserSessions(ctx, b.user.ID, h.Now())
	if err != nil {
		return fmt.Errorf("list sessions: %w", err)
	}
	out := make([]apiSession, 0, len(list))
	for _, s := range list {
		out = append(out, apiSession{ID: s.ID, Device: request.DeviceName(s.UserAgent), IP: s.IP, CreatedAt: s.CreatedAt,
			LastActiveAt: s.LastActiveAt, Current: s.ID == b.session.SID, MintedBy: s.MintedBy})
	}
	jsonapi.Respond(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}

// endSession ends one of the user's sessions; another user's looks exactly like a missing one.
func (h *API) endSession(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	b, err := h.authenticate(r)
	if err != nil {
		return err
	}
	id := mux.Vars(r)["id"]
	s, err := h.Store.BrowserSessionByID(ctx, id)
	if errors.Is(err, models.ErrNotFound) || (err == nil && (s.UserID != b.user.ID || s.EndedAt != nil)) {
		return jsonapi.New(http.StatusNotFound, jsonapi.NotFound, "No such active session.")
	} else if err != nil {
		return fmt.Errorf("load session: %w", err)
	}
	if err := h.Store.EndBrowserSession(ctx, id, h.Now()); err != nil && !errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("end session: %w", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func errWrongCurrentPassword() *jsonapi.Error {
	return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidGrant, "The current password is incorrect.")
}

// checkOwnPassword checks the signed-in caller's current password, as a change of password or of second factors
// needs: a stolen access token alone must not do either. It is counted under the caller's session rather than
// the whole account: someone holding a stolen token gets the free attempts per session, and strangers' wrong
// sign-ins never block the owner. It returns the user as checked and the attempt's context.
func (h *API) checkOwnPassword(r *http.Request, b *caller, password string) (*models.User, context.Context, error) {
	attempt, wait, err := h.Throttle.Reserve(r, b.user.Pool, b.user.Email, "session-"+b.session.SID)
	if err := throttle.Refusal(r, wait, err); err != nil {
		return nil, nil, err
	}
	ctx := attempt.Context()
	checked, err := h.Store.Authenticate(ctx, b.user.Pool, b.user.Email, password)
	switch {
	case errors.Is(err, models.ErrInvalidCredentials), errors.Is(err, models.ErrUserDisabled):
		return nil, nil, errWrongCurrentPassword()
	case err != nil:
		attempt.Void()
		return nil, nil, fmt.Errorf("authenticate: %w", err)
	}
	attempt.Succeeded()
	return checked, ctx, nil
}
