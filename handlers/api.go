package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/passwords"
	"github.com/latchkey/latchkey/provider"
)

// apiStore is what the token API reads and writes.
type apiStore interface {
	ClientByID(ctx context.Context, id string) (*models.Client, error)
	ClientOriginAllowed(ctx context.Context, clientID, origin string) (bool, error)
	GetPool(ctx context.Context, name string) (*models.Pool, error)
	CreateUserWith(ctx context.Context, u models.NewUser) (*models.User, error)
	DeleteUser(ctx context.Context, id string) error
	Authenticate(ctx context.Context, pool, email, password string) (*models.User, error)
	UserByID(ctx context.Context, id string) (*models.User, error)
	SetName(ctx context.Context, userID, name string) error
	ChangeOwnPassword(ctx context.Context, checked *models.User, password, keepSessionID string, now time.Time) (int, error)

	CreateBrowserSession(ctx context.Context, u *models.User, ip, userAgent string, now time.Time, idle, absolute time.Duration) (*models.BrowserSession, string, error)
	ConfirmBrowserSession(ctx context.Context, id string, now time.Time) error
	BrowserSessionByID(ctx context.Context, id string) (*models.BrowserSession, error)
	TouchBrowserSession(ctx context.Context, id, ip string, now time.Time, idle time.Duration) error
	ListBrowserSessions(ctx context.Context, userID string, now time.Time) ([]models.BrowserSession, error)
	EndBrowserSession(ctx context.Context, id string, now time.Time) error
	EndUserBrowserSessions(ctx context.Context, userID, exceptID string, now time.Time) (int, error)
}

// tokenIssuer issues and refreshes the token API's tokens through the provider, so they are ordinary OAuth tokens.
type tokenIssuer interface {
	SignIn(ctx context.Context, clientID string, session *provider.Session, scopes []string) (provider.TokenSet, error)
	Refresh(ctx context.Context, clientID, clientSecret, refreshToken string) (provider.TokenSet, *provider.Session, error)
	RefreshTokenClient(ctx context.Context, token string) (string, error)
}

// API is the JSON token API for no-code frontends and backends: signup, login, me, refresh, logout, password and
// sessions under /api/v1/auth/. Every token it hands out is a standard Latchkey token issued for the named
// first-party client: introspection, revocation and userinfo treat them like any other.
type API struct {
	OAuth    fosite.OAuth2Provider
	Issuer   tokenIssuer
	Store    apiStore
	Policy   *passwords.Policy
	Throttle *Throttle
	CORS     *CORS
	// TokenHeader is an extra request header that may carry the access token, for tools that cannot set
	// Authorization (e.g. "X-Auth-Token"). Empty: Authorization only.
	TokenHeader     string
	SessionIdle     time.Duration
	SessionAbsolute time.Duration
	Now             func() time.Time
}

// APIPrefix is where the token API lives.
const APIPrefix = "/api/v1/auth"

func (h *API) Mount(r *mux.Router) {
	if h.Now == nil {
		h.Now = time.Now
	}
	s := r.PathPrefix(APIPrefix).Subrouter()
	route := func(path string, fn http.HandlerFunc, methods ...string) {
		s.Handle(path, h.CORS.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, m := range methods {
				if r.Method == m {
					fn(w, r)
					return
				}
			}
			w.Header().Set("Allow", strings.Join(methods, ", "))
			apiError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed; use "+strings.Join(methods, " or ")+".")
		})))
	}
	route("/signup", h.signup, http.MethodPost)
	route("/login", h.login, http.MethodPost)
	route("/refresh", h.refresh, http.MethodPost)
	route("/me", h.me, http.MethodGet, http.MethodPatch)
	route("/logout", h.logout, http.MethodPost)
	route("/password", h.password, http.MethodPost)
	route("/sessions", h.sessions, http.MethodGet, http.MethodDelete)
	route("/sessions/{id}", h.endSession, http.MethodDelete)
}

// apiError writes the token API's error shape, the same as OAuth's.
func apiError(w http.ResponseWriter, status int, code, description string) {
	writeJSONError(w, status, code, description)
}

func writeAPIJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a JSON object body strictly: right content type, one object, no unknown fields, bounded size.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		apiError(w, http.StatusUnsupportedMediaType, "invalid_request", "Send a JSON body with Content-Type: application/json.")
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			apiError(w, http.StatusRequestEntityTooLarge, "invalid_request", "Request body too large.")
		case errors.Is(err, io.EOF):
			apiError(w, http.StatusBadRequest, "invalid_request", "The request body is empty.")
		default:
			apiError(w, http.StatusBadRequest, "invalid_request", "Malformed JSON: "+jsonErrorText(err))
		}
		return false
	}
	if dec.More() {
		apiError(w, http.StatusBadRequest, "invalid_request", "Send exactly one JSON object.")
		return false
	}
	return true
}

// jsonErrorText keeps decoder messages short and free of the input itself.
func jsonErrorText(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d.", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s.", typ.Field, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ") + "."
	}
	return "could not decode the body."
}

// apiUser is the /me shape no-code tools map: a flat object with a roles array.
type apiUser struct {
	ID            string         `json:"id"`
	Email         string         `json:"email"`
	Name          string         `json:"name"`
	EmailVerified bool           `json:"email_verified"`
	Roles         []string       `json:"roles"`
	Pool          string         `json:"pool"`
	Extras        map[string]any `json:"extras"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
}

func toAPIUser(u *models.User) apiUser {
	roles, extras := u.Roles, u.Extras
	if roles == nil {
		roles = []string{}
	}
	if extras == nil {
		extras = map[string]any{}
	}
	return apiUser{ID: u.ID, Email: u.Email, Name: u.Name, EmailVerified: u.EmailVerified, Roles: roles,
		Pool: u.Pool, Extras: extras, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// scopedUser is apiUser as an access token's scopes release it, the mapping userinfo uses: id, pool and
// created_at always; email and email_verified with email; name, extras and updated_at with profile; roles with
// roles. A field the token may not read is left out, not emptied. A first-party app holding all its scopes
// sees exactly apiUser.
type scopedUser struct {
	ID            string          `json:"id"`
	Email         *string         `json:"email,omitempty"`
	Name          *string         `json:"name,omitempty"`
	EmailVerified *bool           `json:"email_verified,omitempty"`
	Roles         *[]string       `json:"roles,omitempty"`
	Pool          string          `json:"pool"`
	Extras        *map[string]any `json:"extras,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     *time.Time      `json:"updated_at,omitempty"`
}

func toScopedUser(u *models.User, scopes fosite.Arguments) scopedUser {
	a := toAPIUser(u)
	out := scopedUser{ID: a.ID, Pool: a.Pool, CreatedAt: a.CreatedAt}
	if scopes.Has(provider.ScopeEmail) {
		out.Email, out.EmailVerified = &a.Email, &a.EmailVerified
	}
	if scopes.Has(provider.ScopeProfile) {
		out.Name, out.Extras, out.UpdatedAt = &a.Name, &a.Extras, &a.UpdatedAt
	}
	if scopes.Has(provider.ScopeRoles) {
		out.Roles = &a.Roles
	}
	return out
}

type tokenResponse struct {
	AccessToken  string   `json:"access_token"`
	RefreshToken string   `json:"refresh_token,omitempty"`
	IDToken      string   `json:"id_token,omitempty"`
	TokenType    string   `json:"token_type"`
	ExpiresIn    int64    `json:"expires_in"`
	Scope        string   `json:"scope,omitempty"`
	SessionID    string   `json:"session_id,omitempty"`
	User         *apiUser `json:"user,omitempty"`
	// DeviceToken names the account on this device (see Throttle.deviceOf); sent back with the next login, that
	// login is counted apart from strangers' guesses.
	DeviceToken string `json:"device_token,omitempty"`
}

