package tokenapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
)

// Passwordless sign-in with one-time codes, for pools with PasswordlessCodes. POST /otp/start mails an existing
// user a 6-digit code and, when the client has a MagicLinkURL, a link to that page of the app with ?token=...;
// POST /otp/verify takes the code (with client_id and email) or the link's token (with client_id) and answers
// exactly as a login: tokens, or mfa_required for a user with a second factor (the mailed code stands in for the
// password, never for the second factor). The code is a mail token of purpose sign_in (models/mail_tokens.go):
// single use, 10 minutes, 5 guesses. Nobody is signed up this way: an unknown address gets no mail.

// codeOTPDisabled answers a client whose pool does not allow passwordless codes.
const codeOTPDisabled jsonapi.Code = "passwordless_disabled"

func errOTPDisabled() error {
	return jsonapi.New(http.StatusForbidden, codeOTPDisabled, "Sign-in with emailed codes is not enabled for this app.")
}

// errOTP is the one answer to a wrong, used, expired or spent code or link, or a disabled account.
func errOTP() error {
	return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidGrant, "The code or link is invalid, used or expired; ask for a new one.")
}

// AMROTP is the amr of a sign-in by a mailed one-time code (RFC 8176 §2: "otp").
var AMROTP = []string{"otp"}

// otpFirst is a second factor's amr after a mailed code instead of the password: "pwd" gives way to "otp".
func otpFirst(amr []string) []string {
	out := []string{"otp"}
	for _, m := range amr {
		if m != "pwd" && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// passwordlessPool checks that c's pool allows passwordless codes.
func (h *API) passwordlessPool(r *http.Request, c *models.Client) error {
	pool, err := h.Store.GetPool(r.Context(), c.Pool)
	if err != nil {
		return fmt.Errorf("load pool: %w", err)
	}
	if !pool.PasswordlessCodes {
		return errOTPDisabled()
	}
	return nil
}

// otpStart mails a sign-in code: like a forgotten password's mail, the answer is 202 whatever the address, and
// in the same time (requestMail); only what is the same for every address runs before it.
func (h *API) otpStart(w http.ResponseWriter, r *http.Request) error {
	return h.requestMail(w, r, models.MailSignIn)
}

type otpVerifyBody struct {
	ClientID string `json:"client_id"`
	Email    string `json:"email"`
	Code     string `json:"code"`
	Token    string `json:"token"`
	Scope    string `json:"scope"`
}

// otpVerify signs in with a mailed code or link token. The try is reserved before the code is looked up: a code
// per IP and per address (the account's count, as for a password), a link token per IP; the code itself allows
// 5 guesses, counted in its row, and is used by exactly one request.
func (h *API) otpVerify(w http.ResponseWriter, r *http.Request) error {
	r = request.Detached(r)
	var body otpVerifyBody
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	byToken := body.Token != ""
	if byToken == (body.Code != "" || body.Email != "") || (!byToken && (body.Code == "" || body.Email == "")) {
		return jsonapi.BadRequest("Send client_id with either token, or email and code.")
	}
	if len(body.Token) > 256 || len(body.Email) > models.MaxEmailLength || len(body.Code) > 64 {
		return errOTP()
	}
	c, err := h.firstPartyClient(r, body.ClientID)
	if err != nil {
		return err
	}
	r, tokenType, err := h.withDPoP(w, r)
	if err != nil {
		return err
	}
	scopes, err := requestedScopes(c, body.Scope)
	if err != nil {
		return err
	}
	if err := h.passwordlessPool(r, c); err != nil {
		return err
	}
	ref := models.MailTokenRef{Pool: c.Pool, Token: body.Token}
	var attempt *throttle.Attempt
	var guess *throttle.Guess
	if byToken {
		g, d, err := h.Throttle.ReserveGuess(r, "otp-link", throttle.DefaultUserCodePolicy)
		if err := throttle.Refusal(r, d, err); err != nil {
			return err
		}
		guess = g
	} else {
		ref.Email, ref.Code = strings.TrimSpace(body.Email), strings.TrimSpace(body.Code)
		a, d, err := h.Throttle.Reserve(r, c.Pool, ref.Email, "")
		if err := throttle.Refusal(r, d, err); err != nil {
			return err
		}
		attempt = a
	}
	ctx := r.Context()
	u, err := h.Store.SignInWithMailToken(ctx, ref, h.Now())
	switch {
	case errors.Is(err, models.ErrMailToken):
		request.Logger(ctx).Info("api otp sign-in failed", "reason", "invalid, used or expired code or link", "client", c.ID)
		return errOTP()
	case errors.Is(err, models.ErrUserDisabled):
		request.Logger(ctx).Info("api otp sign-in failed", "reason", "account disabled", "user", u.ID, "client", c.ID)
		return errOTP()
	case err != nil:
		if attempt != nil {
			attempt.Void()
		}
		return fmt.Errorf("sign in with code: %w", err)
	}
	// The code was right and is used.
	if attempt != nil {
		attempt.Succeeded()
	} else {
		guess.Right()
	}
	demand, err := grant.SecondFactor(ctx, h.Factors, u)
	if err != nil {
		return fmt.Errorf("second factor: %w", err)
	}
	if demand != grant.MFANone {
		return h.challengeLogin(w, r, c, u, scopes, demand, true)
	}
	resp, err := h.startSession(r, c, u, scopes, tokenType, AMROTP)
	if err != nil {
		return sessionError(r, err)
	}
	request.Logger(ctx).Info("api signed in", "user", u.ID, "client", c.ID, "session", resp.SessionID, "amr", AMROTP)
	jsonapi.Respond(w, http.StatusOK, resp)
	return nil
}
