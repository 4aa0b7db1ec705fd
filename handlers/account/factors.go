package account

import (
	"context"
	"errors"
	"net/http"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/templates"
)

// Second factors on the account page. Setting one up, removing one or making new recovery codes changes how the
// account is guarded, so it needs a recent sign-in or the current password (grant.SignedInRecently, the token
// API's rule); confirming a new authenticator app needs its first code instead.

// reauthenticated says whether the visitor may change their second factors now: a recent sign-in, or the
// password typed in the form. ctx is the context to go on with; when ok is false the page has been answered.
func (h *Pages) reauthenticated(w http.ResponseWriter, r *http.Request, v *signedIn) (context.Context, bool) {
	if grant.SignedInRecently(v.session.AuthTime, h.Now()) {
		return r.Context(), true
	}
	pw := r.PostForm.Get("password")
	if pw == "" {
		h.refuse(w, r, v, http.StatusForbidden, secFactors, "Enter your current password to change two-factor sign-in.")
		return nil, false
	}
	_, ctx, err := h.checkPassword(w, r, v, secFactors, pw)
	return ctx, err == nil
}

// enrolSubmit starts setting up an authenticator app: a new secret, sealed, in a pending factor, and the page
// with its QR code and key, shown this once.
func (h *Pages) enrolSubmit(w http.ResponseWriter, r *http.Request, v *signedIn) {
	ctx, ok := h.reauthenticated(w, r, v)
	if !ok {
		return
	}
	pool, err := h.Store.GetPool(ctx, v.user.Pool)
	if err != nil {
		h.page().Fault(w, r, "load pool", err)
		return
	}
	if pool.MFA == models.MFAOff {
		h.refuse(w, r, v, http.StatusForbidden, secFactors, "Two-factor sign-in is turned off for this account's app.")
		return
	}
	id, err := models.NewFactorID()
	if err != nil {
		h.page().Fault(w, r, "new factor id", err)
		return
	}
	secret := mfa.NewSecret()
	sealed, err := h.Sealer.Seal(id, secret)
	if err != nil {
		h.page().Fault(w, r, "seal factor secret", err)
		return
	}
	err = h.Store.CreatePendingFactor(ctx, models.Factor{ID: id, UserID: v.user.ID, Kind: models.FactorTOTP, Name: "Authenticator app", SealedSecret: sealed})
	switch {
	case errors.Is(err, models.ErrFactorExists):
		h.refuse(w, r, v, http.StatusConflict, secFactors, "An authenticator app is already set up; remove it first.")
		return
	case err != nil:
		h.page().Fault(w, r, "create factor", err)
		return
	}
	qr, err := mfa.QRDataURL(mfa.URI(secret, h.MFAIssuer, v.user.Email))
	if err != nil {
		h.page().Fault(w, r, "qr code", err)
		return
	}
	request.Logger(ctx).Info("mfa enrolment started", "user", v.user.ID, "factor", id)
	h.show(w, r, v, http.StatusOK, templates.AccountPage{Section: secFactors,
		Enrolment: &templates.TOTPEnrolment{QRCode: qr, Secret: mfa.EncodeSecret(secret), ConfirmAction: PathConfirm}})
}

// newRecoveryCodes makes recovery codes and their hashes for userID.
func newRecoveryCodes(userID string) ([]string, []string) {
	codes := mfa.NewRecoveryCodes()
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = mfa.HashRecoveryCode(userID, c)
	}
	return codes, hashes
}

