package passkeys

import (
	"errors"
	"net/http"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/passkey"
	"github.com/latchkey/latchkey/templates"
)

// The browser's passkey pages. Their scripts fetch options with the page's form (csrf_token included) and post
// the credential back in the form, so every step is a same-origin form post checked like the other pages'.

// signedIn is the account page's visitor and their session; without one it sends the browser to sign in and
// back, and reports false.
func (h *Passkeys) signedIn(w http.ResponseWriter, r *http.Request) (*models.BrowserSession, *models.User, bool) {
	bs, err := h.Browser.SignedIn(r)
	if err != nil {
		h.page().Fault(w, r, "passkeys page", err)
		return nil, nil, false
	}
	if bs == nil {
		http.Redirect(w, r, page.LoginURL(r.URL.Query().Get("pool"), PathAccount), http.StatusSeeOther)
		return nil, nil, false
	}
	u, err := h.Store.UserByID(r.Context(), bs.UserID)
	if err != nil {
		h.page().Fault(w, r, "load signed-in user "+bs.UserID, err)
		return nil, nil, false
	}
	return bs, u, true
}

func (h *Passkeys) accountPage(w http.ResponseWriter, r *http.Request) {
	bs, u, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	flash := ""
	switch r.URL.Query().Get("done") {
	case "added":
		flash = "Passkey added."
	case "removed":
		flash = "Passkey removed."
	}
	h.renderAccount(w, r, http.StatusOK, bs, u, flash, "")
}

func (h *Passkeys) renderAccount(w http.ResponseWriter, r *http.Request, status int, bs *models.BrowserSession, u *models.User, flash, msg string) {
	factors, err := h.Store.Factors(r.Context(), u.ID)
	if err != nil {
		h.page().Fault(w, r, "list passkeys", err)
		return
	}
	var rows []templates.PasskeyRow
	for _, f := range passkeysOf(factors) {
		row := templates.PasskeyRow{ID: f.ID, Name: f.Name, CreatedAt: f.CreatedAt, Synced: f.Passkey.BackupState}
		if f.LastUsedAt != nil {
			row.LastUsed = *f.LastUsedAt
		}
		rows = append(rows, row)
	}
	page.LogRender(r, h.Pages.Passkeys(w, status, templates.PasskeysPage{
		UserEmail: u.Email, CSRFToken: h.page().CSRFToken(w, r), Action: PathAccount, OptionsURL: PathAccountOptions,
		Flash: flash, Error: msg, Passkeys: rows, CanChange: grant.SignedInRecently(bs.AuthTime, h.Now()),
		ReauthURL: page.LoginURL(u.Pool, PathAccount),
	}))
}

// checkForm reads a form posted by a script expecting JSON: a form or CSRF failure is a JSON error.
func (h *Passkeys) checkForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return jsonapi.BadRequest("The form could not be read.")
	}
	if !h.page().CheckCSRF(r) {
		return jsonapi.New(http.StatusForbidden, jsonapi.InvalidRequest, "This page has expired; reload it and try again.")
	}
	return nil
}

// accountOptions begins adding a passkey for the signed-in user (the page's script asks for it).
func (h *Passkeys) accountOptions(w http.ResponseWriter, r *http.Request) error {
	if err := h.checkForm(r); err != nil {
		return err
	}
	bs, err := h.Browser.SignedIn(r)
	if err != nil {
		return err
	}
	if bs == nil {
		return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidRequest, "You are signed out; sign in again.")
	}
	if !grant.SignedInRecently(bs.AuthTime, h.Now()) {
		return jsonapi.New(http.StatusForbidden, jsonapi.InvalidRequest, "Adding a passkey needs a sign-in from the last 5 minutes; sign in again.")
	}
	u, err := h.Store.UserByID(r.Context(), bs.UserID)
	if err != nil {
		return err
	}
	if ok, err := h.enrolmentAllowed(r.Context(), u); err != nil {
		return err
	} else if !ok {
		return errPoolOff()
	}
	begun, err := h.RP.BeginRegistration(r.Context(), u)
	if e := finishError(err, "registration"); e != nil {
		return e
	} else if err != nil {
		return err
	}
	jsonapi.Respond(w, http.StatusOK, begun)
	return nil
}

