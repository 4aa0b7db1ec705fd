package browser

import (
	"errors"
	"net/http"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/secondfactor"
	"github.com/latchkey/latchkey/models"
)

// secondStep asks user, whose first factor just passed, for their second factor when they have one (the code
// page), or tells them to enrol one first when their pool requires it; asked is false when the first factor is
// enough and the sign-in goes on. The sign-in resumes (mfaSubmit) from res and clientID, kept in the challenge.
func (h *Browser) secondStep(w http.ResponseWriter, r *http.Request, user *models.User, clientID string, res secondfactor.Resume) (bool, error) {
	demand, err := grant.SecondFactor(r.Context(), h.Store, user)
	switch {
	case err != nil:
		return false, err
	case demand == grant.MFAVerify:
		// The code page's form ends where the sign-in does, whichever first factor led here.
		res.Redirect = h.pendingRedirect(res.Pending)
		return true, h.mfa.Begin(w, r, user.ID, clientID, res)
	case demand == grant.MFAEnroll:
		h.mfa.EnrolFirst(w, r, user.ID)
		return true, nil
	}
	return false, nil
}

// mfaSubmit takes the code page: a right code starts (or refreshes) the browser session, recording the amr of
// both factors, and the sign-in goes on as after the first factor alone.
func (h *Browser) mfaSubmit(w http.ResponseWriter, r *http.Request) {
	passed, ok := h.mfa.Check(w, r)
	if !ok {
		return
	}
	ctx, now, method := r.Context(), h.Now(), models.AuthMethodOf(passed.AMR)
	var bs *models.BrowserSession
	var user *models.User
	var err error
	if passed.Resume.Federated {
		if user, err = h.Store.UserByID(ctx, passed.UserID); err == nil {
			bs, err = h.signInUpstream(w, r, user, now, method)
		}
	} else if user, err = h.Store.CheckedUser(ctx, passed.UserID, passed.Resume.Stamp); err == nil {
		bs, err = h.signIn(w, r, user, now, method)
	}
	switch {
	case errors.Is(err, errSignInRefused), errors.Is(err, models.ErrInvalidCredentials), errors.Is(err, models.ErrUserDisabled), errors.Is(err, models.ErrNotFound):
		request.Logger(ctx).Info("sign-in refused after the second factor", "reason", "password changed or account disabled since the check", "user", passed.UserID)
		h.page().Error(w, r, http.StatusForbidden, "Not signed in", "Your password was changed or your account disabled while you signed in. Go back to the application and sign in again.")
		return
	case err != nil:
		h.page().Fault(w, r, "sign-in after the second factor", err)
		return
	}
	request.Logger(ctx).Info("signed in", "user", user.ID, "session", bs.ID, "amr", passed.AMR)
	h.afterSignIn(w, r, bs, passed.Resume.Pending, passed.Resume.ReturnTo, user.Pool)
}
