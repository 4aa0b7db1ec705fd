package handlers

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/templates"
)

// loginPage is the sign-in form reached directly (not through an authorization request), e.g. for the account
// pages; return_to says where to go afterwards.
func (h *Browser) loginPage(w http.ResponseWriter, r *http.Request) {
	returnTo, _ := localPath(r.URL.Query().Get("return_to"))
	action := PathLogin
	if returnTo != "" {
		action += "?return_to=" + url.QueryEscape(returnTo)
	}
	_ = h.Pages.Login(w, http.StatusOK, templates.LoginPage{Action: action, CSRFToken: h.csrfToken(w, r)})
}

const (
	maxEmailField    = 254
	maxPasswordField = 1024
)

// loginSubmit checks the password and starts (or refreshes) the browser session. Unknown accounts and wrong
// passwords get the same answer and, because Authenticate hashes either way, take the same time.
func (h *Browser) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.parsePost(w, r) {
		return
	}
	ctx := r.Context()
	now := h.Now()
	email := r.PostForm.Get("email")
	password := r.PostForm.Get("password")
	challengeID := r.PostForm.Get("challenge")
	returnTo, _ := localPath(r.URL.Query().Get("return_to"))

	var chal *models.AuthChallenge
	clientName, redirect, pool := "", "", models.DefaultPool
	if challengeID != "" {
		var err error
		chal, err = h.Store.AuthChallenge(ctx, challengeID, now)
		if err != nil {
			h.errorPage(w, r, http.StatusBadRequest, "This sign-in request has expired", "Go back to the application and start signing in again.")
			return
		}
		if c, err := h.Store.ClientByID(ctx, chal.ClientID); err == nil {
			clientName, pool = c.Name, c.Pool
		}
		if q, err := url.ParseQuery(chal.Query); err == nil {
			redirect = q.Get("redirect_uri")
		}
	}
	retry := func(status int, msg string) {
		action := PathLogin
		if returnTo != "" {
			action += "?return_to=" + url.QueryEscape(returnTo)
		}
		_ = h.Pages.Login(w, status, templates.LoginPage{
			Action: action, CSRFToken: h.csrfToken(w, r), Challenge: challengeID, ClientName: clientName,
			Email: truncate(email, maxEmailField), Error: msg, FormActionExtra: nonEmpty(redirect),
		})
	}
	if email == "" || password == "" {
		retry(http.StatusBadRequest, "Enter your email and password.")
		return
	}
	if d := h.Throttle.wait(r, pool, email); d > 0 {
		w.Header().Set("Retry-After", retryAfter(d))
		retry(http.StatusTooManyRequests, "Too many attempts. Try again in "+retryAfter(d)+" seconds.")
		return
	}
	if len(email) > maxEmailField || len(password) > maxPasswordField {
		h.Throttle.failed(r, pool, email)
		retry(http.StatusUnauthorized, "Incorrect email or password.")
		return
	}
	user, err := h.Store.Authenticate(ctx, pool, email, password)
	switch {
	case errors.Is(err, models.ErrInvalidCredentials):
		h.Throttle.failed(r, pool, email)
		Logger(ctx).Info("sign-in failed", "reason", "invalid credentials")
		retry(http.StatusUnauthorized, "Incorrect email or password.")
		return
	case errors.Is(err, models.ErrUserDisabled):
		Logger(ctx).Info("sign-in failed", "reason", "account disabled", "user", user.ID)
		retry(http.StatusForbidden, "This account is disabled. Contact the administrator.")
		return
	case err != nil:
		Logger(ctx).Error("authenticate", "error", err)
		retry(http.StatusInternalServerError, "Something went wrong. Please try again.")
		return
	}

	h.Throttle.succeeded(r, pool, email)

	// The same user re-authenticating (prompt=login, max_age) keeps their session and its id; anyone else
	// replaces the session in this browser.
	bs := h.currentSession(r)
	if bs != nil && bs.UserID == user.ID {
		if err := h.Store.SetBrowserSessionAuthTime(ctx, bs.ID, now); err != nil {
			Logger(ctx).Error("record re-authentication", "error", err)
			retry(http.StatusInternalServerError, "Something went wrong. Please try again.")
			return
		}
	} else {
		if bs != nil {
			_ = h.Store.EndBrowserSession(ctx, bs.ID, now)
		}
		var token string
		bs, token, err = h.Store.CreateBrowserSession(ctx, user.ID, clientIP(r), r.UserAgent(), now, h.SessionIdle, h.SessionAbsolute)
		if err != nil {
			Logger(ctx).Error("create browser session", "error", err)
			retry(http.StatusInternalServerError, "Something went wrong. Please try again.")
			return
		}
		h.setCookie(w, sessionCookie, token, h.SessionAbsolute)
	}
	Logger(ctx).Info("signed in", "user", user.ID, "session", bs.ID)

	if chal != nil {
		if err := h.Store.MarkChallengeLogin(ctx, chal.ID, bs.ID, now); err != nil {
			Logger(ctx).Error("mark challenge login", "error", err)
			retry(http.StatusInternalServerError, "Something went wrong. Please try again.")
			return
		}
		http.Redirect(w, r, h.resumeURL(chal.ID), http.StatusSeeOther)
		return
	}
	if returnTo == "" {
		returnTo = PathSessions
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// resumeURL sends the browser back to the authorization endpoint to finish a parked request.
func (h *Browser) resumeURL(challengeID string) string {
	return provider.PathAuthorize + "?" + url.Values{challengeParam: {challengeID}}.Encode()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
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
