// Package accountmail is the family of pages a mail links to: email verification and password reset. A mail's link
// leads to a GET page that only shows a form, and only its POST (CSRF-checked) uses the token, so a mail scanner
// that fetches links spends nothing.
package accountmail

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/passwords"
	"github.com/latchkey/latchkey/templates"
)

// Pages serves the account mail pages.
type Pages struct {
	Store Store
	// Mail renders account mails; nil: the server sends no mail, and the pages say so.
	Mail     models.ComposeMail
	Policy   *passwords.Policy // the password policy a reset must meet
	Throttle *throttle.Throttle
	Pages    *templates.Renderer
	Issuer   string
	Secret   []byte // keys the CSRF tokens, as for every page (package page)
	Now      func() time.Time

	pageOnce sync.Once
	pageKit  *page.Kit
}

// Mount registers the pages.
func (h *Pages) Mount(r *mux.Router) {
	r.HandleFunc(page.PathVerifyEmail, h.verifyEmailPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(page.PathVerifyEmail, h.verifyEmailSubmit).Methods(http.MethodPost)
	r.HandleFunc(page.PathForgotPassword, h.forgotPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(page.PathForgotPassword, h.forgotSubmit).Methods(http.MethodPost)
	r.HandleFunc(page.PathResetPassword, h.resetPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(page.PathResetPassword, h.resetSubmit).Methods(http.MethodPost)
}

func (h *Pages) page() *page.Kit {
	h.pageOnce.Do(func() { h.pageKit = &page.Kit{Issuer: h.Issuer, Secret: h.Secret, Pages: h.Pages} })
	return h.pageKit
}

// Store is what the account mail pages need of the store.
type Store interface {
	page.PoolLookup
	EnqueueOutbox(ctx context.Context, kind, target string, payload any, now time.Time) (string, error)
	VerifyEmail(ctx context.Context, ref models.MailTokenRef, now time.Time) (*models.User, error)
	ResetPassword(ctx context.Context, ref models.MailTokenRef, password string, check func(email string) error, now time.Time) (int, error)
}

func (h *Pages) accountMailPage(w http.ResponseWriter, r *http.Request, status int, p templates.AccountMailPage) {
	p.CSRFToken = h.page().CSRFToken(w, r)
	page.LogRender(r, h.Pages.AccountMail(w, status, p))
}

// mailToken is the token of a page's query or form: at most 128 characters.
func mailToken(v string) string {
	if len(v) > 128 {
		return ""
	}
	return v
}

func (h *Pages) verifyEmailPage(w http.ResponseWriter, r *http.Request) {
	tok := mailToken(r.URL.Query().Get("token"))
	if tok == "" {
		h.page().Error(w, r, http.StatusBadRequest, "Link incomplete", "This link lacks its token. Open the link from the mail again, or copy all of it.")
		return
	}
	h.accountMailPage(w, r, http.StatusOK, templates.AccountMailPage{Step: "verify", Action: page.PathVerifyEmail, Token: tok})
}

func (h *Pages) verifyEmailSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.page().ParsePost(w, r) {
		return
	}
	tok := mailToken(r.PostForm.Get("token"))
	u, err := h.Store.VerifyEmail(request.Detached(r).Context(), models.MailTokenRef{Token: tok}, h.Now())
	switch {
	case tok == "" || errors.Is(err, models.ErrMailToken):
		h.accountMailPage(w, r, http.StatusBadRequest, templates.AccountMailPage{Step: "done",
			Message: "This link is invalid, used or expired. Ask the app for a new mail."})
		return
	case err != nil:
		h.page().Fault(w, r, "verify email", err)
		return
	}
	request.Logger(r.Context()).Info("email verified", "user", u.ID)
	h.accountMailPage(w, r, http.StatusOK, templates.AccountMailPage{Step: "done", Message: "Your email address is confirmed.",
		SignInURL: page.LoginURL(u.Pool, "")})
}

func (h *Pages) forgotPage(w http.ResponseWriter, r *http.Request) {
	if h.Mail == nil {
		h.page().Error(w, r, http.StatusNotImplemented, "Password reset is off", "This server sends no mail, so it cannot reset passwords. Ask your administrator.")
		return
	}
	pool, ok := h.page().DirectPool(w, r, h.Store)
	if !ok {
		return
	}
	h.accountMailPage(w, r, http.StatusOK, templates.AccountMailPage{Step: "forgot", Action: page.ForgotURL(h.Mail != nil, pool)})
}

// forgotSubmit answers "check your mail" whether or not the account exists, in the same time: the lookup, token
// and mail happen after the answer (as the token API's forgot does).
func (h *Pages) forgotSubmit(w http.ResponseWriter, r *http.Request) {
	if h.Mail == nil {
		h.page().Error(w, r, http.StatusNotImplemented, "Password reset is off", "This server sends no mail, so it cannot reset passwords. Ask your administrator.")
		return
	}
	if !h.page().ParsePost(w, r) {
		return
	}
	pool, ok := h.page().DirectPool(w, r, h.Store)
	if !ok {
		return
	}
	r = request.Detached(r)
	email := strings.TrimSpace(r.PostForm.Get("email"))
	if email == "" || len(email) > models.MaxEmailLength {
		h.accountMailPage(w, r, http.StatusBadRequest, templates.AccountMailPage{Step: "forgot", Action: page.ForgotURL(h.Mail != nil, pool),
			Error: "Enter the email address of your account."})
		return
	}
	wait, send, err := h.Throttle.ReserveMail(r, models.MailResetPassword, pool, email)
	switch {
	case err != nil:
		h.page().Fault(w, r, "mail throttle", err)
		return
	case wait > 0:
		w.Header().Set("Retry-After", throttle.Seconds(wait))
		h.accountMailPage(w, r, http.StatusTooManyRequests, templates.AccountMailPage{Step: "forgot", Action: page.ForgotURL(h.Mail != nil, pool),
			Email: page.Truncate(email, models.MaxEmailLength), Error: "Too many requests for this address. Try again in " + throttle.Seconds(wait) + " seconds."})
		return
	}
	// The same for any address, known or not, and durable: the outbox's worker looks the account up and mails it
	// (outbox.MailRequests), so the answer tells nothing and a node stopping loses nothing.
	if !send {
		request.Logger(r.Context()).Info("no reset mail", "reason", "this address's mail limit")
	} else if _, err := h.Store.EnqueueOutbox(r.Context(), models.OutboxMailRequest, "",
		models.MailRequest{Purpose: models.MailResetPassword, Pool: pool, Email: email}, h.Now()); err != nil {
		h.page().Fault(w, r, "queue the reset mail request", err)
		return
	}
	h.accountMailPage(w, r, http.StatusOK, templates.AccountMailPage{Step: "sent"})
}

func (h *Pages) resetPage(w http.ResponseWriter, r *http.Request) {
	tok := mailToken(r.URL.Query().Get("token"))
	if tok == "" {
		h.page().Error(w, r, http.StatusBadRequest, "Link incomplete", "This link lacks its token. Open the link from the mail again, or copy all of it.")
		return
	}
	h.accountMailPage(w, r, http.StatusOK, templates.AccountMailPage{Step: "reset", Action: page.PathResetPassword, Token: tok})
}

func (h *Pages) resetSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.page().ParsePost(w, r) {
		return
	}
	tok := mailToken(r.PostForm.Get("token"))
	password := r.PostForm.Get("new_password")
	retry := func(status int, msg string) {
		h.accountMailPage(w, r, status, templates.AccountMailPage{Step: "reset", Action: page.PathResetPassword, Token: tok, Error: msg})
	}
	if password == "" {
		retry(http.StatusBadRequest, "Enter a new password.")
		return
	}
	var weak error
	n, err := h.Store.ResetPassword(request.Detached(r).Context(), models.MailTokenRef{Token: tok}, password, func(email string) error {
		weak = h.Policy.Check(password, email)
		return weak
	}, h.Now())
	switch {
	case weak != nil:
		retry(http.StatusBadRequest, "Choose a stronger password: "+weak.Error())
		return
	case tok == "" || errors.Is(err, models.ErrMailToken):
		h.accountMailPage(w, r, http.StatusBadRequest, templates.AccountMailPage{Step: "done",
			Message: "This link is invalid, used or expired. Ask for a new one."})
		return
	case errors.Is(err, models.ErrInvalid):
		retry(http.StatusBadRequest, "This password cannot be used; choose another.")
		return
	case err != nil:
		h.page().Fault(w, r, "reset password", err)
		return
	}
	request.Logger(r.Context()).Info("password reset", "sessions_ended", n)
	h.accountMailPage(w, r, http.StatusOK, templates.AccountMailPage{Step: "done",
		Message: "Your password is changed. You were signed out everywhere; sign in again with the new password."})
}
