package browser

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/secondfactor"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/templates"
)

// loginPage is the sign-in form reached directly (not through an authorization request), e.g. for the account
// pages; return_to says where to go afterwards, pool whose users sign in (the default pool when absent).
func (h *Browser) loginPage(w http.ResponseWriter, r *http.Request) {
	pool, ok := h.directPool(w, r)
	if !ok {
		return
	}
	returnTo, _ := page.LocalPath(r.URL.Query().Get("return_to"))
	action := page.LoginURL(pool, returnTo)
	page.LogRender(r, h.Pages.Login(w, http.StatusOK, templates.LoginPage{Action: action, CSRFToken: h.page().CSRFToken(w, r),
		Providers: h.providerButtons(r, pool, strings.TrimPrefix(action, PathLogin)), ForgotURL: page.ForgotURL(h.Mail != nil, pool)}))
}

// loginAction is the sign-in URL for pool ("" or the default pool: none named) that returns to returnTo.

// directPool is the pool of a sign-in not made for an authorization request: the pool query parameter, or the
// default pool. A pool that does not exist gets an error page (and false): a link naming a wrong pool would
// otherwise answer every password as wrong.
func (h *Browser) directPool(w http.ResponseWriter, r *http.Request) (string, bool) {
	pool := r.URL.Query().Get("pool")
	if pool == "" || pool == models.DefaultPool {
		return models.DefaultPool, true
	}
	_, err := h.Store.GetPool(r.Context(), pool)
	switch {
	case errors.Is(err, models.ErrNotFound):
		request.Logger(r.Context()).Info("sign-in page for an unknown pool", "pool", page.Truncate(pool, 64))
		h.page().Error(w, r, http.StatusNotFound, "Unknown sign-in page", "This sign-in link names a user pool that does not exist. Check the link you followed.")
		return "", false
	case err != nil:
		h.page().Fault(w, r, "load the sign-in pool", err)
		return "", false
	}
	return pool, true
}

// loginSubmit checks the password and starts (or refreshes) the browser session. Unknown accounts and wrong
// passwords get the same answer and, because Authenticate hashes either way, take the same time.
func (h *Browser) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.page().ParsePost(w, r) {
		return
	}
	ctx := r.Context()
	now := h.Now()
	email := r.PostForm.Get("email")
	password := r.PostForm.Get("password")
	challengeID := r.PostForm.Get("challenge")
	returnTo, _ := page.LocalPath(r.URL.Query().Get("return_to"))

	var pending *pendingRequest // the authorization request being signed in to, sealed in the form
	clientName, redirect, pool := "", "", models.DefaultPool
	if challengeID == "" {
		// A direct sign-in: the pool named in the form's URL. With an authorization request, the client's pool
		// decides, whatever the URL says.
		p, ok := h.directPool(w, r)
		if !ok {
			return
		}
		pool = p
	} else {
		p, err := h.openPending(challengeID, now)
		if err != nil {
			h.expiredPage(w, r)
			return
		}
		pending = &p
		c, err := h.Store.ClientByID(ctx, p.ClientID)
		switch {
		case err == nil:
			clientName, pool = c.Name, c.Pool
		case !errors.Is(err, models.ErrNotFound):
			// Never fall back to the default pool: the password would be checked against the wrong users.
			h.page().Fault(w, r, "load the signing-in client", err)
			return
		}
		redirect = p.redirectURI()
	}
	retry := func(status int, msg string) {
		action := PathLogin
		if pending == nil {
			action = page.LoginURL(pool, returnTo)
		} else if returnTo != "" {
			action += "?return_to=" + url.QueryEscape(returnTo)
		}
		page.LogRender(r, h.Pages.Login(w, status, templates.LoginPage{
			Action: action, CSRFToken: h.page().CSRFToken(w, r), Challenge: challengeID, ClientName: clientName,
			Email: page.Truncate(email, models.MaxEmailLength), Error: msg, FormActionExtra: nonEmpty(redirect),
			Providers: h.providerButtons(r, pool, strings.TrimPrefix(action, PathLogin)),
			ForgotURL: page.ForgotURL(h.Mail != nil, pool),
		}))
	}
	// fault answers a failure on our side: 503 with Retry-After when storage cannot serve right now, else 500.
	fault := func(what string, err error) {
		request.Logger(ctx).Error(what, "error", err)
		if err == nil || jsonapi.Unavailable(ctx, err) {
			jsonapi.SetRetryAfter(w)
			retry(http.StatusServiceUnavailable, "Sign-in is temporarily unavailable. Please try again in a moment.")
			return
		}
		retry(http.StatusInternalServerError, "Something went wrong. Please try again.")
	}
	if email == "" || password == "" {
		retry(http.StatusBadRequest, "Enter your email and password.")
		return
	}
	// The attempt is counted before the hash runs and decides whether it may run, on a context the client
	// cannot cancel (see attempt); on this device's own key when it has signed in to this account before.
	device := h.Throttle.DeviceOf(ctx, h.deviceTokens(r), pool, email)
	attempt, wait, err := h.Throttle.Reserve(r, pool, email, device)
	switch {
	case err != nil:
		// The throttle never fails open: whatever went wrong, nobody's password is checked unthrottled.
		request.Logger(ctx).Error("sign-in throttle unavailable", "error", err)
		jsonapi.SetRetryAfter(w)
		retry(http.StatusServiceUnavailable, "Sign-in is temporarily unavailable. Please try again in a moment.")
		return
	case wait > 0:
		request.Logger(ctx).Info("sign-in throttled", "retry_after", throttle.Seconds(wait))
		w.Header().Set("Retry-After", throttle.Seconds(wait))
		retry(http.StatusTooManyRequests, "Too many attempts. Try again in "+throttle.Seconds(wait)+" seconds.")
		return
	}
	if throttle.Oversized(email, password) {
		retry(http.StatusUnauthorized, "Incorrect email or password.")
		return
	}
	user, err := h.Store.Authenticate(attempt.Context(), pool, email, password)
	switch {
	case errors.Is(err, models.ErrInvalidCredentials):
		request.Logger(ctx).Info("sign-in failed", "reason", "invalid credentials")
		retry(http.StatusUnauthorized, "Incorrect email or password.")
		return
	case errors.Is(err, models.ErrUserDisabled):
		// The same answer as a wrong password, so it never tells that the password was right.
		request.Logger(ctx).Info("sign-in failed", "reason", "account disabled", "user", user.ID)
		retry(http.StatusUnauthorized, "Incorrect email or password.")
		return
	case errors.Is(err, models.ErrEmailNotVerified):
		// The password was right; the pool requires a verified email first.
		attempt.Succeeded()
		request.Logger(ctx).Info("sign-in refused", "reason", "email not verified", "user", user.ID)
		retry(http.StatusForbidden, "Please verify your email address first: open the link in the mail we sent you.")
		return
	case err != nil:
		attempt.Void()
		fault("authenticate", err)
		return
	}

	// A user with a second factor (or who must enrol one) is asked for it now: the session starts only after it.
	clientID := ""
	if pending != nil {
		clientID = pending.ClientID
	}
	if asked, err := h.secondStep(w, r, user, clientID, secondfactor.Resume{Stamp: user.CredentialStamp(), Pending: challengeID, ReturnTo: returnTo}); err != nil {
		attempt.Void()
		fault("second factor", err)
		return
	} else if asked {
		attempt.Succeeded()
		return
	}
	bs, err := h.signIn(w, r, user, now, models.AuthMethodPassword)
	if errors.Is(err, errSignInRefused) {
		// The password was changed (or the account disabled) after it was checked: a wrong password now, and it
		// stays counted as one.
		request.Logger(ctx).Info("sign-in failed", "reason", "password changed or account disabled since the check", "user", user.ID)
		retry(http.StatusUnauthorized, "Incorrect email or password.")
		return
	}
	attempt.Succeeded()
	if err != nil {
		fault("sign-in", err)
		return
	}
	request.Logger(ctx).Info("signed in", "user", user.ID, "session", bs.ID)
	h.rememberDevice(w, r, pool, email, user.CredentialStamp(), device)
	h.afterSignIn(w, r, bs, challengeID, returnTo, pool)
}

