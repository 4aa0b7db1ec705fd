package browser

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/secondfactor"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/templates"
	"github.com/latchkey/latchkey/upstream"
)

// Sign in with another provider. The sign-in page shows a button (a form, CSRF-checked) per provider of the
// pool; it posts to PathUpstreamPrefix+id, which records the sign-in (state, nonce, PKCE verifier, the pending
// authorization request) in a row keyed by the state's hash and bound to this browser by a cookie, and
// redirects upstream. PathUpstreamCallback takes that row once, in this browser only, and only then believes
// the code: exchange, verification, the user (models.Store.UserForUpstream links only by a verified email), a
// browser session with amr ["fed"] (after the user's second factor, if they have one: ["fed","otp","mfa"]), and
// the authorization request resumes as after a password.

// Paths of sign in with another provider.
const (
	PathUpstreamPrefix   = "/login/upstream/"
	PathUpstreamCallback = "/login/upstream/callback"
)

// upstreamStore is what sign in with another provider reads and writes.
type upstreamStore interface {
	ListUpstreamProviders(ctx context.Context, pool string) ([]models.UpstreamProvider, error)
	UpstreamProviderByID(ctx context.Context, id string) (*models.UpstreamProvider, error)
	CreateUpstreamLogin(ctx context.Context, l models.UpstreamLogin) error
	TakeUpstreamLogin(ctx context.Context, state, browserSecret string, now time.Time) (*models.UpstreamLogin, error)
	UserForUpstream(ctx context.Context, a models.UpstreamAccount) (*models.User, error)
	CreateUpstreamSessionAuth(ctx context.Context, userID, method, ip, userAgent string, now time.Time, idle, absolute time.Duration) (*models.BrowserSession, string, error)
}

// upstreamClient speaks the upstream's protocol (upstream.Client).
type upstreamClient interface {
	AuthCodeURL(ctx context.Context, p *models.UpstreamProvider, state, nonce, verifier string) (string, error)
	Account(ctx context.Context, p *models.UpstreamProvider, code, verifier, nonce string) (models.UpstreamAccount, error)
}

// Upstream is sign in with another provider; nil Client: no provider buttons, no routes.
type Upstream struct {
	Client upstreamClient
	Store  upstreamStore
}

const upstreamCookie = "lk_upstream"

func (h *Browser) mountUpstream(r *mux.Router) {
	if h.Upstream == nil {
		return
	}
	r.HandleFunc(PathUpstreamCallback, h.upstreamCallback).Methods(http.MethodGet)
	r.HandleFunc(PathUpstreamPrefix+"{provider}", h.upstreamStart).Methods(http.MethodPost)
}

