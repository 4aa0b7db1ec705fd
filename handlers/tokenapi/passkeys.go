package tokenapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/passkey"
)

// Passkeys in the token API. The second factor is here (/mfa/passkey/begin, and /mfa/verify taking a
// credential); the passkey family (handlers/passkey) serves enrolment and passwordless sign-in and reaches the
// API only through the exported methods below, so its callers are authenticated and its tokens issued exactly
// as the API's own.

// FreshCaller is the user of r's access token, for a change of their factors: they signed in less than
// grant.FreshSignIn ago, or password is their current one (checked behind the password throttle).
func (h *API) FreshCaller(r *http.Request, password string) (*models.User, error) {
	e, err := h.enroller(r, "", &password)
	if err != nil {
		return nil, err
	}
	return e.user, nil
}

// Caller is the user of r's access token.
func (h *API) Caller(r *http.Request) (*models.User, error) {
	b, err := h.authenticateUser(r, false)
	if err != nil {
		return nil, err
	}
	return b.user, nil
}

// SignInWith is a token-API sign-in by a credential another family checks (a passkey): the client (first-party,
// allowed from the caller's origin), scope and DPoP proof are checked first; then check verifies the credential
// on r (DPoP-bound) for a user of pool, and the answer is the tokens a login gives, recording the amr check
// returns; models.ErrEmailNotVerified from check is answered as a password sign-in's. An error goes to jsonapi.Write.
func (h *API) SignInWith(w http.ResponseWriter, r *http.Request, clientID, scope string, check func(r *http.Request, pool string) (*models.User, []string, error)) error {
	c, err := h.firstPartyClient(r, clientID)
	if err != nil {
		return err
	}
	scopes, err := requestedScopes(c, scope)
	if err != nil {
		return err
	}
	r, tokenType, err := h.withDPoP(w, r)
	if err != nil {
		return err
	}
	u, amr, err := check(r, c.Pool)
	if errors.Is(err, models.ErrEmailNotVerified) {
		request.Logger(r.Context()).Info("api sign-in refused", "reason", "email not verified", "client", c.ID)
		return errEmailNotVerified()
	} else if err != nil {
		return err
	}
	resp, err := h.startSession(r, c, u, scopes, tokenType, amr)
	if err != nil {
		return sessionError(r, err)
	}
	request.Logger(r.Context()).Info("api signed in", "user", u.ID, "client", c.ID, "session", resp.SessionID, "amr", amr)
	jsonapi.Respond(w, http.StatusOK, resp)
	return nil
}

// passkeyBind binds a second-factor assertion to the MFA challenge it answers.
func passkeyBind(mfaToken string) string { return passkey.Bind("api-mfa", mfaToken) }

// passkeyBegin returns the assertion options for the passkeys of an mfa_token's user (POST /mfa/passkey/begin).
func (h *API) passkeyBegin(w http.ResponseWriter, r *http.Request) error {
	if h.Passkeys == nil {
		return jsonapi.New(http.StatusNotFound, jsonapi.NotFound, "Passkeys are not enabled on this server.")
	}
	var body struct {
		MFAToken string `json:"mfa_token"`
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	ch, err := h.Factors.PeekMFAChallenge(r.Context(), body.MFAToken, purposeLogin)
	if errors.Is(err, models.ErrNotFound) {
		return errBadMFAToken()
	} else if err != nil {
		return fmt.Errorf("load mfa challenge: %w", err)
	}
	if _, err := h.firstPartyClient(r, ch.ClientID); err != nil {
		return err
	}
	begun, err := h.Passkeys.BeginSecondFactor(r.Context(), ch.UserID, passkeyBind(body.MFAToken))
	if errors.Is(err, passkey.ErrNoPasskey) {
		return jsonapi.BadRequest("This account has no passkey; send a code instead.")
	} else if err != nil {
		return fmt.Errorf("begin passkey assertion: %w", err)
	}
	jsonapi.Respond(w, http.StatusOK, begun)
	return nil
}

// checkPasskey checks credential as the second factor of challenge token's user; an error is ErrWrongCode for
// an assertion that does not verify (the challenge may be tried again), a client error, or a fault.
func (h *API) checkPasskey(r *http.Request, userID, token string, credential json.RawMessage) ([]string, error) {
	if h.Passkeys == nil {
		return nil, jsonapi.New(http.StatusNotFound, jsonapi.NotFound, "Passkeys are not enabled on this server.")
	}
	_, err := h.Passkeys.FinishSecondFactor(r.Context(), userID, passkeyBind(token), credential)
	if err := passkeyError(err); err != nil {
		return nil, err
	}
	return grant.AMRPasskeyMFA, nil
}

// passkeyError maps a passkey finish's error: one that did not verify is ErrWrongCode.
func passkeyError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, passkey.ErrMalformed), errors.Is(err, passkey.ErrCeremony), errors.Is(err, passkey.ErrRejected):
		return fmt.Errorf("%w: %w", grant.ErrWrongCode, err)
	}
	return err
}

// errPasskey answers an assertion that did not verify.
func errPasskey(err error) error {
	if errors.Is(err, passkey.ErrCeremony) {
		return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidGrant, "This passkey challenge is unknown, expired or already used; begin again.")
	}
	if errors.Is(err, passkey.ErrMalformed) {
		return jsonapi.BadRequest("credential is not a WebAuthn assertion.")
	}
	return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidGrant, "The passkey was not accepted.")
}

// factorKinds are the answers a login challenge of user userID takes: "totp" and "recovery_code" as ever, and
// "webauthn" when the user has a passkey.
func (h *API) factorKinds(r *http.Request, userID string) []string {
	kinds := []string{models.FactorTOTP, "recovery_code"}
	if h.Passkeys == nil {
		return kinds
	}
	factors, err := h.Factors.Factors(r.Context(), userID)
	if err != nil {
		request.Logger(r.Context()).Warn("list factors for the mfa challenge", "error", err)
		return kinds
	}
	for _, f := range factors {
		if f.Kind == models.FactorWebAuthn && f.Active() {
			return append(kinds, models.FactorWebAuthn)
		}
	}
	return kinds
}
