// Package browser serves the pages a person sees: the authorization endpoint (whose decision, see
// decideAuthorize, is a pure function of the request, the browser session and the consent on record), sign-in,
// consent, RP-initiated logout and the account sessions page. Its errors are pages, never JSON; an error for a
// client goes through fosite's authorize error writer, and only to a redirect URI fosite has validated.
package browser

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/passwords"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/templates"
)

// browserStore is what the interactive flows read and write.
type browserStore interface {
	ClientByID(ctx context.Context, id string) (*models.Client, error)
	UserByID(ctx context.Context, id string) (*models.User, error)
	Authenticate(ctx context.Context, pool, email, password string) (*models.User, error)
	GetPool(ctx context.Context, name string) (*models.Pool, error)

	CreateBrowserSession(ctx context.Context, u *models.User, ip, userAgent string, now time.Time, idle, absolute time.Duration) (*models.BrowserSession, string, error)
	BrowserSessionByToken(ctx context.Context, token string, now time.Time) (*models.BrowserSession, error)
	BrowserSessionByID(ctx context.Context, id string) (*models.BrowserSession, error)
	TouchBrowserSession(ctx context.Context, id, ip string, now time.Time, idle time.Duration) error
	SetBrowserSessionAuthTime(ctx context.Context, id string, at time.Time) error
	ListBrowserSessions(ctx context.Context, userID string, now time.Time) ([]models.BrowserSession, error)
	EndBrowserSession(ctx context.Context, id string, now time.Time) error
	EndUserBrowserSessions(ctx context.Context, userID, exceptID string, now time.Time) (int, error)
	FrontchannelLogouts(ctx context.Context, sid string) ([]models.FrontchannelLogout, error)

	ConsentedScopes(ctx context.Context, userID, clientID string) ([]string, error)
	SaveConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) error

	CreateAuthChallenge(ctx context.Context, c models.AuthChallenge) (*models.AuthChallenge, error)
	AuthChallenge(ctx context.Context, id string, now time.Time) (*models.AuthChallenge, error)
	MarkChallengeConsent(ctx context.Context, id, browserSessionID string, at time.Time) error
	TakeAuthChallenge(ctx context.Context, id, browserSessionID string, now time.Time) error

	mailStore
}

// idTokenHints decodes id_token_hint values for logout.
type idTokenHints interface {
	DecodeIDTokenHint(ctx context.Context, token string) (provider.IDTokenHint, error)
}

// Browser serves the interactive flows: authorization, sign-in, consent, logout and the account sessions page.
type Browser struct {
	OAuth fosite.OAuth2Provider
	Store browserStore
	Hints idTokenHints
	Pages *templates.Renderer
	// Throttle slows password guessing on the sign-in form; nil disables it.
	Throttle *throttle.Throttle
	// Devices serves the device sign-in page (RFC 8628, devicecode.go); nil: no /device page.
	Devices deviceStore
	// Mail renders account mails; nil: the server sends no mail (no "Forgot password?", and its pages say so).
	Mail models.ComposeMail
	// Policy is the password policy a reset must meet.
	Policy *passwords.Policy
	Issuer string
	Secret []byte // keys the CSRF tokens and, through a key derived from it, the sealed pending requests
	Now    func() time.Time

	SessionIdle     time.Duration // a browser session ends after this long without use
	SessionAbsolute time.Duration // and after this long in any case
	// ChallengeTTL is how long a user has to sign in to a pending authorization request, and then to consent.
	ChallengeTTL time.Duration

	pending *keys.Sealer // seals authorization requests waiting for sign-in (see pendingRequest)
}

// Paths of the interactive pages.
const (
	PathLogin    = "/login"
	PathConsent  = "/consent"
	PathSessions = "/account/sessions"
)

const challengeParam = "lk_challenge"

func (h *Browser) Mount(r *mux.Router) {
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.SessionIdle == 0 {
		h.SessionIdle = 7 * 24 * time.Hour
	}
	if h.SessionAbsolute == 0 {
		h.SessionAbsolute = 30 * 24 * time.Hour
	}
	if h.ChallengeTTL == 0 {
		h.ChallengeTTL = 15 * time.Minute
	}
	h.pending = newPendingSealer(h.Secret)
	r.HandleFunc(provider.PathAuthorize, h.authorize)
	r.HandleFunc(PathLogin, h.loginPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathLogin, h.loginSubmit).Methods(http.MethodPost)
	r.HandleFunc(PathConsent, h.consentSubmit).Methods(http.MethodPost)
	r.HandleFunc(provider.PathEndSession, h.endSession).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc(PathSessions, h.sessionsPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathSessions, h.sessionsSubmit).Methods(http.MethodPost)
	r.HandleFunc(PathVerifyEmail, h.verifyEmailPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathVerifyEmail, h.verifyEmailSubmit).Methods(http.MethodPost)
	r.HandleFunc(PathForgotPassword, h.forgotPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathForgotPassword, h.forgotSubmit).Methods(http.MethodPost)
	r.HandleFunc(PathResetPassword, h.resetPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathResetPassword, h.resetSubmit).Methods(http.MethodPost)
	if h.Devices != nil {
		r.HandleFunc(provider.PathDevice, h.devicePage).Methods(http.MethodGet, http.MethodHead)
		r.HandleFunc(provider.PathDevice, h.deviceSubmit).Methods(http.MethodPost)
	}
	css := h.Pages.CSS()
	r.HandleFunc(templates.CSSPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write(css)
	}).Methods(http.MethodGet, http.MethodHead)
}

