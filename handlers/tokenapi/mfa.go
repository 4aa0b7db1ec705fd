package tokenapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/models"
)

// Two-factor sign-in (TOTP) in the token API. A login whose password is right but whose user has a factor is
// answered 401 mfa_required with a short-lived, single-use mfa_token; POST /mfa/verify with that token and a
// code (or a recovery code) finishes it with the very tokens a login gives. In a pool that requires MFA, a user
// with no factor is answered 401 mfa_enrollment_required with an mfa_token that can only enrol: /mfa/totp/enroll
// and /mfa/totp/confirm take it in place of an access token, and the confirmation signs the user in.

// factorStore is what the MFA endpoints read and write.
type factorStore interface {
	grant.FactorStore
	CreatePendingFactor(ctx context.Context, f models.Factor) error
	ConfirmFactor(ctx context.Context, userID, id string, step int64, recoveryHashes []string) error
	DeleteFactor(ctx context.Context, userID, id string) error
	RecoveryCodesLeft(ctx context.Context, userID string) (int, error)
	CreateMFAChallenge(ctx context.Context, c models.MFAChallenge, ttl time.Duration) (string, error)
	PeekMFAChallenge(ctx context.Context, token, purpose string) (*models.MFAChallenge, error)
	ReserveMFAChallenge(ctx context.Context, token, purpose string) (*models.MFAChallenge, error)
	ReleaseMFAChallenge(ctx context.Context, token string) error
	CheckedUser(ctx context.Context, id, stamp string) (*models.User, error)
}

// Challenge purposes.
const (
	purposeLogin  = "login"
	purposeEnroll = "enroll"
)

// Error codes of the MFA endpoints.
const (
	codeMFARequired           jsonapi.Code = "mfa_required"
	codeMFAEnrollmentRequired jsonapi.Code = "mfa_enrollment_required"
	codeMFADisabled           jsonapi.Code = "mfa_disabled"
	codeFactorExists          jsonapi.Code = "factor_exists"
)

// challengeData is what a challenge keeps to finish the sign-in: the scopes asked for, and the stamp of the
// password that was checked (a password change meanwhile refuses the second step).
type challengeData struct {
	Scopes []string `json:"scopes"`
	Stamp  string   `json:"stamp"`
	// OTP: the first factor was a mailed one-time code (otp.go), not the password; it shows in the amr.
	OTP bool `json:"otp,omitempty"`
}

// mfaChallengeResponse is the 401 body of a login that needs a second factor: an OAuth-shaped error (so clients
// that treat any non-2xx as "not signed in" stay safe) carrying what the next step needs.
type mfaChallengeResponse struct {
	Error       jsonapi.Code `json:"error"`
	Description string       `json:"error_description"`
	MFAToken    string       `json:"mfa_token"`
	ExpiresIn   int64        `json:"expires_in"`
	Factors     []string     `json:"factors"`
}

// challengeLogin answers a login whose password was right but that needs a second factor (demand).
// otp says the first factor was a mailed code rather than the password.
func (h *API) challengeLogin(w http.ResponseWriter, r *http.Request, c *models.Client, u *models.User, scopes []string, demand grant.MFADemand, otp bool) error {
	data, _ := json.Marshal(challengeData{Scopes: scopes, Stamp: u.CredentialStamp(), OTP: otp})
	purpose, code, factors, desc := purposeLogin, codeMFARequired, h.factorKinds(r, u.ID),
		"A second factor is required: send a code with the mfa_token to /api/v1/auth/mfa/verify."
	if demand == grant.MFAEnroll {
		purpose, code, factors, desc = purposeEnroll, codeMFAEnrollmentRequired, []string{models.FactorTOTP},
			"This app requires two-factor sign-in: enrol with the mfa_token at /api/v1/auth/mfa/totp/enroll."
	}
	token, err := h.Factors.CreateMFAChallenge(r.Context(), models.MFAChallenge{UserID: u.ID, ClientID: c.ID, Purpose: purpose, Data: string(data)}, grant.MFATTL)
	if err != nil {
		return fmt.Errorf("create mfa challenge: %w", err)
	}
	request.Logger(r.Context()).Info("api sign-in needs a second factor", "user", u.ID, "client", c.ID, "purpose", purpose)
	jsonapi.Respond(w, http.StatusUnauthorized, mfaChallengeResponse{Error: code, Description: desc, MFAToken: token,
		ExpiresIn: int64(grant.MFATTL / time.Second), Factors: factors})
	return nil
}

func errBadMFAToken() error {
	return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidGrant, "The mfa_token is invalid, expired or already used; sign in again.")
}

func errWrongCode() error {
	return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidGrant, "Incorrect code.")
}

