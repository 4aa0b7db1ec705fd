// Package tokenapi is the first-party JSON token API for no-code frontends and backends: signup, login, me,
// refresh, logout, password and sessions under /api/v1/auth/. Its handlers return errors, which jsonapi.Write
// answers; every token it hands out is a standard Latchkey token issued for the named first-party client, so
// introspection, revocation and userinfo treat them like any other.
package tokenapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/passkey"
	"github.com/latchkey/latchkey/passwords"
	"github.com/latchkey/latchkey/provider"
)

// store is what the token API reads and writes.
type store interface {
	ClientByID(ctx context.Context, id string) (*models.Client, error)
	ClientOriginAllowed(ctx context.Context, clientID, origin string) (bool, error)
	GetPool(ctx context.Context, name string) (*models.Pool, error)
	CreateUserWith(ctx context.Context, u models.NewUser) (*models.User, error)
	DeleteUser(ctx context.Context, id string) error
	Authenticate(ctx context.Context, pool, email, password string) (*models.User, error)
	UserByID(ctx context.Context, id string) (*models.User, error)
	SetName(ctx context.Context, userID, name string) error
	ChangeOwnPassword(ctx context.Context, checked *models.User, password, keepSessionID string, now time.Time) (int, error)
	EnqueueOutbox(ctx context.Context, kind, target string, payload any, now time.Time) (string, error)
	VerifyEmail(ctx context.Context, ref models.MailTokenRef, now time.Time) (*models.User, error)
	SignInWithMailToken(ctx context.Context, ref models.MailTokenRef, now time.Time) (*models.User, error)
	ResetPassword(ctx context.Context, ref models.MailTokenRef, password string, check func(email string) error, now time.Time) (int, error)

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

// API serves the token API. Its dependency on the provider is the small interface above (Issuer) and
// fosite's provider to read access tokens (OAuth).
type API struct {
	OAuth  fosite.OAuth2Provider
	Issuer tokenIssuer
	// DPoP verifies the proof of a DPoP-bound access token (RFC 9449); nil: DPoP-bound tokens are refused.
	DPoP  grant.Proofs
	Store store
	// Factors and Sealer serve two-factor sign-in (mfa.go); MFAIssuer labels the factor in authenticator apps.
	Factors   factorStore
	Sealer    *mfa.Sealer
	MFAIssuer string
	Policy    *passwords.Policy
	Throttle  *throttle.Throttle
	CORS      *request.CORS
	// TokenHeader is an extra request header that may carry the access token, for tools that cannot set
	// Authorization (e.g. "X-Auth-Token"). Empty: Authorization only.
	TokenHeader     string
	SessionIdle     time.Duration
	SessionAbsolute time.Duration
	Now             func() time.Time
	// Issued counts the tokens this API hands out by grant type, as the token endpoint does; nil: none.
	Issued interface{ TokenIssued(grantType string) }
	// Mail renders account mails (verification, password reset); nil: the server sends no mail, and those
	// endpoints answer mail_not_configured.
	Mail models.ComposeMail
	// Passkeys answers a login's second factor with a passkey (passkeys.go); nil: codes only.
	Passkeys *passkey.RP
}

func (h *API) issued(grantType string) {
	if h.Issued != nil {
		h.Issued.TokenIssued(grantType)
	}
}

// Prefix is where the token API lives.
const Prefix = "/api/v1/auth"

// handler is a token API endpoint: what it returns, jsonapi.Write answers.
type handler func(w http.ResponseWriter, r *http.Request) error

func (h *API) Mount(r *mux.Router) {
	if h.Now == nil {
		h.Now = time.Now
	}
	s := r.PathPrefix(Prefix).Subrouter()
	// A browser app may call every route from a client's origin, with the custom token header too.
	var extraHeaders []string
	if h.TokenHeader != "" {
		extraHeaders = []string{h.TokenHeader}
	}
	route := func(path string, fn handler, methods ...string) {
		cors := request.CORSRoute{Methods: methods, Headers: extraHeaders}
		s.Handle(path, h.CORS.WrapRoute(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err := methodNotAllowed(methods)
			for _, m := range methods {
				if r.Method == m {
					err = fn(w, r)
					break
				}
			}
			if err != nil {
				jsonapi.Write(w, r, err)
			}
		}), cors))
	}
	route("/signup", h.signup, http.MethodPost)
	route("/login", h.login, http.MethodPost)
	route("/refresh", h.refresh, http.MethodPost)
	route("/me", h.me, http.MethodGet, http.MethodPatch)
	route("/logout", h.logout, http.MethodPost)
	route("/password", h.password, http.MethodPost)
	route("/sessions", h.sessions, http.MethodGet, http.MethodDelete)
	route("/sessions/{id}", h.endSession, http.MethodDelete)
	route("/mfa/verify", h.verify, http.MethodPost)
	route("/mfa/passkey/begin", h.passkeyBegin, http.MethodPost)
	route("/mfa/totp/enroll", h.enroll, http.MethodPost)
	route("/mfa/totp/confirm", h.confirm, http.MethodPost)
	route("/mfa/factors", h.factors, http.MethodGet)
	route("/mfa/factors/{id}", h.removeFactor, http.MethodDelete)
	route("/email/verify", h.verifyEmail, http.MethodPost)
	route("/email/resend", h.resend, http.MethodPost)
	route("/password/forgot", h.forgot, http.MethodPost)
	route("/password/reset", h.resetPassword, http.MethodPost)
	route("/otp/start", h.otpStart, http.MethodPost)
	route("/otp/verify", h.otpVerify, http.MethodPost)
}

func methodNotAllowed(methods []string) error {
	return jsonapi.New(http.StatusMethodNotAllowed, jsonapi.InvalidRequest, "Method not allowed; use "+strings.Join(methods, " or ")+".").
		WithHeader("Allow", strings.Join(methods, ", "))
}
