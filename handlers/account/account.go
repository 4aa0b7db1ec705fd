// Package account is the signed-in user's own pages, for a user of any pool. The account page: the profile, whether
// the email is verified (and a new verification mail), the password, second factors of every kind (an
// authenticator app set up here; passkeys on their own page), the other providers linked to the account. The
// sessions page: the user's sessions, each of which can be ended. Pages only, without JavaScript: every change is a form posted with the CSRF token (package page), and
// answered with the page again, saying what happened or why nothing did. The rules are the owners' the token API
// uses too: the password policy, models.Store.ChangeOwnPassword, grant.SignedInRecently, the throttles, and the
// durable mail request of the outbox.
package account

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/passwords"
	"github.com/latchkey/latchkey/templates"
)

// Store is what the account page reads and writes.
type Store interface {
	page.PoolLookup
	UserByID(ctx context.Context, id string) (*models.User, error)
	BrowserSessionByToken(ctx context.Context, token string, now time.Time) (*models.BrowserSession, error)
	TouchBrowserSession(ctx context.Context, id, ip string, now time.Time, idle time.Duration) error
	Authenticate(ctx context.Context, pool, email, password string) (*models.User, error)
	SetName(ctx context.Context, userID, name string) error
	ChangeOwnPassword(ctx context.Context, checked *models.User, password, keepSessionID string, now time.Time) (int, error)
	EnqueueOutbox(ctx context.Context, kind, target string, payload any, now time.Time) (string, error)

	Factors(ctx context.Context, userID string) ([]models.Factor, error)
	CreatePendingFactor(ctx context.Context, f models.Factor) error
	ConfirmFactor(ctx context.Context, userID, id string, step int64, recoveryHashes []string) error
	DeleteFactor(ctx context.Context, userID, id string) error
	RecoveryCodesLeft(ctx context.Context, userID string) (int, error)
	ReplaceRecoveryCodes(ctx context.Context, userID string, recoveryHashes []string) error

	ListBrowserSessions(ctx context.Context, userID string, now time.Time) ([]models.BrowserSession, error)
	BrowserSessionByID(ctx context.Context, id string) (*models.BrowserSession, error)
	EndBrowserSession(ctx context.Context, id string, now time.Time) error
	EndUserBrowserSessions(ctx context.Context, userID, exceptID string, now time.Time) (int, error)

	LinkedIdentities(ctx context.Context, userID string) ([]models.LinkedIdentity, error)
	UnlinkIdentity(ctx context.Context, userID, providerID, subject string, passwordChecked bool) error
}

// Pages serves the account and sessions pages.
type Pages struct {
	Store    Store
	Policy   *passwords.Policy // what a new password must meet
	Throttle *throttle.Throttle
	// Sealer seals authenticator apps' secrets; MFAIssuer labels them in the app.
	Sealer    *mfa.Sealer
	MFAIssuer string
	// Mail renders account mails; nil: the server sends no mail, and the page offers no verification mail.
	Mail  models.ComposeMail
	Pages *templates.Renderer
	// Issuer and Secret are the page plumbing's (package page): cookies, CSRF tokens.
	Issuer string
	Secret []byte
	Now    func() time.Time
	// SessionIdle is the browser sessions' idle lifetime, renewed as the page is used (as every page does).
	SessionIdle time.Duration

	pageOnce sync.Once
	pageKit  *page.Kit
}

// Paths of the account page's forms; PathPasskeys is the passkeys page (handlers/passkey), linked from here.
const (
	PathProfile  = page.PathAccount + "/profile"
	PathResend   = page.PathAccount + "/email/resend"
	PathPassword = page.PathAccount + "/password"
	PathEnrol    = page.PathAccount + "/factors/totp"
	PathConfirm  = page.PathAccount + "/factors/totp/confirm"
	PathRemove   = page.PathAccount + "/factors/remove"
	PathRecovery = page.PathAccount + "/factors/recovery-codes"
	PathUnlink   = page.PathAccount + "/providers/unlink"
	PathPasskeys = page.PathAccount + "/passkeys"
)

// Mount registers the page and its forms.
func (h *Pages) Mount(r *mux.Router) {
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.SessionIdle == 0 {
		h.SessionIdle = 7 * 24 * time.Hour
	}
	r.HandleFunc(page.PathAccount, h.accountPage).Methods(http.MethodGet, http.MethodHead)
	for path, fn := range map[string]func(http.ResponseWriter, *http.Request, *signedIn){
		PathProfile: h.profileSubmit, PathResend: h.resendSubmit, PathPassword: h.passwordSubmit,
		PathEnrol: h.enrolSubmit, PathConfirm: h.confirmSubmit, PathRemove: h.removeSubmit,
		PathRecovery: h.recoverySubmit, PathUnlink: h.unlinkSubmit,
	} {
		r.HandleFunc(path, h.form(page.PathAccount, fn)).Methods(http.MethodPost)
	}
	r.HandleFunc(page.PathSessions, h.sessionsPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(page.PathSessions, h.form(page.PathSessions, h.sessionsSubmit)).Methods(http.MethodPost)
}

func (h *Pages) page() *page.Kit {
	h.pageOnce.Do(func() { h.pageKit = &page.Kit{Issuer: h.Issuer, Secret: h.Secret, Pages: h.Pages} })
	return h.pageKit
}

// signedIn is the visitor of the page: the browser session and its user.
type signedIn struct {
	session *models.BrowserSession
	user    *models.User
}

// visitor is the signed-in user of a page: the browser session's, of any pool. Without one (or with one of another
// pool than the page's pool=) the browser is sent to sign in to the page's pool, then to the page back of that
// pool; a store that cannot answer gets the fault page. When ok is false the browser has been answered.
func (h *Pages) visitor(w http.ResponseWriter, r *http.Request, back string) (*signedIn, bool) {
	ctx, now := r.Context(), h.Now()
	pool := r.URL.Query().Get("pool")
	signIn := func() {
		http.Redirect(w, r, page.LoginURL(pool, page.PoolPath(back, pool)), http.StatusSeeOther)
	}
	c, err := r.Cookie(h.page().CookieName(page.SessionCookie))
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		signIn()
		return nil, false
	}
	bs, err := h.Store.BrowserSessionByToken(ctx, c.Value, now)
	if errors.Is(err, models.ErrNotFound) {
		signIn()
		return nil, false
	} else if err != nil {
		h.page().Fault(w, r, "load browser session", err)
		return nil, false
	}
	if now.Sub(bs.LastActiveAt) > time.Minute {
		if err := h.Store.TouchBrowserSession(ctx, bs.ID, request.ClientIP(r), now, h.SessionIdle); err != nil {
			request.Logger(ctx).Warn("touch browser session", "error", err)
		}
	}
	u, err := h.Store.UserByID(ctx, bs.UserID)
	if errors.Is(err, models.ErrNotFound) {
		signIn()
		return nil, false
	} else if err != nil {
		h.page().Fault(w, r, "load signed-in user", err)
		return nil, false
	}
	if pool != "" && pool != u.Pool {
		signIn()
		return nil, false
	}
	return &signedIn{session: bs, user: u}, true
}