// firstPartyClient loads the client named in a login or signup and checks it may use the token API from this
// origin. Only first-party clients may collect passwords directly.
func (h *API) firstPartyClient(w http.ResponseWriter, r *http.Request, clientID string) (*models.Client, bool) {
	ctx := r.Context()
	if clientID == "" {
		apiError(w, http.StatusBadRequest, "invalid_request", "client_id is required.")
		return nil, false
	}
	c, err := h.Store.ClientByID(ctx, clientID)
	if err != nil || !c.FirstParty {
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			serverFault(w, r, "load client", err)
			return nil, false
		}
		apiError(w, http.StatusUnauthorized, "invalid_client", "Unknown client, or the client is not a first-party app.")
		return nil, false
	}
	if !h.originAllowed(w, r, c) {
		return nil, false
	}
	return c, true
}

// originAllowed checks a browser caller's Origin against the client's, answering 403 when it is not allowed.
func (h *API) originAllowed(w http.ResponseWriter, r *http.Request, c *models.Client) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	ok, err := h.Store.ClientOriginAllowed(r.Context(), c.ID, strings.ToLower(origin))
	if err != nil {
		serverFault(w, r, "check origin", err)
		return false
	}
	if !ok {
		apiError(w, http.StatusForbidden, "invalid_origin", "This origin is not allowed for this client.")
		return false
	}
	return true
}

// requestedScopes is what a sign-in asks for: the scope field, or every scope of the client when it is empty.
// A scope the client may not have is refused here, before anything costly runs (SignIn checks again).
func requestedScopes(w http.ResponseWriter, c *models.Client, scope string) ([]string, bool) {
	scopes := strings.Fields(scope)
	if len(scopes) == 0 {
		return c.Scopes, true
	}
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			apiError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("The client may not request scope %q.", truncate(s, 64)))
			return nil, false
		}
	}
	return scopes, true
}

// errSignInRefused: the session could not start because the password that was checked is no longer the user's
// (changed meanwhile), the user was disabled meanwhile, or the new session was ended before its tokens were out.
// The caller answers it as a wrong password.
var errSignInRefused = errors.New("sign-in refused after the password check")

// startSession records the sign-in as a session (listed and revocable like browser ones) and issues tokens tied
// to it. u must be the user Authenticate or CreateUserWith returned: the session starts only while the password
// they checked is still the user's. An error is errSignInRefused, an OAuth error, or a fault; see
// answerSessionError.
func (h *API) startSession(r *http.Request, c *models.Client, u *models.User, scopes []string) (*tokenResponse, error) {
	ctx := r.Context()
	now := h.Now()
	bs, _, err := h.Store.CreateBrowserSession(ctx, u, clientIP(r), r.UserAgent(), now, h.SessionIdle, h.SessionAbsolute)
	switch {
	case errors.Is(err, models.ErrInvalidCredentials), errors.Is(err, models.ErrUserDisabled):
		Logger(ctx).Info("api sign-in refused", "reason", "password changed or account disabled since the check", "user", u.ID)
		return nil, errSignInRefused
	case err != nil:
		return nil, fmt.Errorf("create session: %w", err)
	}
	session := provider.SessionFor(identityOf(u), scopes, bs.ID, now, now)
	session.ClientID = c.ID
	tokens, err := h.Issuer.SignIn(ctx, c.ID, session, scopes)
	if err != nil {
		if endErr := h.Store.EndBrowserSession(ctx, bs.ID, now); endErr != nil && !errors.Is(endErr, models.ErrNotFound) {
			Logger(ctx).Error("end the session of a failed sign-in", "session", bs.ID, "error", endErr)
		}
		return nil, fmt.Errorf("issue tokens: %w", err)
	}
	// A password change (or the session cap) may have ended the session while its tokens were being issued,
	// after it revoked the session's tokens; the confirmation revokes these too.
	switch err := h.Store.ConfirmBrowserSession(ctx, bs.ID, now); {
	case errors.Is(err, models.ErrNotFound):
		Logger(ctx).Info("api sign-in refused", "reason", "session ended while its tokens were issued", "user", u.ID, "session", bs.ID)
		return nil, errSignInRefused
	case err != nil:
		return nil, fmt.Errorf("confirm session: %w", err)
	}
	user := toAPIUser(u)
	return &tokenResponse{
		AccessToken: tokens.AccessToken, RefreshToken: tokens.RefreshToken, IDToken: tokens.IDToken,
		TokenType: "Bearer", ExpiresIn: int64(tokens.ExpiresIn / time.Second), Scope: strings.Join(tokens.Scopes, " "),
		SessionID: bs.ID, User: &user,
	}, nil
}

