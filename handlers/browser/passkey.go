package browser

import (
	"errors"
	"net/http"

	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
)

// For handlers/passkeys (it checks the passkey, the session starts here). SignInPool: the pool the form posted in r
// signs in to (of the request in field challenge, else ?pool=); false: the browser has been answered.
func (h *Browser) SignInPool(w http.ResponseWriter, r *http.Request) (string, bool) {
	if r.PostForm.Get("challenge") == "" {
		return h.directPool(w, r)
	}
	p, err := h.openPending(r.PostForm.Get("challenge"), h.Now())
	if err != nil {
		h.expiredPage(w, r)
		return "", false
	}
	c, err := h.Store.ClientByID(r.Context(), p.ClientID)
	if errors.Is(err, models.ErrNotFound) {
		// Deleted since the request began: nothing to sign in to.
		h.expiredPage(w, r)
		return "", false
	} else if err != nil {
		h.page().Fault(w, r, "load the signing-in client", err)
		return "", false
	}
	return c.Pool, true
}

// SignedInWith starts (or refreshes) the session of u, just authenticated by method, and goes on as after a password.
func (h *Browser) SignedInWith(w http.ResponseWriter, r *http.Request, u *models.User, method string) {
	bs, err := h.signIn(w, r, u, h.Now(), method)
	if errors.Is(err, errSignInRefused) {
		h.page().Error(w, r, http.StatusForbidden, "Not signed in", "Your account was changed or disabled while you signed in. Sign in again.")
		return
	} else if err != nil {
		h.page().Fault(w, r, "sign-in", err)
		return
	}
	request.Logger(r.Context()).Info("signed in", "user", u.ID, "session", bs.ID, "amr", method)
	returnTo, _ := page.LocalPath(r.URL.Query().Get("return_to"))
	h.afterSignIn(w, r, bs, r.PostForm.Get("challenge"), returnTo, u.Pool)
}

// SignedIn is the browser's signed-in session, or nil.
func (h *Browser) SignedIn(r *http.Request) (*models.BrowserSession, error) {
	return h.currentSession(r)
}
