package admin

import (
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
)

// resetMFA answers DELETE /users/{id}/mfa: every second factor, recovery code and open MFA challenge of the user
// goes (a user who lost their device); they sign in with the password alone, or enrol again where the pool
// requires MFA. The same reset as the CLI's users reset-mfa.
func (h *API) resetMFA(w http.ResponseWriter, r *http.Request) error {
	c, err := h.authorize(r)
	if err != nil {
		return err
	}
	u, err := h.user(r, c, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	n, err := h.Store.ResetMFA(r.Context(), u.ID)
	if err != nil {
		return fmt.Errorf("admin api: reset mfa: %w", err)
	}
	request.Logger(r.Context()).Info("admin reset mfa", "user", u.ID, "factors", n, "client", c.ID)
	jsonapi.Respond(w, http.StatusOK, map[string]any{"factors_removed": n})
	return nil
}