// answerSessionError answers a startSession error: a refused sign-in exactly like a wrong password, an OAuth
// error as itself, anything else as a fault.
func answerSessionError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errSignInRefused) {
		apiError(w, http.StatusUnauthorized, "invalid_grant", "Incorrect email or password.")
		return
	}
	if rfc := fosite.ErrorToRFC6749Error(err); rfc.CodeField < 500 && !unavailable(r.Context(), err) {
		apiError(w, rfc.CodeField, rfc.ErrorField, rfc.GetDescription())
		return
	}
	serverFault(w, r, "start session", err)
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

func (h *API) signup(w http.ResponseWriter, r *http.Request) {
	r = detached(r)
	ctx := r.Context()
	var body credentialsBody
	if !decodeJSON(w, r, &body) {
		return
	}
	c, ok := h.firstPartyClient(w, r, body.ClientID)
	if !ok {
		return
	}
	if body.Email == "" || body.Password == "" {
		apiError(w, http.StatusBadRequest, "invalid_request", "email and password are required.")
		return
	}
	if body.DeviceToken != "" {
		apiError(w, http.StatusBadRequest, "invalid_request", "device_token is not a signup field.")
		return
	}
	pool, err := h.Store.GetPool(ctx, c.Pool)
	if err != nil {
		serverFault(w, r, "load pool", err)
		return
	}
	if !c.AllowSignup || !pool.SignupEnabled {
		apiError(w, http.StatusForbidden, "signup_disabled", "Sign-up is not enabled for this app.")
		return
	}
	// Everything that can be checked without the hash is checked before anything is reserved: a request that
	// cannot succeed costs neither a password hash nor a throttle row.
	newUser := models.NewUser{Email: body.Email, Password: body.Password, Name: body.Name, Pool: c.Pool, Roles: pool.DefaultRoles}
	if err := newUser.Validate(); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", strings.TrimPrefix(err.Error(), "invalid: "))
		return
	}
	if err := h.Policy.Check(body.Password, body.Email); err != nil {
		apiError(w, http.StatusBadRequest, "weak_password", strings.TrimPrefix(err.Error(), passwords.ErrWeak.Error()+": "))
		return
	}
	scopes, ok := requestedScopes(w, c, body.Scope)
	if !ok {
		return
	}
	// Creating the user hashes the password and tells whether the email is taken, so it is reserved like a
	// sign-in, and counts against the IP's sign-ups; from here on the client cannot cancel it.
	attempt, wait, err := h.Throttle.reserveSignup(r, c.Pool, body.Email)
	if refuseAPI(w, r, wait, err) {
		return
	}
	ctx = attempt.ctx
	// From here on the hash has run whatever the outcome, so a sign-up that does not succeed counts as failed.
	u, err := h.Store.CreateUserWith(ctx, newUser)
	switch {
	case errors.Is(err, models.ErrConflict):
		// Saying so enumerates accounts, but a signup form has to: the person must learn to sign in instead.
		// Throttling bounds how fast anyone can probe.
		attempt.failed()
		apiError(w, http.StatusConflict, "email_taken", "An account with this email already exists; sign in instead.")
		return
	case errors.Is(err, models.ErrInvalid):
		attempt.failed()
		apiError(w, http.StatusBadRequest, "invalid_request", strings.TrimPrefix(err.Error(), "invalid: "))
		return
	case err != nil:
		attempt.failed()
		serverFault(w, r, "create user", err)
		return
	}
	resp, err := h.startSession(r, c, u, scopes)
	if err != nil {
		// Nothing half-done: the account goes again if we could not sign it in.
		if err := h.Store.DeleteUser(ctx, u.ID); err != nil {
			Logger(ctx).Error("undo signup", "user", u.ID, "error", err)
		}
		attempt.failed()
		answerSessionError(w, r, err)
		return
	}
	attempt.succeeded()
	resp.DeviceToken = h.Throttle.deviceToken(c.Pool, body.Email, u.CredentialStamp(), "")
	Logger(ctx).Info("signed up", "user", u.ID, "pool", c.Pool, "client", c.ID)
	writeAPIJSON(w, http.StatusCreated, resp)
}