// providerButtons are the sign-in page's buttons for pool's providers; query is added to each action (a direct
// sign-in's pool and return_to). A failure to list them leaves the page with passwords only.
func (h *Browser) providerButtons(r *http.Request, pool, query string) []templates.ProviderButton {
	if h.Upstream == nil {
		return nil
	}
	list, err := h.Upstream.Store.ListUpstreamProviders(r.Context(), pool)
	if err != nil {
		request.Logger(r.Context()).Warn("list upstream providers for the sign-in page", "error", err)
		return nil
	}
	out := make([]templates.ProviderButton, 0, len(list))
	for _, p := range list {
		b := templates.ProviderButton{Action: PathUpstreamPrefix + url.PathEscape(p.ID) + query, Name: p.DisplayName, Upstream: p.Issuer}
		if p.Kind == models.UpstreamKindGitHub {
			b.Upstream = p.AuthURL
			if b.Upstream == "" {
				b.Upstream = "https://github.com/"
			}
		}
		out = append(out, b)
	}
	return out
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// upstreamStart sends the browser to the provider's authorization endpoint.
func (h *Browser) upstreamStart(w http.ResponseWriter, r *http.Request) {
	if !h.page().ParsePost(w, r) {
		return
	}
	ctx, now := r.Context(), h.Now()
	p, err := h.Upstream.Store.UpstreamProviderByID(ctx, mux.Vars(r)["provider"])
	if errors.Is(err, models.ErrNotFound) {
		h.page().Error(w, r, http.StatusNotFound, "Unknown provider", "This sign-in button names a provider that does not exist (any more). Go back, reload the page and try again.")
		return
	} else if err != nil {
		h.page().Fault(w, r, "load the upstream provider", err)
		return
	}
	login := models.UpstreamLogin{
		State: randomToken(), ProviderID: p.ID, Nonce: randomToken(), CodeVerifier: randomToken(),
		ExpiresAt: now.Add(h.ChallengeTTL),
	}
	pool := models.DefaultPool
	if challenge := r.PostForm.Get("challenge"); challenge != "" {
		pending, err := h.openPending(challenge, now)
		if err != nil {
			h.expiredPage(w, r)
			return
		}
		c, err := h.Store.ClientByID(ctx, pending.ClientID)
		if err != nil {
			h.page().Fault(w, r, "load the signing-in client", err)
			return
		}
		pool, login.Pending = c.Pool, challenge
	} else {
		var ok bool
		if pool, ok = h.directPool(w, r); !ok {
			return
		}
		login.ReturnTo, _ = page.LocalPath(r.URL.Query().Get("return_to"))
	}
	if p.Pool != pool {
		h.page().Error(w, r, http.StatusBadRequest, "Not a provider of this sign-in", "This provider signs in users of another pool. Go back and choose another way to sign in.")
		return
	}
	// The cookie binds the sign-in to this browser; one per browser, so two tabs signing in both keep theirs.
	if c, err := r.Cookie(h.page().CookieName(upstreamCookie)); err == nil && len(c.Value) == 43 {
		login.BrowserSecret = c.Value
	} else {
		login.BrowserSecret = randomToken()
	}
	target, err := h.Upstream.Client.AuthCodeURL(ctx, p, login.State, login.Nonce, login.CodeVerifier)
	if err != nil {
		h.upstreamFailed(w, r, p, err)
		return
	}
	if err := h.Upstream.Store.CreateUpstreamLogin(ctx, login); err != nil {
		h.page().Fault(w, r, "record the upstream sign-in", err)
		return
	}
	h.page().SetCookie(w, upstreamCookie, login.BrowserSecret, h.ChallengeTTL)
	request.Logger(ctx).Info("sign-in sent upstream", "provider", p.ID)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// upstreamCallback is where the upstream sends the browser back.
func (h *Browser) upstreamCallback(w http.ResponseWriter, r *http.Request) {
	ctx, now := r.Context(), h.Now()
	q := r.URL.Query()
	if q.Get("state") == "" {
		request.Logger(ctx).Info("upstream callback refused", "reason", "no state")
		h.upstreamExpired(w, r)
		return
	}
	browserSecret := "" // none: matches no sign-in, and still burns the state
	if c, err := r.Cookie(h.page().CookieName(upstreamCookie)); err == nil {
		browserSecret = c.Value
	}
	// Taken first, whatever the answer: an error or a forged code burns the state too.
	login, err := h.Upstream.Store.TakeUpstreamLogin(ctx, q.Get("state"), browserSecret, now)
	if errors.Is(err, models.ErrNotFound) {
		request.Logger(ctx).Info("upstream callback refused", "reason", "unknown, used, expired or other browser's state")
		h.upstreamExpired(w, r)
		return
	} else if err != nil {
		h.page().Fault(w, r, "take the upstream sign-in", err)
		return
	}
	p, err := h.Upstream.Store.UpstreamProviderByID(ctx, login.ProviderID)
	if err != nil {
		h.page().Fault(w, r, "load the upstream provider", err)
		return
	}
	if e := q.Get("error"); e != "" || q.Get("code") == "" {
		request.Logger(ctx).Info("upstream refused the sign-in", "provider", p.ID, "error", page.Truncate(e, 64))
		h.page().Error(w, r, http.StatusForbidden, "Not signed in", p.DisplayName+" did not sign you in. Go back to the application and try again, or choose another way to sign in.")
		return
	}
	account, err := h.Upstream.Client.Account(ctx, p, q.Get("code"), login.CodeVerifier, login.Nonce)
	if err != nil {
		h.upstreamFailed(w, r, p, err)
		return
	}
	user, err := h.Upstream.Store.UserForUpstream(ctx, account)
	if msg := upstreamRefusal(err, p); msg != "" {
		request.Logger(ctx).Info("upstream account refused", "provider", p.ID, "reason", err)
		h.page().Error(w, r, http.StatusForbidden, "Not signed in", msg)
		return
	} else if err != nil {
		h.page().Fault(w, r, "find the user of the upstream account", err)
		return
	}
	// Another provider vouches for the first factor only: a user who has a second factor here is asked for it.
	if asked, err := h.secondStep(w, r, user, "", secondfactor.Resume{Federated: true, Pending: login.Pending, ReturnTo: login.ReturnTo}); err != nil {
		h.page().Fault(w, r, "second factor", err)
		return
	} else if asked {
		return
	}
	bs, err := h.signInUpstream(w, r, user, now, models.AuthMethodUpstream)
	if errors.Is(err, models.ErrUserDisabled) {
		request.Logger(ctx).Info("upstream sign-in refused", "reason", "account disabled", "user", user.ID)
		h.page().Error(w, r, http.StatusForbidden, "Not signed in", "This account is disabled.")
		return
	} else if err != nil {
		h.page().Fault(w, r, "start the upstream session", err)
		return
	}
	request.Logger(ctx).Info("signed in through another provider", "provider", p.ID, "user", user.ID, "session", bs.ID)
	h.afterSignIn(w, r, bs, login.Pending, login.ReturnTo, user.Pool)
}

// upstreamRefusal is the page's message for an upstream account that signs in to no user; "" for any other err.
func upstreamRefusal(err error, p *models.UpstreamProvider) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, models.ErrUpstreamEmailUnverified):
		return "An account with this email address already exists here, and " + p.DisplayName + " has not verified that the address is yours, so it cannot be linked. Sign in with your password instead."
	case errors.Is(err, models.ErrUpstreamSignupUnverified):
		return p.DisplayName + " has not confirmed your email address, so no account can be made with it here. Confirm it there and try again, or sign up with a password."
	case errors.Is(err, models.ErrUpstreamSignupClosed):
		return "There is no account here for you, and new accounts cannot be created this way. Ask an administrator for an account."
	case errors.Is(err, models.ErrUpstreamNoEmail):
		return p.DisplayName + " did not share a usable email address, which an account here needs."
	case errors.Is(err, models.ErrInvalid):
		return "What " + p.DisplayName + " said about your account could not be used here."
	}
	return ""
}