type verifyBody struct {
	MFAToken     string `json:"mfa_token"`
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
	// Credential is a passkey's assertion (navigator.credentials.get's PublicKeyCredential as JSON), in place of
	// a code; its options come from /mfa/passkey/begin.
	Credential json.RawMessage `json:"credential"`
}

// oneCode checks a body names exactly one of a code and a recovery code.
func oneCode(code, recovery string) error {
	if (code == "") == (recovery == "") || len(code) > 64 || len(recovery) > 64 {
		return jsonapi.BadRequest("Send either code or recovery_code.")
	}
	return nil
}

// reserveCode reserves one try at the user's second factor (throttle.ReserveCode).
func (h *API) reserveCode(r *http.Request, userID, challenge string) (*throttle.Attempt, error) {
	attempt, wait, err := h.Throttle.ReserveCode(r, userID, challenge)
	if err := throttle.Refusal(r, wait, err); err != nil {
		return nil, err
	}
	return attempt, nil
}

// verify finishes a login with its second factor: the try is reserved (per IP, user and challenge), the challenge
// reserved for this request alone, then the code checked; a wrong code gives the challenge back for another try,
// a right one keeps it used and signs in exactly as a login does.
func (h *API) verify(w http.ResponseWriter, r *http.Request) error {
	r = request.Detached(r)
	var body verifyBody
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	if body.MFAToken == "" {
		return jsonapi.BadRequest("mfa_token is required.")
	}
	if len(body.Credential) > 0 {
		if body.Code != "" || body.RecoveryCode != "" {
			return jsonapi.BadRequest("Send one of code, recovery_code and credential.")
		}
	} else if err := oneCode(body.Code, body.RecoveryCode); err != nil {
		return err
	}
	r, tokenType, err := h.withDPoP(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	ch, err := h.Factors.PeekMFAChallenge(ctx, body.MFAToken, purposeLogin)
	if errors.Is(err, models.ErrNotFound) {
		return errBadMFAToken()
	} else if err != nil {
		return fmt.Errorf("load mfa challenge: %w", err)
	}
	c, err := h.firstPartyClient(r, ch.ClientID)
	if err != nil {
		return err
	}
	attempt, err := h.reserveCode(r, ch.UserID, body.MFAToken)
	if err != nil {
		return err
	}
	ctx = attempt.Context()
	if _, err := h.Factors.ReserveMFAChallenge(ctx, body.MFAToken, purposeLogin); errors.Is(err, models.ErrNotFound) {
		attempt.Void()
		return errBadMFAToken()
	} else if err != nil {
		attempt.Void()
		return fmt.Errorf("reserve mfa challenge: %w", err)
	}
	var amr []string
	if len(body.Credential) > 0 {
		amr, err = h.checkPasskey(r.WithContext(ctx), ch.UserID, body.MFAToken, body.Credential)
	} else {
		amr, err = grant.CheckCode(ctx, h.Factors, h.Sealer, ch.UserID, body.Code, body.RecoveryCode, h.Now())
	}
	if err != nil {
		if relErr := h.Factors.ReleaseMFAChallenge(ctx, body.MFAToken); relErr != nil {
			request.Logger(ctx).Error("release mfa challenge", "error", relErr)
		}
		if errors.Is(err, grant.ErrWrongCode) {
			request.Logger(ctx).Info("api second factor failed", "user", ch.UserID, "client", c.ID)
			if len(body.Credential) > 0 {
				return errPasskey(err)
			}
			return errWrongCode()
		}
		var je *jsonapi.Error
		if errors.As(err, &je) {
			attempt.Void()
			return err
		}
		attempt.Void()
		return fmt.Errorf("check code: %w", err)
	}
	attempt.Succeeded()
	return h.finishSignIn(w, r, c, ch, amr, tokenType, nil)
}

// finishSignIn issues the tokens of a challenge whose second factor was just checked (kept used), with amr.
func (h *API) finishSignIn(w http.ResponseWriter, r *http.Request, c *models.Client, ch *models.MFAChallenge, amr []string, tokenType string, recovery []string) error {
	var data challengeData
	if err := json.Unmarshal([]byte(ch.Data), &data); err != nil {
		return fmt.Errorf("read mfa challenge: %w", err)
	}
	u, err := h.Factors.CheckedUser(r.Context(), ch.UserID, data.Stamp)
	switch {
	case errors.Is(err, models.ErrInvalidCredentials), errors.Is(err, models.ErrUserDisabled):
		request.Logger(r.Context()).Info("api second step refused", "reason", "password changed or account disabled since the check", "user", ch.UserID)
		return errWrongPassword()
	case err != nil:
		return fmt.Errorf("load user: %w", err)
	}
	if data.OTP {
		amr = otpFirst(amr)
	}
	resp, err := h.startSession(r, c, u, data.Scopes, tokenType, amr)
	if err != nil {
		return sessionError(r, err)
	}
	request.Logger(r.Context()).Info("api signed in", "user", u.ID, "client", c.ID, "session", resp.SessionID, "amr", amr)
	if recovery != nil {
		jsonapi.Respond(w, http.StatusOK, struct {
			*tokenResponse
			RecoveryCodes []string `json:"recovery_codes"`
		}{resp, recovery})
		return nil
	}
	jsonapi.Respond(w, http.StatusOK, resp)
	return nil
}

// enroller is who enrols: the caller of an access token, or the holder of an enrolment mfa_token.
type enroller struct {
	user      *models.User
	challenge *models.MFAChallenge // nil with an access token
}

// With an access token, enrolment (not its confirmation, which needs the new factor's code) also needs the
// current password, or a recent sign-in (grant.SignedInRecently; a user who signs in through another provider has
// no password here): a stolen access token alone must not add a factor, which would lock the owner out behind the
// thief's authenticator.
func (h *API) enroller(r *http.Request, mfaToken string, password *string) (*enroller, error) {
	if mfaToken == "" {
		b, err := h.authenticateUser(r, password != nil)
		if err != nil {
			return nil, err
		}
		switch {
		case password == nil:
		case *password != "":
			if _, _, err := h.checkOwnPassword(r, b, *password); err != nil {
				return nil, err
			}
		case !grant.SignedInRecently(b.session.AuthTime, h.Now()):
			return nil, jsonapi.BadRequest("Adding a second factor needs password (the current one), or a sign-in less than 5 minutes old.")
		}
		return &enroller{user: b.user}, nil
	}
	ch, err := h.Factors.PeekMFAChallenge(r.Context(), mfaToken, purposeEnroll)
	if errors.Is(err, models.ErrNotFound) {
		return nil, errBadMFAToken()
	} else if err != nil {
		return nil, fmt.Errorf("load mfa challenge: %w", err)
	}
	u, err := h.Store.UserByID(r.Context(), ch.UserID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, errBadMFAToken()
	} else if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	return &enroller{user: u, challenge: ch}, nil
}

type enrollResponse struct {
	FactorID string `json:"factor_id"`
	URI      string `json:"otpauth_uri"`
	Secret   string `json:"secret"` // base32, for typing into an app that cannot scan
	QRCode   string `json:"qr_code"`
}

// enroll starts a TOTP enrolment: a new secret, sealed, in a pending factor; the app shows the QR code.
func (h *API) enroll(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		MFAToken string `json:"mfa_token"`
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if r.ContentLength != 0 {
		if err := jsonapi.Decode(r, &body); err != nil {
			return err
		}
	}
	e, err := h.enroller(r, body.MFAToken, &body.Password)
	if err != nil {
		return err
	}
	ctx := r.Context()
	pool, err := h.Store.GetPool(ctx, e.user.Pool)
	if err != nil {
		return fmt.Errorf("load pool: %w", err)
	}
	if pool.MFA == models.MFAOff {
		return jsonapi.New(http.StatusForbidden, codeMFADisabled, "Two-factor sign-in is turned off for this app.")
	}
	id, err := models.NewFactorID()
	if err != nil {
		return fmt.Errorf("new factor id: %w", err)
	}
	secret := mfa.NewSecret()
	sealed, err := h.Sealer.Seal(id, secret)
	if err != nil {
		return err
	}
	name := truncate(body.Name, 64)
	if name == "" {
		name = "Authenticator app"
	}
	err = h.Factors.CreatePendingFactor(ctx, models.Factor{ID: id, UserID: e.user.ID, Kind: models.FactorTOTP, Name: name, SealedSecret: sealed})
	switch {
	case errors.Is(err, models.ErrFactorExists):
		return jsonapi.New(http.StatusConflict, codeFactorExists, "An authenticator app is already set up; remove it first.")
	case err != nil:
		return fmt.Errorf("create factor: %w", err)
	}
	uri := mfa.URI(secret, h.MFAIssuer, e.user.Email)
	qr, err := mfa.QRDataURL(uri)
	if err != nil {
		return err
	}
	jsonapi.Respond(w, http.StatusCreated, enrollResponse{FactorID: id, URI: uri, Secret: mfa.EncodeSecret(secret), QRCode: qr})
	return nil
}

// confirm activates the pending TOTP factor with its first code and returns the recovery codes, once. With an
// enrolment mfa_token it also signs the user in (the tokens a login gives, with the recovery codes).
func (h *API) confirm(w http.ResponseWriter, r *http.Request) error {
	r = request.Detached(r)
	var body struct {
		MFAToken string `json:"mfa_token"`
		Code     string `json:"code"`
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	if err := oneCode(body.Code, ""); err != nil {
		return jsonapi.BadRequest("code is required.")
	}
	r, tokenType, err := h.withDPoP(w, r)
	if err != nil {
		return err
	}
	e, err := h.enroller(r, body.MFAToken, nil)
	if err != nil {
		return err
	}
	var client *models.Client
	if e.challenge != nil {
		if client, err = h.firstPartyClient(r, e.challenge.ClientID); err != nil {
			return err
		}
	}
	attempt, err := h.reserveCode(r, e.user.ID, body.MFAToken)
	if err != nil {
		return err
	}
	ctx := attempt.Context()
	var pending *models.Factor
	factors, err := h.Factors.Factors(ctx, e.user.ID)
	if err != nil {
		attempt.Void()
		return fmt.Errorf("load factors: %w", err)
	}
	for i := range factors {
		if factors[i].Kind == models.FactorTOTP && !factors[i].Active() {
			pending = &factors[i]
		}
	}
	if pending == nil {
		attempt.Void()
		return jsonapi.New(http.StatusConflict, jsonapi.InvalidRequest, "No enrolment is waiting for a code; start one at /api/v1/auth/mfa/totp/enroll.")
	}
	secret, err := h.Sealer.Open(pending.ID, pending.SealedSecret)
	if err != nil {
		attempt.Void()
		return err
	}
	step, ok := mfa.Match(secret, body.Code, h.Now())
	if !ok {
		return errWrongCode()
	}
	if e.challenge != nil {
		// The enrolment token is single-use: reserved before the factor goes live, kept used after.
		if _, err := h.Factors.ReserveMFAChallenge(ctx, body.MFAToken, purposeEnroll); errors.Is(err, models.ErrNotFound) {
			return errBadMFAToken()
		} else if err != nil {
			return fmt.Errorf("reserve mfa challenge: %w", err)
		}
	}
	codes := mfa.NewRecoveryCodes()
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = mfa.HashRecoveryCode(e.user.ID, c)
	}
	if err := h.Factors.ConfirmFactor(ctx, e.user.ID, pending.ID, step, hashes); errors.Is(err, models.ErrNotFound) {
		return jsonapi.New(http.StatusConflict, jsonapi.InvalidRequest, "This enrolment was replaced or already confirmed.")
	} else if err != nil {
		return fmt.Errorf("confirm factor: %w", err)
	}
	attempt.Succeeded()
	request.Logger(ctx).Info("mfa factor enrolled", "user", e.user.ID, "factor", pending.ID)
	if e.challenge != nil {
		return h.finishSignIn(w, r, client, e.challenge, grant.AMRTOTP, tokenType, codes)
	}
	jsonapi.Respond(w, http.StatusOK, map[string]any{"factor_id": pending.ID, "recovery_codes": codes})
	return nil
}

// factors lists the caller's factors (GET).
func (h *API) factors(w http.ResponseWriter, r *http.Request) error {
	b, err := h.authenticateUser(r, false)
	if err != nil {
		return err
	}
	list, err := h.Factors.Factors(r.Context(), b.user.ID)
	if err != nil {
		return fmt.Errorf("list factors: %w", err)
	}
	left, err := h.Factors.RecoveryCodesLeft(r.Context(), b.user.ID)
	if err != nil {
		return err
	}
	jsonapi.Respond(w, http.StatusOK, map[string]any{"factors": list, "recovery_codes_left": left})
	return nil
}

// removeFactor removes one of the caller's factors. It takes a fresh code (a current TOTP code or a recovery
// code) in the body: a stolen access token alone must not be able to turn two-factor sign-in off.
func (h *API) removeFactor(w http.ResponseWriter, r *http.Request) error {
	r = request.Detached(r)
	b, err := h.authenticateUser(r, false)
	if err != nil {
		return err
	}
	var body struct {
		Code         string `json:"code"`
		RecoveryCode string `json:"recovery_code"`
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	if err := oneCode(body.Code, body.RecoveryCode); err != nil {
		return err
	}
	id := mux.Vars(r)["id"]
	attempt, err := h.reserveCode(r, b.user.ID, "")
	if err != nil {
		return err
	}
	ctx := attempt.Context()
	if _, err := grant.CheckCode(ctx, h.Factors, h.Sealer, b.user.ID, body.Code, body.RecoveryCode, h.Now()); errors.Is(err, grant.ErrWrongCode) {
		return errWrongCode()
	} else if err != nil {
		attempt.Void()
		return fmt.Errorf("check code: %w", err)
	}
	attempt.Succeeded()
	if err := h.Factors.DeleteFactor(ctx, b.user.ID, id); errors.Is(err, models.ErrNotFound) {
		return jsonapi.New(http.StatusNotFound, jsonapi.NotFound, "No such factor.")
	} else if err != nil {
		return fmt.Errorf("delete factor: %w", err)
	}
	request.Logger(ctx).Info("mfa factor removed", "user", b.user.ID, "factor", id)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