// secure reports whether cookies must be Secure: whenever the issuer is https.
func (h *Browser) secure() bool { return strings.HasPrefix(h.Issuer, "https://") }

// cookieName uses the __Host- prefix when secure, which pins the cookie to this host and path /.
func (h *Browser) cookieName(base string) string {
	if h.secure() {
		return "__Host-" + base
	}
	return base
}

func (h *Browser) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(name), Value: value, Path: "/", HttpOnly: true, Secure: h.secure(),
		SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge / time.Second),
	})
}

func (h *Browser) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(name), Value: "", Path: "/", HttpOnly: true, Secure: h.secure(),
		SameSite: http.SameSiteLaxMode, MaxAge: -1,
	})
}

const (
	sessionCookie = "lk_session"
	csrfCookie    = "lk_csrf"
)

// currentSession returns the signed-in browser session, or nil. It records activity at most once a minute.
func (h *Browser) currentSession(r *http.Request) (*models.BrowserSession, error) {
	c, err := r.Cookie(h.cookieName(sessionCookie))
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil, nil
	}
	now := h.Now()
	bs, err := h.Store.BrowserSessionByToken(r.Context(), c.Value, now)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		// Not "signed out": a page that took it so would ask for the password again, and prompt=none would
		// tell the client login_required.
		return nil, fmt.Errorf("load browser session: %w", err)
	}
	if now.Sub(bs.LastActiveAt) > time.Minute {
		if err := h.Store.TouchBrowserSession(r.Context(), bs.ID, request.ClientIP(r), now, h.SessionIdle); err != nil {
			request.Logger(r.Context()).Warn("touch browser session", "error", err)
		}
	}
	return bs, nil
}

// csrfToken returns the token forms must echo: an HMAC of a random per-browser cookie, so it needs no server
// state and cannot be forged without the cookie, which other sites cannot read.
func (h *Browser) csrfToken(w http.ResponseWriter, r *http.Request) string {
	seed := ""
	if c, err := r.Cookie(h.cookieName(csrfCookie)); err == nil && len(c.Value) == 43 {
		seed = c.Value
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		seed = base64.RawURLEncoding.EncodeToString(b)
		h.setCookie(w, csrfCookie, seed, 0)
	}
	return h.csrfFor(seed)
}

func (h *Browser) csrfFor(seed string) string {
	m := hmac.New(sha256.New, h.Secret)
	m.Write([]byte("csrf\x00" + seed))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF verifies a submitted form's token in constant time.
func (h *Browser) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(h.cookieName(csrfCookie))
	if err != nil || c.Value == "" {
		return false
	}
	return hmac.Equal([]byte(r.PostForm.Get("csrf_token")), []byte(h.csrfFor(c.Value)))
}

// errorPage renders our own error page: used whenever the client's redirect URI is not (yet) trusted.
func (h *Browser) errorPage(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	logRender(r, h.Pages.Error(w, status, templates.ErrorPage{Title: title, Message: message, RequestID: w.Header().Get("X-Request-Id")}))
}

// parsePost parses a form POST and checks its CSRF token, answering with an error page when either fails.
func (h *Browser) parsePost(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return false
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			h.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form field "+k+" was sent more than once.")
			return false
		}
	}
	if !h.checkCSRF(r) {
		h.errorPage(w, r, http.StatusForbidden, "This form has expired", "For your security the page was reloaded too late or from another site. Go back, reload the page and try again.")
		return false
	}
	return true
}

// localPath accepts only same-site absolute paths for post-login redirects (no //host, no scheme).
func localPath(p string) (string, bool) {
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "", false
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "", false
	}
	return u.RequestURI(), true
}

// errSignInRefused: the session could not start because the password that was checked is no longer the user's
// (changed meanwhile) or the user was disabled meanwhile. The caller answers it as a wrong password.
var errSignInRefused = errors.New("sign-in refused after the password check")

// pageFault answers a page request that failed on our side with Latchkey's error page, its cause logged at
// ERROR with the request id: 503 with Retry-After when storage could not serve right now, else 500.
func (h *Browser) pageFault(w http.ResponseWriter, r *http.Request, what string, err error) {
	request.Logger(r.Context()).Error(what, "error", jsonapi.FaultCause(r.Context(), err))
	if jsonapi.Unavailable(r.Context(), err) {
		jsonapi.SetRetryAfter(w)
		h.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "We could not reach our database. Please try again in a moment.")
		return
	}
	h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "Please try again.")
}

// logRender logs what a page render method returned: a page that could not be rendered (the renderer has already
// answered 500) at Error, a client that went away before the page was sent at Debug. Every render call site
// passes its result here: `logRender(r, h.Pages.Sessions(w, ...))`.
func logRender(r *http.Request, err error) {
	switch {
	case err == nil:
	case errors.Is(err, templates.ErrWrite):
		request.Logger(r.Context()).Debug("page not sent", "error", err)
	default:
		request.Logger(r.Context()).Error("render page", "path", r.URL.Path, "error", err)
	}
}
