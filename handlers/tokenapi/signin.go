package tokenapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/passwords"
	"github.com/latchkey/latchkey/provider"
)

type tokenResponse struct {
	AccessToken  string        `json:"access_token"`
	RefreshToken string        `json:"refresh_token,omitempty"`
	IDToken      string        `json:"id_token,omitempty"`
	TokenType    string        `json:"token_type"`
	ExpiresIn    int64         `json:"expires_in"`
	ExpiresAt    int64         `json:"expires_at"` // the access token's expiry in Unix seconds, for apps that store it (FlutterFlow)
	Scope        string        `json:"scope,omitempty"`
	SessionID    string        `json:"session_id,omitempty"`
	User         *jsonapi.User `json:"user,omitempty"`
	// DeviceToken names the account on this device (see throttle.Throttle.DeviceOf); sent back with the next
	// login, that login is counted apart from strangers' guesses.
	DeviceToken string `json:"device_token,omitempty"`
}

// errNotFirstParty answers a client that may not use the token API.
func errNotFirstParty() error {
	return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidClient, "Unknown client, or the client is not a first-party app.")
}

// errWrongPassword is the one answer to a wrong password, an unknown or disabled account, or a sign-in refused
// after the check: the answer never tells which.
func errWrongPassword() error {
	return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidGrant, "Incorrect email or password.")
}

// firstPartyClient loads the client named in a login or signup and checks it may use the token API from this
// origin. Only first-party clients may collect passwords directly.
func (h *API) firstPartyClient(r *http.Request, clientID string) (*models.Client, error) {
	if clientID == "" {
		return nil, jsonapi.BadRequest("client_id is required.")
	}
	c, err := h.Store.ClientByID(r.Context(), clientID)
	switch {
	case err != nil && !errors.Is(err, models.ErrNotFound):
		return nil, fmt.Errorf("load client: %w", err)
	case err != nil || !c.FirstParty:
		return nil, errNotFirstParty()
	}
	if err := h.originAllowed(r, c); err != nil {
		return nil, err
	}
	return c, nil
}

// originAllowed checks a browser caller's Origin against the client's: 403 when it is not allowed.
func (h *API) originAllowed(r *http.Request, c *models.Client) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	ok, err := h.Store.ClientOriginAllowed(r.Context(), c.ID, strings.ToLower(origin))
	if err != nil {
		return fmt.Errorf("check origin: %w", err)
	}
	if !ok {
		return jsonapi.New(http.StatusForbidden, jsonapi.InvalidOrigin, "This origin is not allowed for this client.")
	}
	return nil
}

// requestedScopes is what a sign-in asks for: the scope field, or every scope of the client when it is empty.
// A scope the client may not have is refused here, before anything costly runs (SignIn checks again).
func requestedScopes(c *models.Client, scope string) ([]string, error) {
	scopes := strings.Fields(scope)
	if len(scopes) == 0 {
		return c.Scopes, nil
	}
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return nil, jsonapi.New(http.StatusBadRequest, jsonapi.InvalidScope, fmt.Sprintf("The client may not request scope %q.", truncate(s, 64)))
		}
	}
	return scopes, nil
}

