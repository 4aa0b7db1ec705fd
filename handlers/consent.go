package handlers

import (
	"net/http"

	"github.com/ory/fosite"
)

// consentSubmit records the user's decision on a parked authorization request. Allow remembers the consent for
// this user, client and scopes and resumes the request; deny returns access_denied to the client.
func (h *Browser) consentSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.parsePost(w, r) {
		return
	}
	ctx := r.Context()
	now := h.Now()
	chal, err := h.Store.AuthChallenge(ctx, r.PostForm.Get("challenge"), now)
	if err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "This sign-in request has expired", "Go back to the application and start signing in again.")
		return
	}
	bs := h.currentSession(r)
	if bs == nil {
		// Signed out in another tab: the authorization endpoint will ask to sign in again.
		http.Redirect(w, r, h.resumeURL(chal.ID), http.StatusSeeOther)
		return
	}
	// Rebuild the original request so fosite validates the client and redirect URI before anything is sent there.
	orig := r.Clone(ctx)
	orig.Method = http.MethodGet
	orig.URL.RawQuery = chal.Query
	orig.Form, orig.PostForm, orig.Body = nil, nil, http.NoBody
	ar, err := h.OAuth.NewAuthorizeRequest(ctx, orig)
	if err != nil {
		h.authorizeError(w, orig, ar, err)
		return
	}
	switch r.PostForm.Get("decision") {
	case "allow":
		if err := h.Store.SaveConsent(ctx, bs.UserID, chal.ClientID, ar.GetRequestedScopes(), now); err != nil {
			h.authorizeError(w, orig, ar, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error()))
			return
		}
		if err := h.Store.MarkChallengeConsent(ctx, chal.ID, bs.ID, now); err != nil {
			h.authorizeError(w, orig, ar, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error()))
			return
		}
		http.Redirect(w, r, h.resumeURL(chal.ID), http.StatusSeeOther)
	case "deny":
		_ = h.Store.DeleteAuthChallenge(ctx, chal.ID)
		h.authorizeError(w, orig, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
	default:
		h.errorPage(w, r, http.StatusBadRequest, "Bad request", "Choose Allow or Deny.")
	}
}