func (h *API) login(w http.ResponseWriter, r *http.Request) {
	r = detached(r)
	ctx := r.Context()
	var body credentialsBody
	if !decodeJSON(w, r, &body) {
		return
	}
	c, ok := h.firstPartyClient(w, r, body.ClientID)
	if !ok {
		return
	}
	if body.Email == "" || body.Password == "" {
		apiError(w, http.StatusBadRequest, "invalid_request", "email and password are required.")
		return
	}
	if body.Name != "" {
		apiError(w, http.StatusBadRequest, "invalid_request", "name is not a login field.")
		return
	}
	scopes, ok := requestedScopes(w, c, body.Scope)
	if !ok {
		return
	}
	// The attempt is counted before the hash runs and decides whether it may run; from here on the client
	// cannot cancel it, so hanging up after sending a guess still counts the guess. A valid device_token for
	// this account counts it on the device's own key.
	device := h.Throttle.deviceOf(ctx, []string{body.DeviceToken}, c.Pool, body.Email)
	attempt, wait, err := h.Throttle.reserve(r, c.Pool, body.Email, device)
	if refuseAPI(w, r, wait, err) {
		return
	}
	ctx = attempt.ctx
	if len(body.Email) > maxEmailField || len(body.Password) > maxPasswordField {
		apiError(w, http.StatusUnauthorized, "invalid_grant", "Incorrect email or password.")
		return
	}
	u, err := h.Store.Authenticate(ctx, c.Pool, body.Email, body.Password)
	switch {
	case errors.Is(err, models.ErrInvalidCredentials), errors.Is(err, models.ErrUserDisabled):
		// A disabled account answers exactly like a wrong password (and counts like one), so the answer never
		// tells that the password was right; the log says why.
		if errors.Is(err, models.ErrUserDisabled) {
			Logger(ctx).Info("api sign-in failed", "reason", "account disabled", "user", u.ID, "client", c.ID)
		} else {
			Logger(ctx).Info("api sign-in failed", "reason", "invalid credentials", "client", c.ID)
		}
		apiError(w, http.StatusUnauthorized, "invalid_grant", "Incorrect email or password.")
		return
	case err != nil:
		attempt.void()
		serverFault(w, r, "authenticate", err)
		return
	}
	resp, err := h.startSession(r, c, u, scopes)
	if errors.Is(err, errSignInRefused) {
		// The password was changed after it was checked: a wrong password now, and it stays counted as one.
		answerSessionError(w, r, err)
		return
	}
	attempt.succeeded()
	if err != nil {
		answerSessionError(w, r, err)
		return
	}
	resp.DeviceToken = h.Throttle.deviceToken(c.Pool, body.Email, u.CredentialStamp(), device)
	Logger(ctx).Info("api signed in", "user", u.ID, "client", c.ID, "session", resp.SessionID)
	writeAPIJSON(w, http.StatusOK, resp)
}

