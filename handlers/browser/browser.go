// Package browser serves the pages a person sees: the authorization endpoint (whose decision, see
// decideAuthorize, is a pure function of the request, the browser session and the consent on record), sign-in,
// consent and RP-initiated logout; the signed-in user's own pages are handlers/account's. Its errors are pages,
// never JSON; an error for a client goes through fosite's authorize error writer, and only to a redirect URI
// fosite has validated.
package browser

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/secondfactor"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/passkey"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/templates"
)

// browserStore is what the interactive flows read and write.
type browserStore interface {
	secondfactor.Store
	CheckedUser(ctx context.Context, id, stamp string) (*models.User, error)
	ClientByID(ctx context.Context, id string) (*models.Client, error)
	UserByID(ctx context.Context, id string) (*models.User, error)
	Authenticate(ctx context.Context, pool, email, password string) (*models.User, error)
	GetPool(ctx context.Context, name string) (*models.Pool, error)

	CreateBrowserSessionAuth(ctx context.Context, u *models.User, method, ip, userAgent string, now time.Time, idle, absolute time.Duration) (*models.BrowserSession, string, error)
	BrowserSessionByToken(ctx context.Context, token string, now time.Time) (*models.BrowserSession, error)
	TouchBrowserSession(ctx context.Context, id, ip string, now time.Time, idle time.Duration) error
	SetBrowserSessionAuth(ctx context.Context, id string, at time.Time, method string) error
	EndBrowserSession(ctx context.Context, id string, now time.Time) error
	FrontchannelLogouts(ctx context.Context, sid string) ([]models.FrontchannelLogout, error)

	ConsentedScopes(ctx context.Context, userID, clientID string) ([]string, error)
	SaveConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) error

	CreateAuthChallenge(ctx context.Context, c models.AuthChallenge) (*models.AuthChallenge, error)
	AuthChallenge(ctx context.Context, id string, now time.Time) (*models.AuthChallenge, error)
	MarkChallengeConsent(ctx context.Context, id, browserSessionID string, at time.Time) error
	TakeAuthChallenge(ctx context.Context, id, browserSessionID string, now time.Time) error
}

// idTokenHints decodes id_token_hint values for logout.
type idTokenHints interface {
	DecodeIDTokenHint(ctx context.Context, token string) (provider.IDTokenHint, error)
}

// Browser serves the interactive flows: authorization, sign-in, consent and logout.
type Browser struct {
	OAuth fosite.OAuth2Provider
	Store browserStore
	Hints idTokenHints
	Pages *templates.Renderer
	// Throttle slows password guessing on the sign-in form; nil disables it.
	Throttle *throttle.Throttle
	// Upstream is sign in with another provider (upstream.go); nil: passwords only.
	Upstream *Upstream
	// Devices serves the device sign-in page (RFC 8628, devicecode.go); nil: no /device page.
	Devices deviceStore
	// Mail renders account mails; nil: the server sends no mail, and the sign-in page offers no "Forgot
	// password?" (the pages it leads to are handlers/accountmail's).
	Mail models.ComposeMail
	// MFASealer opens second factors' secrets: a user with one is asked for its code after the first factor.
	MFASealer *mfa.Sealer
	Passkeys  *passkey.RP // a passkey answers the second step too; nil: codes only
	Issuer    string
	Secret    []byte // keys the CSRF tokens and, through a key derived from it, the sealed pending requests
	Now       func() time.Time

	SessionIdle     time.Duration // a browser session ends after this long without use
	SessionAbsolute time.Duration // and after this long in any case
	// ChallengeTTL is how long a user has to sign in to a pending authorization request, and then to consent.
	ChallengeTTL time.Duration

	pending *keys.Sealer // seals authorization requests waiting for sign-in (see pendingRequest)
	mfa     *secondfactor.Step

	pageOnce sync.Once
	pageKit  *page.Kit
}

// Paths of the interactive pages.
const (
	PathLogin   = page.PathLogin
	PathConsent = "/consent"
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
	h.mfa = &secondfactor.Step{Store: h.Store, Sealer: h.MFASealer, Passkeys: h.Passkeys, Throttle: h.Throttle, Kit: h.page(), Now: h.Now}
	r.HandleFunc(provider.PathAuthorize, h.authorize)
	r.HandleFunc(PathLogin, h.loginPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathLogin, h.loginSubmit).Methods(http.MethodPost)
	r.HandleFunc(secondfactor.Path, h.mfaSubmit).Methods(http.MethodPost)
	h.mountUpstream(r)
	r.HandleFunc(PathConsent, h.consentSubmit).Methods(http.MethodPost)
	r.HandleFunc(provider.PathEndSession, h.endSession).Methods(http.MethodGet, http.MethodPost)
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

const sessionCookie = page.SessionCookie

// currentSession returns the signed-in browser session, or nil. It records activity at most once a minute.
func (h *Browser) currentSession(r *http.Request) (*models.BrowserSession, error) {
	c, err := r.Cookie(h.page().CookieName(sessionCookie))
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

// errSignInRefused: the session could not start because the password that was checked is no longer the user's
// (changed meanwhile) or the user was disabled meanwhile. The caller answers it as a wrong password.
var errSignInRefused = errors.New("sign-in refused after the password check")

// page is the shared page plumbing (package page) for this server's issuer, secret and renderer.
func (h *Browser) page() *page.Kit {
	h.pageOnce.Do(func() { h.pageKit = &page.Kit{Issuer: h.Issuer, Secret: h.Secret, Pages: h.Pages} })
	return h.pageKit
}