// accountSubmit adds the passkey the page's script created (op=add), or removes one (op=remove).
func (h *Passkeys) accountSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.page().ParsePost(w, r) {
		return
	}
	r = request.Detached(r)
	bs, u, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	if !grant.SignedInRecently(bs.AuthTime, h.Now()) {
		h.renderAccount(w, r, http.StatusForbidden, bs, u, "", "Changing your passkeys needs a sign-in from the last 5 minutes: sign in again first.")
		return
	}
	switch r.PostForm.Get("op") {
	case "add":
		if ok, err := h.enrolmentAllowed(r.Context(), u); err != nil {
			h.page().Fault(w, r, "load pool", err)
			return
		} else if !ok {
			h.renderAccount(w, r, http.StatusForbidden, bs, u, "", "Passkeys are turned off for this app.")
			return
		}
		f, err := h.RP.FinishRegistration(r.Context(), u, passkeyName(r.PostForm.Get("name")), []byte(r.PostForm.Get("credential")))
		if e := finishError(err, "registration"); e != nil {
			msg := "That passkey could not be added. Try again."
			if errors.Is(err, models.ErrConflict) || errors.Is(err, models.ErrTooManyPasskeys) {
				msg = e.Description
			}
			h.renderAccount(w, r, e.Status, bs, u, "", msg)
			return
		} else if err != nil {
			h.page().Fault(w, r, "add passkey", err)
			return
		}
		request.Logger(r.Context()).Info("passkey added", "user", u.ID, "factor", f.ID)
		http.Redirect(w, r, PathAccount+"?done=added", http.StatusSeeOther)
	case "remove":
		err := h.remove(r, u.ID, r.PostForm.Get("factor_id"))
		if errors.Is(err, models.ErrNotFound) {
			h.renderAccount(w, r, http.StatusNotFound, bs, u, "", "That passkey does not exist or was removed already.")
			return
		} else if err != nil {
			h.page().Fault(w, r, "remove passkey", err)
			return
		}
		http.Redirect(w, r, PathAccount+"?done=removed", http.StatusSeeOther)
	default:
		h.page().Error(w, r, http.StatusBadRequest, "Bad request", "The form is not one of this page's.")
	}
}

// browserSignInBind binds a sign-in's ceremony to the browser that began it (its CSRF token, which only pages
// of that browser hold).
func browserSignInBind(csrf string) string { return passkey.Bind("browser-sign-in", csrf) }

// signInOptions begins a passwordless sign-in for the sign-in page's script.
func (h *Passkeys) signInOptions(w http.ResponseWriter, r *http.Request) error {
	if err := h.checkForm(r); err != nil {
		return err
	}
	begun, err := h.beginSignIn(r, browserSignInBind(r.PostForm.Get("csrf_token")))
	if err != nil {
		return err
	}
	jsonapi.Respond(w, http.StatusOK, begun)
	return nil
}

// signInSubmit takes the sign-in page's passkey form: a passkey of a user of the pool being signed in to starts
// the session as a password and second factor would.
func (h *Passkeys) signInSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.page().ParsePost(w, r) {
		return
	}
	r = request.Detached(r)
	pool, ok := h.Browser.SignInPool(w, r)
	if !ok {
		return
	}
	u, err := h.checkSignIn(r, pool, browserSignInBind(r.PostForm.Get("csrf_token")), []byte(r.PostForm.Get("credential")))
	var refused *jsonapi.Error
	switch {
	case errors.As(err, &refused):
		// The throttle: too many tries (its description says how long to wait), or it could not be consulted.
		if refused.Status == http.StatusServiceUnavailable {
			jsonapi.SetRetryAfter(w)
		}
		h.page().Error(w, r, refused.Status, "Not signed in", refused.Description)
		return
	case errors.Is(err, models.ErrEmailNotVerified):
		h.page().Error(w, r, http.StatusForbidden, "Not signed in", "Please verify your email address first: open the link in the mail we sent you.")
		return
	case errors.Is(err, passkey.ErrMalformed), errors.Is(err, passkey.ErrCeremony), errors.Is(err, passkey.ErrRejected):
		h.page().Error(w, r, http.StatusUnauthorized, "That passkey was not accepted", "Go back and try again, or sign in with your email and password.")
		return
	case err != nil:
		h.page().Fault(w, r, "passkey sign-in", err)
		return
	}
	h.Browser.SignedInWith(w, r, u, models.AuthMethodPasskey)
}