// refresh exchanges a refresh token through fosite's refresh_token grant: rotation and reuse detection are
// exactly the token endpoint's.
func (h *API) refresh(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var body struct {
		RefreshToken string `json:"refresh_token"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if !decodeJSON(w, r, &body) {
		return
	}
	if body.RefreshToken == "" {
		apiError(w, http.StatusBadRequest, "invalid_request", "refresh_token is required.")
		return
	}
	clientID := body.ClientID
	if clientID == "" {
		// The refresh token names its client (even once used, so fosite still detects reuse); no-code tools
		// need send only the token.
		id, err := h.Issuer.RefreshTokenClient(ctx, body.RefreshToken)
		if err != nil && !errors.Is(err, fosite.ErrNotFound) {
			serverFault(w, r, "look up the refresh token's client", err)
			return
		}
		clientID = id
	}
	if clientID == "" {
		apiError(w, http.StatusBadRequest, "invalid_grant", "The refresh token is invalid, expired or revoked.")
		return
	}
	c, err := h.Store.ClientByID(ctx, clientID)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		serverFault(w, r, "load client", err)
		return
	}
	if err != nil || !c.FirstParty {
		apiError(w, http.StatusUnauthorized, "invalid_client", "Unknown client, or the client is not a first-party app.")
		return
	}
	if !h.originAllowed(w, r, c) {
		return
	}
	// A backend that holds the secret sends it and authenticates properly; an app without one is identified by
	// client_id (the provider's first-party rule).
	tokens, session, err := h.Issuer.Refresh(ctx, clientID, body.ClientSecret, body.RefreshToken)
	if err == nil {
		if sid := session.SID; sid != "" {
			_ = h.Store.TouchBrowserSession(ctx, sid, clientIP(r), h.Now(), h.SessionIdle)
		}
		writeAPIJSON(w, http.StatusOK, tokenResponse{
			AccessToken: tokens.AccessToken, RefreshToken: tokens.RefreshToken, IDToken: tokens.IDToken,
			TokenType: "Bearer", ExpiresIn: int64(tokens.ExpiresIn / time.Second), Scope: strings.Join(tokens.Scopes, " "),
			SessionID: session.SID,
		})
		return
	}
	err = noteOAuthError(ctx, w, "api refresh", err)
	rfc := fosite.ErrorToRFC6749Error(err)
	w.Header().Del("WWW-Authenticate")
	switch {
	case rfc.CodeField == http.StatusServiceUnavailable:
		apiError(w, rfc.CodeField, rfc.ErrorField, "The service is temporarily unavailable; retry shortly.")
	case rfc.CodeField >= 500:
		apiError(w, http.StatusInternalServerError, "server_error", "Internal server error.")
	default:
		apiError(w, rfc.CodeField, rfc.ErrorField, rfc.GetDescription())
	}
}

// bearer is the authenticated caller of me, logout, password and sessions.
type bearer struct {
	user    *models.User
	session *provider.Session
	client  *models.Client   // read fresh: a first-party app of ours
	scopes  fosite.Arguments // what the token was granted
}

// authenticate is authenticateUser for the calls that manage the sign-in itself (logout, password, sessions):
// their token must come from a sign-in session.
func (h *API) authenticate(w http.ResponseWriter, r *http.Request) (*bearer, bool) {
	return h.authenticateUser(w, r, true)
}

// authenticateUser reads the access token from Authorization: Bearer or the configured custom header. The token
// API trusts only its own tokens: active, issued for a user (not client_credentials) to a client that is, as
// read now, a first-party app of ours. Anything else is 401 with an RFC 6750 challenge; a store that cannot
// answer is 503, never 401, so apps do not sign their users out over an outage.
func (h *API) authenticateUser(w http.ResponseWriter, r *http.Request, needSession bool) (*bearer, bool) {
	ctx := r.Context()
	token := ""
	if a := r.Header.Get("Authorization"); a != "" {
		if scheme, rest, ok := strings.Cut(a, " "); ok && strings.EqualFold(scheme, "Bearer") {
			token = strings.TrimSpace(rest)
		}
	}
	if token == "" && h.TokenHeader != "" {
		token = strings.TrimSpace(r.Header.Get(h.TokenHeader))
		if scheme, rest, ok := strings.Cut(token, " "); ok && strings.EqualFold(scheme, "Bearer") {
			token = strings.TrimSpace(rest)
		}
	}
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey"`)
		apiError(w, http.StatusUnauthorized, "invalid_token", "An access token is required.")
		return nil, false
	}
	refuse := func(description string) (*bearer, bool) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`)
		apiError(w, http.StatusUnauthorized, "invalid_token", description)
		return nil, false
	}
	ar, sess, err := activeAccessToken(ctx, h.OAuth, token)
	if err != nil {
		if tokenStoreFailed(r.Context(), err) {
			serverFault(w, r, "api: look up access token", err)
			return nil, false
		}
		return refuse("The access token is invalid, expired or revoked.")
	}
	if ar.GetRequestForm().Get("grant_type") == "client_credentials" || sess.Subject == "" {
		return refuse("This API takes a user's access token, not a client's.")
	}
	c, err := h.Store.ClientByID(ctx, ar.GetClient().GetID())
	switch {
	case errors.Is(err, models.ErrNotFound):
		return refuse("The access token is invalid, expired or revoked.")
	case err != nil:
		serverFault(w, r, "api: load the token's client", err)
		return nil, false
	case !c.FirstParty:
		Logger(ctx).Info("api refused a token of another app", "client", c.ID)
		return refuse("This API accepts only tokens issued to a first-party app.")
	}
	u, err := h.Store.UserByID(ctx, sess.Subject)
	switch {
	case err != nil && !errors.Is(err, models.ErrNotFound):
		serverFault(w, r, "api: load the token's user", err)
		return nil, false
	case err != nil || u.Disabled:
		return refuse("This token does not belong to an active user.")
	}
	if needSession && sess.SID == "" {
		apiError(w, http.StatusBadRequest, "invalid_request", "This token is not tied to a session; revoke it at "+provider.PathRevoke+".")
		return nil, false
	}
	if sess.SID != "" {
		// A token lives no longer than its session: signed out, ended by a password change, or idle or past its
		// absolute lifetime, the session takes its access tokens with it.
		now := h.Now()
		bs, err := h.Store.BrowserSessionByID(ctx, sess.SID)
		switch {
		case errors.Is(err, models.ErrNotFound):
			return refuse("The session of this access token has ended.")
		case err != nil:
			serverFault(w, r, "api: load the token's session", err)
			return nil, false
		case bs.EndedAt != nil || !now.Before(bs.IdleExpiresAt) || !now.Before(bs.ExpiresAt):
			return refuse("The session of this access token has ended.")
		case now.Sub(bs.LastActiveAt) > time.Minute:
			_ = h.Store.TouchBrowserSession(ctx, sess.SID, clientIP(r), now, h.SessionIdle)
		}
	}
	return &bearer{user: u, session: sess, client: c, scopes: ar.GetGrantedScopes()}, true
}

// insufficientScope answers a valid token that was not granted scope (RFC 6750 §3.1).
func insufficientScope(w http.ResponseWriter, scope, description string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", error="insufficient_scope", scope="`+scope+`"`)
	apiError(w, http.StatusForbidden, "insufficient_scope", description)
}

