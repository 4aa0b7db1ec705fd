package passkeys

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/passkey"
)

// The token API's passkeys, for apps (SPAs) with a bearer access token: register (begin, finish), list, delete;
// and a passwordless sign-in (begin, finish) that answers with the tokens a login gives. A begin answers
// {"options": {"publicKey": ...}, "challenge_id": ...}: options for navigator.credentials.create or .get; the
// finish takes the resulting PublicKeyCredential as JSON in "credential" (the challenge inside names the
// ceremony).

// optionalBody decodes a JSON body into dst when there is one.
func optionalBody(r *http.Request, dst any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return jsonapi.Decode(r, dst)
}

func (h *Passkeys) apiRegisterBegin(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Password string `json:"password"`
	}
	if err := optionalBody(r, &body); err != nil {
		return err
	}
	u, err := h.API.FreshCaller(r, body.Password)
	if err != nil {
		return err
	}
	if ok, err := h.enrolmentAllowed(r.Context(), u); err != nil {
		return fmt.Errorf("load pool: %w", err)
	} else if !ok {
		return errPoolOff()
	}
	begun, err := h.RP.BeginRegistration(r.Context(), u)
	if e := finishError(err, "registration"); e != nil {
		return e
	} else if err != nil {
		return fmt.Errorf("begin passkey registration: %w", err)
	}
	jsonapi.Respond(w, http.StatusOK, begun)
	return nil
}

func (h *Passkeys) apiRegisterFinish(w http.ResponseWriter, r *http.Request) error {
	r = request.Detached(r) // a ceremony taken must not be lost to a client that went away
	var body struct {
		Credential json.RawMessage `json:"credential"`
		Name       string          `json:"name"`
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	if len(body.Credential) == 0 {
		return jsonapi.BadRequest("credential is required.")
	}
	u, err := h.API.Caller(r)
	if err != nil {
		return err
	}
	f, err := h.RP.FinishRegistration(r.Context(), u, passkeyName(body.Name), body.Credential)
	if e := finishError(err, "registration"); e != nil {
		return e
	} else if err != nil {
		return fmt.Errorf("finish passkey registration: %w", err)
	}
	request.Logger(r.Context()).Info("passkey added", "user", u.ID, "factor", f.ID)
	jsonapi.Respond(w, http.StatusCreated, f)
	return nil
}

func (h *Passkeys) apiList(w http.ResponseWriter, r *http.Request) error {
	u, err := h.API.Caller(r)
	if err != nil {
		return err
	}
	factors, err := h.Store.Factors(r.Context(), u.ID)
	if err != nil {
		return fmt.Errorf("list passkeys: %w", err)
	}
	list := passkeysOf(factors)
	if list == nil {
		list = []models.Factor{}
	}
	jsonapi.Respond(w, http.StatusOK, map[string]any{"passkeys": list})
	return nil
}

func (h *Passkeys) apiDelete(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Password string `json:"password"`
	}
	if err := optionalBody(r, &body); err != nil {
		return err
	}
	u, err := h.API.FreshCaller(r, body.Password)
	if err != nil {
		return err
	}
	if err := h.remove(r, u.ID, mux.Vars(r)["id"]); errors.Is(err, models.ErrNotFound) {
		return jsonapi.New(http.StatusNotFound, jsonapi.NotFound, "No such passkey.")
	} else if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// remove removes passkey id of user userID: ErrNotFound unless it is one of the user's passkeys (their other
// factors go through the MFA endpoints, which ask for a code).
func (h *Passkeys) remove(r *http.Request, userID, id string) error {
	factors, err := h.Store.Factors(r.Context(), userID)
	if err != nil {
		return fmt.Errorf("list passkeys: %w", err)
	}
	for _, f := range passkeysOf(factors) {
		if f.ID == id {
			if err := h.Store.DeleteFactor(r.Context(), userID, id); err != nil {
				return fmt.Errorf("remove passkey: %w", err)
			}
			request.Logger(r.Context()).Info("passkey removed", "user", userID, "factor", id)
			return nil
		}
	}
	return models.ErrNotFound
}

// beginSignIn begins a passwordless sign-in bound to bind, counted against the caller's address first.
func (h *Passkeys) beginSignIn(r *http.Request, bind string) (*passkey.Begun, error) {
	if h.Throttle != nil {
		wait, err := h.Throttle.ReservePush(r, "passkey-begin", throttle.PasskeyBeginPolicy)
		if err := throttle.Refusal(r, wait, err); err != nil {
			return nil, err
		}
	}
	begun, err := h.RP.BeginSignIn(r.Context(), bind)
	if err != nil {
		return nil, fmt.Errorf("begin passkey sign-in: %w", err)
	}
	return begun, nil
}

func apiSignInBind(clientID string) string { return passkey.Bind("api-sign-in", clientID) }

func (h *Passkeys) apiSignInBegin(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		ClientID string `json:"client_id"`
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	if body.ClientID == "" || len(body.ClientID) > 256 {
		return jsonapi.BadRequest("client_id is required.")
	}
	begun, err := h.beginSignIn(r, apiSignInBind(body.ClientID))
	if err != nil {
		return err
	}
	jsonapi.Respond(w, http.StatusOK, begun)
	return nil
}

func (h *Passkeys) apiSignInFinish(w http.ResponseWriter, r *http.Request) error {
	r = request.Detached(r)
	var body struct {
		ClientID   string          `json:"client_id"`
		Scope      string          `json:"scope"`
		Credential json.RawMessage `json:"credential"`
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	if len(body.Credential) == 0 {
		return jsonapi.BadRequest("credential is required.")
	}
	return h.API.SignInWith(w, r, body.ClientID, body.Scope, func(r *http.Request, pool string) (*models.User, []string, error) {
		u, err := h.checkSignIn(r, pool, apiSignInBind(body.ClientID), body.Credential)
		if e := finishError(err, "assertion"); e != nil {
			return nil, nil, e
		} else if err != nil {
			return nil, nil, err
		}
		return u, grant.AMRPasskey, nil
	})
}

// checkSignIn checks a passwordless sign-in's assertion, behind the throttle, for a user of pool: a passkey of
// another pool's user is refused as one that does not verify.
func (h *Passkeys) checkSignIn(r *http.Request, pool, bind string, credential []byte) (*models.User, error) {
	attempt, wait, err := h.Throttle.ReservePasskey(r)
	if err := throttle.Refusal(r, wait, err); err != nil {
		return nil, err
	}
	u, err := h.RP.FinishSignIn(attempt.Context(), bind, credential)
	switch {
	case err == nil && u.Pool != pool:
		request.Logger(r.Context()).Info("passkey sign-in refused", "reason", "user of another pool", "user", u.ID, "pool", pool)
		return nil, passkey.ErrRejected
	case err == nil:
		attempt.Succeeded()
		return u, nil
	case errors.Is(err, models.ErrEmailNotVerified):
		// The passkey was right: say what is missing (no session), and count it as a success, as for a password.
		attempt.Succeeded()
		return nil, err
	case errors.Is(err, passkey.ErrMalformed), errors.Is(err, passkey.ErrCeremony), errors.Is(err, passkey.ErrRejected):
		return nil, err
	}
	attempt.Void()
	return nil, err
}

// passkeyName is a passkey's name as given (valid UTF-8 without control characters, at most 64 characters), or
// a default.
func passkeyName(name string) string {
	name = strings.TrimSpace(strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return -1
		}
		return c
	}, strings.ToValidUTF8(name, "")))
	if r := []rune(name); len(r) > 64 {
		name = string(r[:64])
	}
	if name == "" {
		return "Passkey"
	}
	return name
}