// startSession records the sign-in as a session and issues tokens tied to it (grant.SignIn). An error is
// grant.ErrSignInRefused, an OAuth error, or a fault; see sessionError.
// amr, when set, is how the user authenticated (RFC 8176) if not by the password alone.
func (h *API) startSession(r *http.Request, c *models.Client, u *models.User, scopes []string, tokenType string, amr []string) (*tokenResponse, error) {
	now := h.Now()
	var tokens provider.TokenSet
	bs, session, err := grant.SignIn(r, h.Store, u, c.ID, scopes, now, h.SessionIdle, h.SessionAbsolute, func(s *provider.Session) (err error) {
		if amr != nil {
			s.IDTokenClaims().AuthenticationMethodsReferences = slices.Clone(amr)
		}
		if tokens, err = h.Issuer.SignIn(r.Context(), c.ID, s, scopes); err != nil {
			return fmt.Errorf("issue tokens: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.issued(provider.GrantTypeFirstPartySignIn)
	user := jsonapi.UserOf(u)
	return &tokenResponse{
		AccessToken: tokens.AccessToken, RefreshToken: tokens.RefreshToken, IDToken: tokens.IDToken,
		TokenType: tokenType, ExpiresIn: int64(tokens.ExpiresIn / time.Second), ExpiresAt: expiresAt(session, now, tokens.ExpiresIn),
		Scope: strings.Join(tokens.Scopes, " "), SessionID: bs.ID, User: &user,
	}, nil
}

// expiresAt is when an access token just issued in session expires, in Unix seconds: the expiry fosite recorded
// in the session, or issuedAt plus expiresIn when it recorded none.
func expiresAt(session *provider.Session, issuedAt time.Time, expiresIn time.Duration) int64 {
	if t := session.GetExpiresAt(fosite.AccessToken); !t.IsZero() {
		return t.Unix()
	}
	return issuedAt.Add(expiresIn).Unix()
}

// sessionError is the answer to a startSession error: a refused sign-in exactly like a wrong password, an OAuth
// error of the client's as itself, anything else (an outage above all) as a fault.
func sessionError(r *http.Request, err error) error {
	if errors.Is(err, grant.ErrSignInRefused) {
		return errWrongPassword()
	}
	return jsonapi.FromOAuth(r.Context(), fmt.Errorf("start session: %w", err))
}

type credentialsBody struct {
	ClientID string `json:"client_id"`
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
	Scope    string `json:"scope"`
	// DeviceToken is the device_token of an earlier sign-in on this device (login only).
	DeviceToken string `json:"device_token"`
}

// credentials reads a sign-up or login: its body, the first-party client it names, and an email and password.
func (h *API) credentials(r *http.Request) (credentialsBody, *models.Client, error) {
	var body credentialsBody
	if err := jsonapi.Decode(r, &body); err != nil {
		return body, nil, err
	}
	c, err := h.firstPartyClient(r, body.ClientID)
	if err != nil {
		return body, nil, err
	}
	if body.Email == "" || body.Password == "" {
		return body, nil, jsonapi.BadRequest("email and password are required.")
	}
	return body, c, nil
}

func (h *API) signup(w http.ResponseWriter, r *http.Request) error {
	r = request.Detached(r)
	ctx := r.Context()
	body, c, err := h.credentials(r)
	if err != nil {
		return err
	}
	r, tokenType, err := h.withDPoP(w, r)
	if err != nil {
		return err
	}
	ctx = r.Context()
	if body.DeviceToken != "" {
		return jsonapi.BadRequest("device_token is not a signup field.")
	}
	pool, err := h.Store.GetPool(ctx, c.Pool)
	if err != nil {
		return fmt.Errorf("load pool: %w", err)
	}
	if !c.AllowSignup || !pool.SignupEnabled {
		return jsonapi.New(http.StatusForbidden, jsonapi.SignupDisabled, "Sign-up is not enabled for this app.")
	}
	if pool.RequireEmailVerification && h.Mail == nil {
		return errMailNotConfigured()
	}
	// Everything that can be checked without the hash is checked before anything is reserved: a request that
	// cannot succeed costs neither a password hash nor a throttle row.
	// With mail, every sign-up is sent a verification mail, queued with the account.
	newUser := models.NewUser{Email: body.Email, Password: body.Password, Name: body.Name, Pool: c.Pool, Roles: pool.DefaultRoles,
		VerifyMail: h.Mail}
	if err := newUser.Validate(); err != nil {
		return jsonapi.BadRequest(strings.TrimPrefix(err.Error(), "invalid: "))
	}
	if err := h.Policy.Check(body.Password, body.Email); err != nil {
		return weakPassword(err)
	}
	scopes, err := requestedScopes(c, body.Scope)
	if err != nil {
		return err
	}
	// Creating the user hashes the password and tells whether the email is taken, so it is reserved like a
	// sign-in, and counts against the IP's sign-ups; from here on the client cannot cancel it.
	attempt, wait, err := h.Throttle.ReserveSignup(r, c.Pool, body.Email)
	if err := throttle.Refusal(r, wait, err); err != nil {
		return err
	}
	ctx = attempt.Context()
	// From here on the hash has run whatever the outcome, so a sign-up that does not succeed counts as failed.
	u, err := h.Store.CreateUserWith(ctx, newUser)
	switch {
	case errors.Is(err, models.ErrConflict):
		// Saying so enumerates accounts, but a signup form has to: the person must learn to sign in instead.
		// Throttling bounds how fast anyone can probe.
		attempt.Failed()
		return jsonapi.New(http.StatusConflict, jsonapi.EmailTaken, "An account with this email already exists; sign in instead.")
	case errors.Is(err, models.ErrInvalid):
		attempt.Failed()
		return jsonapi.BadRequest(strings.TrimPrefix(err.Error(), "invalid: "))
	case err != nil:
		attempt.Failed()
		return fmt.Errorf("create user: %w", err)
	}
	if pool.RequireEmailVerification {
		// No tokens until the mailbox is proved: the account exists, the mail is queued.
		attempt.Succeeded()
		user := jsonapi.UserOf(u)
		request.Logger(ctx).Info("signed up; email verification pending", "user", u.ID, "pool", c.Pool, "client", c.ID)
		jsonapi.Respond(w, http.StatusCreated, map[string]any{"user": user, "email_verification_required": true})
		return nil
	}
	// A pool that requires a second factor: the new account enrols one before any token, as its logins will.
	if demand, err := grant.SecondFactor(ctx, h.Factors, u); err != nil {
		attempt.Void()
		return fmt.Errorf("second factor: %w", err)
	} else if demand != grant.MFANone {
		attempt.Succeeded()
		request.Logger(ctx).Info("signed up; second factor enrolment required", "user", u.ID, "pool", c.Pool, "client", c.ID)
		return h.challengeLogin(w, r, c, u, scopes, demand, false)
	}
	resp, err := h.startSession(r, c, u, scopes, tokenType, nil)
	if err != nil {
		// Nothing half-done: the account goes again if we could not sign it in.
		if err := h.Store.DeleteUser(ctx, u.ID); err != nil {
			request.Logger(ctx).Error("undo signup", "user", u.ID, "error", err)
		}
		attempt.Failed()
		return sessionError(r, err)
	}
	attempt.Succeeded()
	resp.DeviceToken = h.Throttle.DeviceToken(c.Pool, body.Email, u.CredentialStamp(), "")
	request.Logger(ctx).Info("signed up", "user", u.ID, "pool", c.Pool, "client", c.ID)
	jsonapi.Respond(w, http.StatusCreated, resp)
	return nil
}

func (h *API) login(w http.ResponseWriter, r *http.Request) error {
	r = request.Detached(r)
	ctx := r.Context()
	body, c, err := h.credentials(r)
	if err != nil {
		return err
	}
	r, tokenType, err := h.withDPoP(w, r)
	if err != nil {
		return err
	}
	ctx = r.Context()
	if body.Name != "" {
		return jsonapi.BadRequest("name is not a login field.")
	}
	scopes, err := requestedScopes(c, body.Scope)
	if err != nil {
		return err
	}
	// The attempt is counted before the hash runs and decides whether it may run; from here on the client
	// cannot cancel it, so hanging up after sending a guess still counts the guess. A valid device_token for
	// this account counts it on the device's own key.
	device := h.Throttle.DeviceOf(ctx, []string{body.DeviceToken}, c.Pool, body.Email)
	attempt, wait, err := h.Throttle.Reserve(r, c.Pool, body.Email, device)
	if err := throttle.Refusal(r, wait, err); err != nil {
		return err
	}
	ctx = attempt.Context()
	if throttle.Oversized(body.Email, body.Password) {
		return errWrongPassword()
	}
	u, err := h.Store.Authenticate(ctx, c.Pool, body.Email, body.Password)
	switch {
	case errors.Is(err, models.ErrInvalidCredentials), errors.Is(err, models.ErrUserDisabled):
		// A disabled account answers exactly like a wrong password (and counts like one), so the answer never
		// tells that the password was right; the log says why.
		if errors.Is(err, models.ErrUserDisabled) {
			request.Logger(ctx).Info("api sign-in failed", "reason", "account disabled", "user", u.ID, "client", c.ID)
		} else {
			request.Logger(ctx).Info("api sign-in failed", "reason", "invalid credentials", "client", c.ID)
		}
		return errWrongPassword()
	case errors.Is(err, models.ErrEmailNotVerified):
		// The password was right: say what is missing (no tokens), and count it as a success.
		attempt.Succeeded()
		request.Logger(ctx).Info("api sign-in refused", "reason", "email not verified", "user", u.ID, "client", c.ID)
		return errEmailNotVerified()
	case err != nil:
		attempt.Void()
		return fmt.Errorf("authenticate: %w", err)
	}
	// The password was right. A user with a second factor (or who must enrol one) gets a challenge instead of
	// tokens; the password's attempt counts as a success either way, and the code has its own throttle.
	demand, err := grant.SecondFactor(ctx, h.Factors, u)
	if err != nil {
		attempt.Void()
		return fmt.Errorf("second factor: %w", err)
	}
	if demand != grant.MFANone {
		attempt.Succeeded()
		return h.challengeLogin(w, r, c, u, scopes, demand, false)
	}
	resp, err := h.startSession(r, c, u, scopes, tokenType, nil)
	if errors.Is(err, grant.ErrSignInRefused) {
		// The password was changed after it was checked: a wrong password now, and it stays counted as one.
		return sessionError(r, err)
	}
	attempt.Succeeded()
	if err != nil {
		return sessionError(r, err)
	}
	resp.DeviceToken = h.Throttle.DeviceToken(c.Pool, body.Email, u.CredentialStamp(), device)
	request.Logger(ctx).Info("api signed in", "user", u.ID, "client", c.ID, "session", resp.SessionID)
	jsonapi.Respond(w, http.StatusOK, resp)
	return nil
}

// weakPassword answers a password the policy refuses, with the policy's reason.
func weakPassword(err error) error {
	return jsonapi.New(http.StatusBadRequest, jsonapi.WeakPassword, strings.TrimPrefix(err.Error(), passwords.ErrWeak.Error()+": "))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