// afterSignIn sends a browser just signed in (session bs) on: back to the authorization request sealed in pending,
// else to returnTo, else to the account page of pool.
func (h *Browser) afterSignIn(w http.ResponseWriter, r *http.Request, bs *models.BrowserSession, pending, returnTo, pool string) {
	now := h.Now()
	if pending != "" {
		p, err := h.openPending(pending, now)
		if err != nil {
			h.expiredPage(w, r)
			return
		}
		chal, err := h.signedInFor(r.Context(), p, bs.ID, now)
		if err != nil {
			h.page().Fault(w, r, "create challenge", err)
			return
		}
		http.Redirect(w, r, h.resumeURL(chal.ID), http.StatusSeeOther)
		return
	}
	if returnTo == "" {
		returnTo = page.PoolPath(page.PathSessions, pool)
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// signIn gives the browser a session for user, whose password (and second factor: method) was just checked. The same user
// re-authenticating (prompt=login, max_age) keeps their session and its id; anyone else replaces the session in
// this browser. A new session starts only while the checked password is still the user's (see
// models.Store.CreateBrowserSession); otherwise the answer is errSignInRefused.
func (h *Browser) signIn(w http.ResponseWriter, r *http.Request, user *models.User, now time.Time, method string) (*models.BrowserSession, error) {
	ctx := r.Context()
	bs, err := h.currentSession(r)
	if err != nil {
		return nil, err
	}
	if bs != nil && bs.UserID == user.ID {
		err := h.Store.SetBrowserSessionAuth(ctx, bs.ID, now, method)
		if !errors.Is(err, models.ErrNotFound) {
			bs.AuthTime, bs.AuthMethod = now, method
			return bs, err
		}
		// Ended since it was read (e.g. by a password change): start a new one, checked like any other.
	} else if bs != nil {
		_ = h.Store.EndBrowserSession(ctx, bs.ID, now)
	}
	bs, token, err := h.Store.CreateBrowserSessionAuth(ctx, user, method, request.ClientIP(r), r.UserAgent(), now, h.SessionIdle, h.SessionAbsolute)
	switch {
	case errors.Is(err, models.ErrInvalidCredentials), errors.Is(err, models.ErrUserDisabled):
		return nil, errSignInRefused
	case err != nil:
		return nil, err
	}
	h.page().SetCookie(w, sessionCookie, token, h.SessionAbsolute)
	return bs, nil
}

// resumeURL sends the browser back to the authorization endpoint to finish a parked request.
func (h *Browser) resumeURL(challengeID string) string {
	return provider.PathAuthorize + "?" + url.Values{challengeParam: {challengeID}}.Encode()
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