// signInUpstream gives the browser a session for user, vouched for by the upstream (and a second factor: method): the same user's session
// records the new authentication; anyone else's is replaced.
func (h *Browser) signInUpstream(w http.ResponseWriter, r *http.Request, user *models.User, now time.Time, method string) (*models.BrowserSession, error) {
	ctx := r.Context()
	bs, err := h.currentSession(r)
	if err != nil {
		return nil, err
	}
	if bs != nil && bs.UserID == user.ID && !user.Disabled {
		err := h.Store.SetBrowserSessionAuth(ctx, bs.ID, now, method)
		if !errors.Is(err, models.ErrNotFound) {
			bs.AuthTime, bs.AuthMethod = now, method
			return bs, err
		}
	} else if bs != nil {
		_ = h.Store.EndBrowserSession(ctx, bs.ID, now)
	}
	bs, token, err := h.Upstream.Store.CreateUpstreamSessionAuth(ctx, user.ID, method, request.ClientIP(r), r.UserAgent(), now, h.SessionIdle, h.SessionAbsolute)
	if err != nil {
		return nil, err
	}
	h.page().SetCookie(w, sessionCookie, token, h.SessionAbsolute)
	return bs, nil
}

func (h *Browser) upstreamExpired(w http.ResponseWriter, r *http.Request) {
	h.page().Error(w, r, http.StatusBadRequest, "This sign-in has expired", "It was used already, took too long, or was started in another browser. Go back to the application and start signing in again.")
}

// upstreamFailed answers a failed exchange with the upstream: its refusal is the person's to retry (400), its
// outage a 502; anything else is ours.
func (h *Browser) upstreamFailed(w http.ResponseWriter, r *http.Request, p *models.UpstreamProvider, err error) {
	request.Logger(r.Context()).Warn("upstream sign-in failed", "provider", p.ID, "error", err)
	switch {
	case errors.Is(err, upstream.ErrRefused):
		h.page().Error(w, r, http.StatusBadRequest, "Not signed in", p.DisplayName+" did not confirm who you are. Go back to the application and try again.")
	case errors.Is(err, upstream.ErrUnavailable):
		w.Header().Set("Retry-After", "30")
		h.page().Error(w, r, http.StatusBadGateway, "Temporarily unavailable", "We could not reach "+p.DisplayName+". Please try again in a moment.")
	default:
		h.page().Fault(w, r, "upstream sign-in", err)
	}
}
