package tokenapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
)

// Email verification, password reset and passwordless sign-in by mail. A request for a mail is queued in the
// durable outbox (requestMail); the outbox worker issues the token and queues the mail in one transaction
// (models.SendMailToken), and delivers it; no request waits for SMTP.

// errMailNotConfigured answers a mail feature on a server without LATCHKEY_SMTP_URL.
func errMailNotConfigured() error {
	return jsonapi.New(http.StatusNotImplemented, jsonapi.MailNotConfigured, "This server sends no mail (LATCHKEY_SMTP_URL is not set).")
}

func errMailToken() error {
	return jsonapi.New(http.StatusBadRequest, jsonapi.InvalidMailToken, "The link or code is invalid, used or expired; ask for a new mail.")
}

// errEmailNotVerified answers the right password of an account whose pool requires a verified email.
func errEmailNotVerified() error {
	return jsonapi.New(http.StatusForbidden, jsonapi.EmailNotVerified,
		"Verify your email address first: open the link or enter the code we sent; POST "+Prefix+"/email/resend sends a new one.")
}

// mailRequestBody is a resend, forgot or otp/start request.
type mailRequestBody struct {
	ClientID string `json:"client_id"`
	Email    string `json:"email"`
}

// mailAccepted is the one answer to a resend or forgot: the same whether or not the account exists.
type mailAccepted struct {
	Status string `json:"status"`
}

func (h *API) resend(w http.ResponseWriter, r *http.Request) error {
	return h.requestMail(w, r, models.MailVerifyEmail)
}

func (h *API) forgot(w http.ResponseWriter, r *http.Request) error {
	return h.requestMail(w, r, models.MailResetPassword)
}

// requestMail answers 202 whether or not the account exists, and in the same time: the request itself does
// only what is the same for every address (the client, the throttle, one outbox row: models.OutboxMailRequest);
// looking the account up, issuing the token, rendering and queueing the mail are the outbox worker's, so a node
// that stops after answering loses nothing.
func (h *API) requestMail(w http.ResponseWriter, r *http.Request, purpose string) error {
	r = request.Detached(r)
	var body mailRequestBody
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	if h.Mail == nil {
		return errMailNotConfigured()
	}
	c, err := h.firstPartyClient(r, body.ClientID)
	if err != nil {
		return err
	}
	email := strings.TrimSpace(body.Email)
	if email == "" || len(email) > models.MaxEmailLength {
		return jsonapi.BadRequest("email is required.")
	}
	if purpose == models.MailSignIn {
		if err := h.passwordlessPool(r, c); err != nil {
			return err
		}
	}
	wait, send, err := h.Throttle.ReserveMail(r, purpose, c.Pool, email)
	if err := throttle.Refusal(r, wait, err); err != nil {
		return err
	}
	if !send {
		request.Logger(r.Context()).Info("no mail", "purpose", purpose, "reason", "this address's mail limit", "client", c.ID)
	} else {
		req := models.MailRequest{Purpose: purpose, Pool: c.Pool, Email: email, ClientID: c.ID}
		if _, err := h.Store.EnqueueOutbox(r.Context(), models.OutboxMailRequest, "", req, h.Now()); err != nil {
			return fmt.Errorf("queue mail request: %w", err)
		}
		request.Logger(r.Context()).Info("mail requested", "purpose", purpose, "client", c.ID)
	}
	jsonapi.Respond(w, http.StatusAccepted, mailAccepted{Status: "If an account with this email exists, a mail is on its way."})
	return nil
}

// tokenRefBody names a mail token: token, or client_id + email + code.
type tokenRefBody struct {
	Token       string `json:"token"`
	ClientID    string `json:"client_id"`
	Email       string `json:"email"`
	Code        string `json:"code"`
	NewPassword string `json:"new_password"`
}

// tokenRef reads which mail token a request names. A typed code is counted before it is checked (per account
// and per IP, throttle.ReserveMailCode): the guess is given back once the code proves right (the returned func).
func (h *API) tokenRef(r *http.Request, b tokenRefBody) (models.MailTokenRef, func(), error) {
	right := func() {}
	if b.Token != "" {
		if b.Code != "" || b.Email != "" {
			return models.MailTokenRef{}, right, jsonapi.BadRequest("Send either token, or client_id, email and code.")
		}
		return models.MailTokenRef{Token: b.Token}, right, nil
	}
	if b.Code == "" || b.Email == "" {
		return models.MailTokenRef{}, right, jsonapi.BadRequest("Send either token, or client_id, email and code.")
	}
	c, err := h.firstPartyClient(r, b.ClientID)
	if err != nil {
		return models.MailTokenRef{}, right, err
	}
	guess, wait, err := h.Throttle.ReserveMailCode(r, c.Pool, b.Email)
	switch {
	case err != nil:
		return models.MailTokenRef{}, right, fmt.Errorf("reserve a code guess: %w", err)
	case wait > 0:
		return models.MailTokenRef{}, right, jsonapi.New(http.StatusTooManyRequests, jsonapi.TooManyRequests,
			"Too many codes tried for this address. Try again in "+throttle.Seconds(wait)+" seconds, or use the link in the mail.").
			WithHeader("Retry-After", throttle.Seconds(wait))
	}
	return models.MailTokenRef{Pool: c.Pool, Email: b.Email, Code: strings.TrimSpace(b.Code)}, guess.Right, nil
}

func (h *API) verifyEmail(w http.ResponseWriter, r *http.Request) error {
	r = request.Detached(r)
	var body tokenRefBody
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	if body.NewPassword != "" {
		return jsonapi.BadRequest("new_password is not a field of email verification.")
	}
	ref, right, err := h.tokenRef(r, body)
	if err != nil {
		return err
	}
	u, err := h.Store.VerifyEmail(r.Context(), ref, h.Now())
	switch {
	case errors.Is(err, models.ErrMailToken):
		return errMailToken()
	case err != nil:
		return fmt.Errorf("verify email: %w", err)
	}
	right()
	request.Logger(r.Context()).Info("email verified", "user", u.ID)
	user := jsonapi.UserOf(u)
	jsonapi.Respond(w, http.StatusOK, map[string]any{"email_verified": true, "user": user})
	return nil
}

func (h *API) resetPassword(w http.ResponseWriter, r *http.Request) error {
	r = request.Detached(r)
	var body tokenRefBody
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	if body.NewPassword == "" {
		return jsonapi.BadRequest("new_password is required.")
	}
	ref, right, err := h.tokenRef(r, body)
	if err != nil {
		return err
	}
	var weak error
	n, err := h.Store.ResetPassword(r.Context(), ref, body.NewPassword, func(email string) error {
		if err := h.Policy.Check(body.NewPassword, email); err != nil {
			weak = err
			return err
		}
		return nil
	}, h.Now())
	switch {
	case weak != nil:
		return weakPassword(weak)
	case errors.Is(err, models.ErrMailToken):
		return errMailToken()
	case errors.Is(err, models.ErrInvalid):
		return jsonapi.BadRequest(strings.TrimPrefix(err.Error(), "reset password: invalid: "))
	case err != nil:
		return fmt.Errorf("reset password: %w", err)
	}
	right()
	request.Logger(r.Context()).Info("password reset", "sessions_ended", n)
	jsonapi.Respond(w, http.StatusOK, map[string]any{"password_reset": true, "sessions_ended": n})
	return nil
}