// me answers the user as the token's scopes release it (see scopedUser); changing the profile needs profile.
func (h *API) me(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	b, ok := h.authenticateUser(w, r, false)
	if !ok {
		return
	}
	if r.Method == http.MethodPatch {
		if !b.scopes.Has(provider.ScopeProfile) {
			insufficientScope(w, provider.ScopeProfile, "Changing the profile needs a token with the profile scope.")
			return
		}
		var body struct {
			Name *string `json:"name"`
		}
		if !decodeJSON(w, r, &body) {
			return
		}
		if body.Name != nil {
			if err := h.Store.SetName(ctx, b.user.ID, *body.Name); errors.Is(err, models.ErrInvalid) {
				apiError(w, http.StatusBadRequest, "invalid_request", strings.TrimPrefix(err.Error(), "invalid: "))
				return
			} else if err != nil {
				serverFault(w, r, "update profile", err)
				return
			}
		}
		u, err := h.Store.UserByID(ctx, b.user.ID)
		if err != nil {
			serverFault(w, r, "reload the updated user", err)
			return
		}
		b.user = u
	}
	writeAPIJSON(w, http.StatusOK, toScopedUser(b.user, b.scopes))
}

// logout ends the session the token belongs to, which revokes its refresh and access tokens.
func (h *API) logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	b, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	if r.ContentLength > 0 {
		var body struct {
			RefreshToken string `json:"refresh_token"`
		}
		if !decodeJSON(w, r, &body) {
			return
		}
	}
	if err := h.Store.EndBrowserSession(ctx, b.session.SID, h.Now()); err != nil && !errors.Is(err, models.ErrNotFound) {
		serverFault(w, r, "end session", err)
		return
	}
	Logger(ctx).Info("api signed out", "user", b.user.ID, "session", b.session.SID)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// password changes the password and ends every other session of the user.