// confirmSubmit activates the pending authenticator app with its first code (reserved against the user's code
// throttle before it is checked, as at sign-in) and shows the recovery codes, once.
func (h *Pages) confirmSubmit(w http.ResponseWriter, r *http.Request, v *signedIn) {
	code := mfa.NormalizeCode(r.PostForm.Get("code"))
	if code == "" || len(code) > 64 {
		h.refuse(w, r, v, http.StatusBadRequest, secFactors, "Enter the 6-digit code your authenticator app shows.")
		return
	}
	attempt, wait, err := h.Throttle.ReserveCode(r, v.user.ID, "")
	switch {
	case err != nil:
		h.page().Fault(w, r, "code throttle", err)
		return
	case wait > 0:
		w.Header().Set("Retry-After", throttle.Seconds(wait))
		h.refuse(w, r, v, http.StatusTooManyRequests, secFactors, "Too many attempts. Try again in "+throttle.Seconds(wait)+" seconds.")
		return
	}
	ctx := attempt.Context()
	factors, err := h.Store.Factors(ctx, v.user.ID)
	if err != nil {
		attempt.Void()
		h.page().Fault(w, r, "load factors", err)
		return
	}
	var pending *models.Factor
	for i := range factors {
		if factors[i].Kind == models.FactorTOTP && !factors[i].Active() {
			pending = &factors[i]
		}
	}
	if pending == nil {
		attempt.Void()
		h.refuse(w, r, v, http.StatusConflict, secFactors, "No authenticator app is waiting to be confirmed; set one up first.")
		return
	}
	secret, err := h.Sealer.Open(pending.ID, pending.SealedSecret)
	if err != nil {
		attempt.Void()
		h.page().Fault(w, r, "open factor secret", err)
		return
	}
	step, ok := mfa.Match(secret, code, h.Now())
	if !ok {
		request.Logger(ctx).Info("mfa enrolment code wrong", "user", v.user.ID)
		h.refuse(w, r, v, http.StatusUnauthorized, secFactors, "That code is not right. Check your authenticator app and try again.")
		return
	}
	codes, hashes := newRecoveryCodes(v.user.ID)
	if err := h.Store.ConfirmFactor(ctx, v.user.ID, pending.ID, step, hashes); errors.Is(err, models.ErrNotFound) {
		h.refuse(w, r, v, http.StatusConflict, secFactors, "This set-up was replaced or already confirmed.")
		return
	} else if err != nil {
		h.page().Fault(w, r, "confirm factor", err)
		return
	}
	attempt.Succeeded()
	request.Logger(ctx).Info("mfa factor enrolled", "user", v.user.ID, "factor", pending.ID)
	h.show(w, r, v, http.StatusOK, templates.AccountPage{Section: secFactors, Flash: "Authenticator app set up.", RecoveryCodes: codes})
}

// removeSubmit removes one of the user's factors, of any kind; the last active one takes the recovery codes with it.
func (h *Pages) removeSubmit(w http.ResponseWriter, r *http.Request, v *signedIn) {
	id := r.PostForm.Get("factor_id")
	if id == "" || len(id) > 64 {
		h.refuse(w, r, v, http.StatusBadRequest, secFactors, "Choose a factor to remove.")
		return
	}
	ctx, ok := h.reauthenticated(w, r, v)
	if !ok {
		return
	}
	// Text no stored id can hold (models.ErrInvalid) names no factor either.
	if err := h.Store.DeleteFactor(ctx, v.user.ID, id); errors.Is(err, models.ErrNotFound) || errors.Is(err, models.ErrInvalid) {
		h.refuse(w, r, v, http.StatusNotFound, secFactors, "That factor does not exist or was removed already.")
		return
	} else if err != nil {
		h.page().Fault(w, r, "delete factor", err)
		return
	}
	request.Logger(ctx).Info("mfa factor removed", "user", v.user.ID, "factor", page.Truncate(id, 64))
	h.done(w, r, v, "Factor removed.")
}

// recoverySubmit replaces the recovery codes (the old ones stop working) and shows the new ones, once.
func (h *Pages) recoverySubmit(w http.ResponseWriter, r *http.Request, v *signedIn) {
	ctx, ok := h.reauthenticated(w, r, v)
	if !ok {
		return
	}
	codes, hashes := newRecoveryCodes(v.user.ID)
	if err := h.Store.ReplaceRecoveryCodes(ctx, v.user.ID, hashes); errors.Is(err, models.ErrNotFound) {
		h.refuse(w, r, v, http.StatusConflict, secFactors, "Recovery codes need a second factor; set one up first.")
		return
	} else if err != nil {
		h.page().Fault(w, r, "replace recovery codes", err)
		return
	}
	request.Logger(ctx).Info("recovery codes replaced", "user", v.user.ID)
	h.show(w, r, v, http.StatusOK, templates.AccountPage{Section: secFactors, Flash: "New recovery codes made; the old ones no longer work.", RecoveryCodes: codes})
}
