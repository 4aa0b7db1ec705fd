package browser

import (
	"errors"
	"net/http"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
)

// consentSubmit records the user's decision on a challenge. Allow remembers the consent for this user, client
// and scopes and resumes the request; deny returns access_denied to the client. Only the browser session the
// challenge is bound to (the one that signed in for the request, or was shown the consent page) decides, and
// only while its sign-in still satisfies the request's prompt=login and max_age.
func (h *Browser) consentSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.page().ParsePost(w, r) {
		return
	}
	ctx := r.Context()
	now := h.Now()
	chal, err := h.Store.AuthChallenge(ctx, r.PostForm.Get("challenge"), now)
	if errors.Is(err, models.ErrNotFound) {
		h.expiredPage(w, r)
		return
	} else if err != nil {
		h.page().Fault(w, r, "load challenge", err)
		return
	}
	bs, err := h.currentSession(r)
	if err != nil {
		h.page().Fault(w, r, "consent", err)
		return
	}
	if bs == nil || chal.BrowserSessionID != bs.ID {
		// Signed out in another tab, or not the browser session that signed in for this request: the
		// authorization endpoint asks this browser to sign in (or for its own consent), and decides nothing here.
		request.Logger(ctx).Info("consent refused", "reason", "challenge of another browser session")
		http.Redirect(w, r, h.resumeURL(chal.ID), http.StatusSeeOther)
		return
	}
	// Rebuild the original request so fosite validates the client and redirect URI before anything is sent there.
	orig := parkedRequest(r, chal.Query)
	ar, err := h.OAuth.NewAuthorizeRequest(orig.Context(), orig)
	if err != nil {
		h.authorizeError(w, orig, ar, err)
		return
	}
	demand, err := authDemandsOf(ar.GetRequestForm())
	if err != nil {
		h.authorizeError(w, orig, ar, err)
		return
	}
	if !demand.satisfiedBy(bs, chal, now) {
		// The sign-in has aged past max_age since the page was shown: sign in again first.
		http.Redirect(w, r, h.resumeURL(chal.ID), http.StatusSeeOther)
		return
	}
	switch r.PostForm.Get("decision") {
	case "allow":
		if err := h.Store.SaveConsent(ctx, bs.UserID, chal.ClientID, ar.GetRequestedScopes(), now); err != nil {
			h.authorizeError(w, orig, ar, serverError(err))
			return
		}
		if err := h.Store.MarkChallengeConsent(ctx, chal.ID, bs.ID, now); errors.Is(err, models.ErrNotFound) {
			h.expiredPage(w, r) // finished or expired meanwhile
			return
		} else if err != nil {
			h.authorizeError(w, orig, ar, serverError(err))
			return
		}
		http.Redirect(w, r, h.resumeURL(chal.ID), http.StatusSeeOther)
	case "deny":
		if err := h.Store.TakeAuthChallenge(ctx, chal.ID, bs.ID, now); err != nil && !errors.Is(err, models.ErrNotFound) {
			request.Logger(ctx).Warn("delete denied challenge", "error", err)
		}
		h.authorizeError(w, orig, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
	default:
		h.page().Error(w, r, http.StatusBadRequest, "Bad request", "Choose Allow or Deny.")
	}
}
