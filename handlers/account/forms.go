package account

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
)

// Sections of the page a form's message belongs to.
const (
	secProfile   = "profile"
	secEmail     = "email"
	secPassword  = "password"
	secFactors   = "factors"
	secProviders = "providers"
)

func (h *Pages) profileSubmit(w http.ResponseWriter, r *http.Request, v *signedIn) {
	err := h.Store.SetName(r.Context(), v.user.ID, r.PostForm.Get("name"))
	switch {
	case errors.Is(err, models.ErrInvalid):
		h.refuse(w, r, v, http.StatusBadRequest, secProfile, "This name cannot be used: at most 200 characters of text.")
		return
	case err != nil:
		h.page().Fault(w, r, "set name", err)
		return
	}
	u, err := h.Store.UserByID(r.Context(), v.user.ID)
	if err != nil {
		h.page().Fault(w, r, "reload the user", err)
		return
	}
	v.user = u
	request.Logger(r.Context()).Info("profile changed", "user", u.ID)
	h.done(w, r, v, "Profile saved.")
}

// resendSubmit asks for a new verification mail through the same durable request as the token API's resend: the
// address's mail limits, then a mail_request row the outbox worker turns into the mail.
func (h *Pages) resendSubmit(w http.ResponseWriter, r *http.Request, v *signedIn) {
	u := v.user
	switch {
	case h.Mail == nil:
		h.refuse(w, r, v, http.StatusNotFound, secEmail, "This server sends no mail, so it cannot send a verification mail.")
		return
	case u.EmailVerified:
		h.done(w, r, v, "Your email address is already verified.")
		return
	}
	wait, send, err := h.Throttle.ReserveMail(r, models.MailVerifyEmail, u.Pool, u.Email)
	switch {
	case err != nil:
		h.page().Fault(w, r, "mail throttle", err)
		return
	case wait > 0:
		w.Header().Set("Retry-After", throttle.Seconds(wait))
		h.refuse(w, r, v, http.StatusTooManyRequests, secEmail, "Too many mails asked for. Try again in "+throttle.Seconds(wait)+" seconds.")
		return
	}
	if !send {
		request.Logger(r.Context()).Info("no mail", "purpose", models.MailVerifyEmail, "reason", "this address's mail limit", "user", u.ID)
	} else if _, err := h.Store.EnqueueOutbox(r.Context(), models.OutboxMailRequest, "",
		models.MailRequest{Purpose: models.MailVerifyEmail, Pool: u.Pool, Email: u.Email}, h.Now()); err != nil {
		h.page().Fault(w, r, "queue the verification mail request", err)
		return
	}
	request.Logger(r.Context()).Info("mail requested", "purpose", models.MailVerifyEmail, "user", u.ID)
	h.done(w, r, v, "A verification mail is on its way to "+u.Email+".")
}

// errPasswordAnswered: checkPassword has answered the browser (a wrong password, a throttle, a fault).
var errPasswordAnswered = errors.New("password check answered")

// checkPassword checks the visitor's current password as the token API does for its own account changes: counted
// under the browser session rather than the whole account (strangers' wrong sign-ins never block the owner, a
// stolen session gets only its own few tries), reserved before the hash runs. It returns the user as checked and
// the attempt's context, or errPasswordAnswered with the page answered (its message in section).
func (h *Pages) checkPassword(w http.ResponseWriter, r *http.Request, v *signedIn, section, password string) (*models.User, context.Context, error) {
	if password == "" {
		h.refuse(w, r, v, http.StatusBadRequest, section, "Enter your current password.")
		return nil, nil, errPasswordAnswered
	}
	attempt, wait, err := h.Throttle.Reserve(r, v.user.Pool, v.user.Email, "session-"+v.session.ID)
	switch {
	case err != nil:
		h.page().Fault(w, r, "password throttle", err)
		return nil, nil, errPasswordAnswered
	case wait > 0:
		request.Logger(r.Context()).Info("account password check throttled", "retry_after", throttle.Seconds(wait))
		w.Header().Set("Retry-After", throttle.Seconds(wait))
		h.refuse(w, r, v, http.StatusTooManyRequests, section, "Too many attempts. Try again in "+throttle.Seconds(wait)+" seconds.")
		return nil, nil, errPasswordAnswered
	}
	ctx := attempt.Context()
	if throttle.Oversized(v.user.Email, password) {
		h.refuse(w, r, v, http.StatusUnauthorized, section, "The current password is not right.")
		return nil, nil, errPasswordAnswered
	}
	checked, err := h.Store.Authenticate(ctx, v.user.Pool, v.user.Email, password)
	switch {
	case errors.Is(err, models.ErrInvalidCredentials), errors.Is(err, models.ErrUserDisabled):
		request.Logger(ctx).Info("account password check failed", "user", v.user.ID)
		h.refuse(w, r, v, http.StatusUnauthorized, section, "The current password is not right.")
		return nil, nil, errPasswordAnswered
	case errors.Is(err, models.ErrEmailNotVerified) && checked != nil:
		// The right password; whether the pool lets an unverified user sign in is not this page's question.
	case err != nil:
		attempt.Void()
		h.page().Fault(w, r, "check password", err)
		return nil, nil, errPasswordAnswered
	}
	attempt.Succeeded()
	return checked, ctx, nil
}