func (h *Pages) accountPage(w http.ResponseWriter, r *http.Request) {
	v, ok := h.visitor(w, r, page.PathAccount)
	if !ok {
		return
	}
	h.show(w, r, v, http.StatusOK, templates.AccountPage{})
}

// form is a POSTed form of the page back: CSRF-checked first, then its signed-in visitor.
func (h *Pages) form(back string, fn func(http.ResponseWriter, *http.Request, *signedIn)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.page().ParsePost(w, r) {
			return
		}
		// A change made must not be lost to a client that went away (a code or recovery code spent, a mail asked).
		r = request.Detached(r)
		v, ok := h.visitor(w, r, back)
		if !ok {
			return
		}
		fn(w, r, v)
	}
}

// show renders the page for v with status, on top of what p already says (a message, new recovery codes, an
// enrolment under way).
func (h *Pages) show(w http.ResponseWriter, r *http.Request, v *signedIn, status int, p templates.AccountPage) {
	ctx, u := r.Context(), v.user
	factors, err := h.Store.Factors(ctx, u.ID)
	if err != nil {
		h.page().Fault(w, r, "list factors", err)
		return
	}
	left, err := h.Store.RecoveryCodesLeft(ctx, u.ID)
	if err != nil {
		h.page().Fault(w, r, "count recovery codes", err)
		return
	}
	links, err := h.Store.LinkedIdentities(ctx, u.ID)
	if err != nil {
		h.page().Fault(w, r, "list linked providers", err)
		return
	}
	pool, err := h.Store.GetPool(ctx, u.Pool)
	if err != nil {
		h.page().Fault(w, r, "load pool", err)
		return
	}
	p.CSRFToken = h.page().CSRFToken(w, r)
	p.Email, p.Name, p.Verified = u.Email, u.Name, u.EmailVerified
	if u.Pool != models.DefaultPool {
		p.Pool = u.Pool
	}
	p.ProfileAction, p.PasswordAction, p.RemoveAction, p.UnlinkAction = PathProfile, PathPassword, PathRemove, PathUnlink
	if h.Mail != nil && !u.EmailVerified {
		p.ResendAction = PathResend
	}
	p.ForgotURL = page.ForgotURL(h.Mail != nil, u.Pool)
	p.NeedPassword = !grant.SignedInRecently(v.session.AuthTime, h.Now())
	hasTOTP, active := false, false
	for _, f := range factors {
		p.Factors = append(p.Factors, templates.FactorRow{ID: f.ID, Kind: f.Kind, Name: f.Name, Active: f.Active(),
			CreatedAt: f.CreatedAt, LastUsed: timeOr(f.LastUsedAt)})
		active = active || f.Active()
		if f.Kind == models.FactorTOTP {
			if f.Active() {
				hasTOTP = true
			} else if p.Enrolment == nil {
				// Begun earlier: the code can still confirm it, but its secret is shown only when it is made.
				p.Enrolment = &templates.TOTPEnrolment{ConfirmAction: PathConfirm}
			}
		}
	}
	if !hasTOTP && pool.MFA != models.MFAOff {
		p.EnrolAction = PathEnrol
	}
	if hasTOTP {
		p.Enrolment = nil
	}
	if active {
		p.RecoveryAction, p.RecoveryCodesLeft = PathRecovery, left
	}
	p.PasskeysURL = PathPasskeys
	for _, l := range links {
		p.Providers = append(p.Providers, templates.ProviderRow{ProviderID: l.ProviderID, Name: l.ProviderName, Subject: l.Subject, LinkedAt: l.CreatedAt})
	}
	p.SessionsURL = page.PathSessions
	w.Header().Set("Cache-Control", "no-store") // recovery codes and secrets must not stay in a cache
	page.LogRender(r, h.Pages.Account(w, status, p))
}

func timeOr(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// refuse shows the page again with why the form in section did nothing.
func (h *Pages) refuse(w http.ResponseWriter, r *http.Request, v *signedIn, status int, section, msg string) {
	h.show(w, r, v, status, templates.AccountPage{Section: section, Error: msg})
}

// done shows the page again with what the form did.
func (h *Pages) done(w http.ResponseWriter, r *http.Request, v *signedIn, msg string) {
	h.show(w, r, v, http.StatusOK, templates.AccountPage{Flash: msg})
}