func (h *API) password(w http.ResponseWriter, r *http.Request) {
	r = detached(r)
	ctx := r.Context()
	b, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	var body struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if !decodeJSON(w, r, &body) {
		return
	}
	if body.CurrentPassword == "" || body.NewPassword == "" {
		apiError(w, http.StatusBadRequest, "invalid_request", "current_password and new_password are required.")
		return
	}
	if err := h.Policy.Check(body.NewPassword, b.user.Email); err != nil {
		apiError(w, http.StatusBadRequest, "weak_password", strings.TrimPrefix(err.Error(), passwords.ErrWeak.Error()+": "))
		return
	}
	// Counted under the signed-in session rather than the whole account: someone holding a stolen token gets the
	// free attempts per session, and strangers' wrong sign-ins never block the owner's own change.
	attempt, wait, err := h.Throttle.reserve(r, b.user.Pool, b.user.Email, "session-"+b.session.SID)
	if refuseAPI(w, r, wait, err) {
		return
	}
	ctx = attempt.ctx
	checked, err := h.Store.Authenticate(ctx, b.user.Pool, b.user.Email, body.CurrentPassword)
	switch {
	case errors.Is(err, models.ErrInvalidCredentials), errors.Is(err, models.ErrUserDisabled):
		apiError(w, http.StatusUnauthorized, "invalid_grant", "The current password is incorrect.")
		return
	case err != nil:
		attempt.void()
		serverFault(w, r, "authenticate", err)
		return
	}
	attempt.succeeded()
	// One transaction: the new password and the end of every other session (and their tokens), so no sign-in
	// with the old password survives the change; and only while the password checked is still current, so a
	// second change checked against the same old password cannot overwrite the first.
	n, err := h.Store.ChangeOwnPassword(ctx, checked, body.NewPassword, b.session.SID, h.Now())
	switch {
	case errors.Is(err, models.ErrInvalidCredentials):
		apiError(w, http.StatusUnauthorized, "invalid_grant", "The current password is incorrect.")
		return
	case errors.Is(err, models.ErrInvalid):
		apiError(w, http.StatusBadRequest, "invalid_request", strings.TrimPrefix(err.Error(), "change password: invalid: "))
		return
	case err != nil:
		serverFault(w, r, "change password", err)
		return
	}
	Logger(ctx).Info("password changed", "user", b.user.ID, "sessions_ended", n)
	writeAPIJSON(w, http.StatusOK, map[string]any{"sessions_ended": n})
}

type apiSession struct {
	ID           string    `json:"id"`
	Device       string    `json:"device"`
	IP           string    `json:"ip"`
	CreatedAt    time.Time `json:"created_at"`
	LastActiveAt time.Time `json:"last_active_at"`
	Current      bool      `json:"current"`
}

func (h *API) sessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	b, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodDelete {
		n, err := h.Store.EndUserBrowserSessions(ctx, b.user.ID, b.session.SID, h.Now())
		if err != nil {
			serverFault(w, r, "end other sessions", err)
			return
		}
		writeAPIJSON(w, http.StatusOK, map[string]any{"sessions_ended": n})
		return
	}
	list, err := h.Store.ListBrowserSessions(ctx, b.user.ID, h.Now())
	if err != nil {
		serverFault(w, r, "list sessions", err)
		return
	}
	out := make([]apiSession, 0, len(list))
	for _, s := range list {
		out = append(out, apiSession{ID: s.ID, Device: DeviceName(s.UserAgent), IP: s.IP, CreatedAt: s.CreatedAt,
			LastActiveAt: s.LastActiveAt, Current: s.ID == b.session.SID})
	}
	writeAPIJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (h *API) endSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	b, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	id := mux.Vars(r)["id"]
	s, err := h.Store.BrowserSessionByID(ctx, id)
	if errors.Is(err, models.ErrNotFound) || (err == nil && (s.UserID != b.user.ID || s.EndedAt != nil)) {
		apiError(w, http.StatusNotFound, "not_found", "No such active session.")
		return
	} else if err != nil {
		serverFault(w, r, "load session", err)
		return
	}
	if err := h.Store.EndBrowserSession(ctx, id, h.Now()); err != nil && !errors.Is(err, models.ErrNotFound) {
		serverFault(w, r, "end session", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// retryAfter formats a wait as whole seconds, rounding up.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}