// passwordSubmit changes the password under the same policy and in the same one transaction as the token API
// (models.Store.ChangeOwnPassword): every other session of the user ends with its tokens; this one stays.
func (h *Pages) passwordSubmit(w http.ResponseWriter, r *http.Request, v *signedIn) {
	current, next := r.PostForm.Get("current_password"), r.PostForm.Get("new_password")
	if current == "" || next == "" {
		h.refuse(w, r, v, http.StatusBadRequest, secPassword, "Enter your current password and a new one.")
		return
	}
	if err := h.Policy.Check(next, v.user.Email); err != nil {
		h.refuse(w, r, v, http.StatusBadRequest, secPassword, "Choose a stronger password: "+err.Error())
		return
	}
	checked, ctx, err := h.checkPassword(w, r, v, secPassword, current)
	if err != nil {
		return
	}
	n, err := h.Store.ChangeOwnPassword(ctx, checked, next, v.session.ID, h.Now())
	switch {
	case errors.Is(err, models.ErrInvalidCredentials):
		h.refuse(w, r, v, http.StatusConflict, secPassword, "Your password was changed meanwhile. Reload the page and try again.")
		return
	case errors.Is(err, models.ErrInvalid):
		h.refuse(w, r, v, http.StatusBadRequest, secPassword, "This password cannot be used; choose another.")
		return
	case err != nil:
		h.page().Fault(w, r, "change password", err)
		return
	}
	request.Logger(ctx).Info("password changed", "user", v.user.ID, "sessions_ended", n)
	msg := "Password changed."
	if n > 0 {
		msg += " Signed out of " + strconv.Itoa(n) + " other " + plural(n, "session", "sessions") + "."
	}
	h.done(w, r, v, msg)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// unlinkSubmit removes a linked provider while the user keeps another way to sign in: the current password
// (typed here: a user made by another provider has one nobody knows) or another linked provider. The store
// decides it atomically (models.Store.UnlinkIdentity). Without the password it needs a recent sign-in
// (grant.SignedInRecently), as a change of factors does.
func (h *Pages) unlinkSubmit(w http.ResponseWriter, r *http.Request, v *signedIn) {
	providerID, subject := r.PostForm.Get("provider_id"), r.PostForm.Get("subject")
	if providerID == "" || subject == "" || len(providerID) > 64 || len(subject) > 255 {
		h.refuse(w, r, v, http.StatusBadRequest, secProviders, "Choose a linked provider to unlink.")
		return
	}
	pw := r.PostForm.Get("password")
	if pw == "" && !grant.SignedInRecently(v.session.AuthTime, h.Now()) {
		// Unlinking changes how the account signs in: as for a factor, a stolen old session alone may not.
		h.refuse(w, r, v, http.StatusForbidden, secProviders,
			"Unlinking a provider needs a sign-in from the last 5 minutes: enter your current password, or sign in again first.")
		return
	}
	ctx, passwordChecked := r.Context(), false
	if pw != "" {
		var err error
		if _, ctx, err = h.checkPassword(w, r, v, secProviders, pw); err != nil {
			return
		}
		passwordChecked = true
	}
	err := h.Store.UnlinkIdentity(ctx, v.user.ID, providerID, subject, passwordChecked)
	switch {
	case errors.Is(err, models.ErrLastSignIn):
		request.Logger(ctx).Info("unlink refused", "reason", "the last way to sign in", "user", v.user.ID, "provider", page.Truncate(providerID, 64))
		h.refuse(w, r, v, http.StatusConflict, secProviders,
			"This provider is your only way to sign in. Enter your current password to show you have one (set one with “Forgot password?”), or link another provider first.")
		return
	case errors.Is(err, models.ErrNotFound), errors.Is(err, models.ErrInvalid): // text no stored link can hold
		h.refuse(w, r, v, http.StatusNotFound, secProviders, "That provider is not linked to your account.")
		return
	case err != nil:
		h.page().Fault(w, r, "unlink provider", err)
		return
	}
	request.Logger(ctx).Info("provider unlinked", "user", v.user.ID, "provider", providerID)
	h.done(w, r, v, "Provider unlinked.")
}
