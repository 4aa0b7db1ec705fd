// Package page is the plumbing every family of HTML pages shares, as jsonapi is for JSON endpoints: cookies
// (Secure and __Host- once the issuer is https), stateless CSRF tokens, form reading, same-site redirect paths,
// and Latchkey's error page for what the client's redirect URI cannot be trusted with, or for our own faults.
package page

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/templates"
)

// Kit holds what the plumbing needs of the server: its issuer (https or not), the secret keying CSRF tokens, and
// the page renderer.
type Kit struct {
	Issuer string
	Secret []byte
	Pages  *templates.Renderer
}

// CSRFCookie is the name (before any __Host- prefix) of the cookie holding the browser's CSRF seed.
const CSRFCookie = "lk_csrf"

// Secure reports whether cookies must be Secure: whenever the issuer is https.
func (k *Kit) Secure() bool { return strings.HasPrefix(k.Issuer, "https://") }

// CookieName uses the __Host- prefix when secure, which pins the cookie to this host and path /.
func (k *Kit) CookieName(base string) string {
	if k.Secure() {
		return "__Host-" + base
	}
	return base
}

// SetCookie sets an HttpOnly, SameSite=Lax cookie for path /; a maxAge of 0 makes it last the browser session.
func (k *Kit) SetCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: k.CookieName(name), Value: value, Path: "/", HttpOnly: true, Secure: k.Secure(),
		SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge / time.Second),
	})
}

// ClearCookie removes a cookie SetCookie set.
func (k *Kit) ClearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: k.CookieName(name), Value: "", Path: "/", HttpOnly: true, Secure: k.Secure(),
		SameSite: http.SameSiteLaxMode, MaxAge: -1,
	})
}

// CSRFToken returns the token forms must echo: an HMAC of a random per-browser cookie, so it needs no server
// state and cannot be forged without the cookie, which other sites cannot read.
func (k *Kit) CSRFToken(w http.ResponseWriter, r *http.Request) string {
	seed := ""
	if c, err := r.Cookie(k.CookieName(CSRFCookie)); err == nil && len(c.Value) == 43 {
		seed = c.Value
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		seed = base64.RawURLEncoding.EncodeToString(b)
		k.SetCookie(w, CSRFCookie, seed, 0)
	}
	return k.CSRFFor(seed)
}

// CSRFFor is the token for a browser whose CSRF cookie holds seed.
func (k *Kit) CSRFFor(seed string) string {
	m := hmac.New(sha256.New, k.Secret)
	m.Write([]byte("csrf\x00" + seed))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF verifies a submitted form's token in constant time.
func (k *Kit) CheckCSRF(r *http.Request) bool {
	c, err := r.Cookie(k.CookieName(CSRFCookie))
	if err != nil || c.Value == "" {
		return false
	}
	return hmac.Equal([]byte(r.PostForm.Get("csrf_token")), []byte(k.CSRFFor(c.Value)))
}

// Error renders our own error page: used whenever the client's redirect URI is not (yet) trusted.
func (k *Kit) Error(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	LogRender(r, k.Pages.Error(w, status, templates.ErrorPage{Title: title, Message: message, RequestID: w.Header().Get("X-Request-Id")}))
}

// ParsePost parses a form POST and checks its CSRF token, answering with an error page when either fails.
func (k *Kit) ParsePost(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		k.Error(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return false
	}
	for name, v := range r.PostForm {
		if len(v) > 1 {
			k.Error(w, r, http.StatusBadRequest, "Bad request", "The form field "+name+" was sent more than once.")
			return false
		}
	}
	if !k.CheckCSRF(r) {
		k.Error(w, r, http.StatusForbidden, "This form has expired", "For your security the page was reloaded too late or from another site. Go back, reload the page and try again.")
		return false
	}
	return true
}

// Fault answers a page request that failed on our side with Latchkey's error page, its cause logged at ERROR
// with the request id: 503 with Retry-After when storage could not serve right now, else 500.
func (k *Kit) Fault(w http.ResponseWriter, r *http.Request, what string, err error) {
	request.Logger(r.Context()).Error(what, "error", jsonapi.FaultCause(r.Context(), err))
	if jsonapi.Unavailable(r.Context(), err) {
		jsonapi.SetRetryAfter(w)
		k.Error(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "We could not reach our database. Please try again in a moment.")
		return
	}
	k.Error(w, r, http.StatusInternalServerError, "Something went wrong", "Please try again.")
}

// LocalPath accepts only same-site absolute paths for post-login redirects (no //host, no scheme).
func LocalPath(p string) (string, bool) {
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "", false
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "", false
	}
	return u.RequestURI(), true
}

// LogRender logs what a page render method returned: a page that could not be rendered (the renderer has already
// answered 500) at Error, a client that went away before the page was sent at Debug. Every render call site
// passes its result here: `page.LogRender(r, pages.Sessions(w, ...))`.
func LogRender(r *http.Request, err error) {
	switch {
	case err == nil:
	case errors.Is(err, templates.ErrWrite):
		request.Logger(r.Context()).Debug("page not sent", "error", err)
	default:
		request.Logger(r.Context()).Error("render page", "path", r.URL.Path, "error", err)
	}
}

// Paths of the account mail pages (handlers/accountmail), which the sign-in pages link to.
const (
	PathVerifyEmail    = "/verify-email"
	PathForgotPassword = "/forgot-password"
	PathResetPassword  = "/reset-password"
)

// ForgotURL is the "Forgot password?" link of a sign-in page for pool; "" when the server sends no mail.
func ForgotURL(mailOn bool, pool string) string {
	if !mailOn {
		return ""
	}
	if pool == "" || pool == models.DefaultPool {
		return PathForgotPassword
	}
	return PathForgotPassword + "?" + url.Values{"pool": {pool}}.Encode()
}

// PoolLookup reads a pool (models.Store.GetPool).
type PoolLookup interface {
	GetPool(ctx context.Context, name string) (*models.Pool, error)
}

// DirectPool is the pool a page reached directly names (?pool=; the default pool when none). An unknown pool gets
// a 404 page and a failed lookup our fault page; ok is false then, and the page is answered.
func (k *Kit) DirectPool(w http.ResponseWriter, r *http.Request, pools PoolLookup) (string, bool) {
	pool := r.URL.Query().Get("pool")
	if pool == "" || pool == models.DefaultPool {
		return models.DefaultPool, true
	}
	_, err := pools.GetPool(r.Context(), pool)
	switch {
	case errors.Is(err, models.ErrNotFound):
		if len(pool) > 64 {
			pool = pool[:64]
		}
		request.Logger(r.Context()).Info("page for an unknown pool", "pool", pool)
		k.Error(w, r, http.StatusNotFound, "Unknown sign-in page", "This sign-in link names a user pool that does not exist. Check the link you followed.")
		return "", false
	case err != nil:
		k.Fault(w, r, "load the sign-in pool", err)
		return "", false
	}
	return pool, true
}

// PathLogin is the sign-in page (handlers/browser).
const PathLogin = "/login"

// Paths of the signed-in user's own pages: the account page (handlers/account) and its sessions list
// (handlers/browser).
const (
	PathAccount  = "/account"
	PathSessions = "/account/sessions"
)

// PoolPath is path for the users of pool ("" or the default pool: no pool named), as the signed-in user's pages
// take it: a visitor signed out, or signed in to another pool, signs in to that pool first.
func PoolPath(path, pool string) string {
	if pool == "" || pool == models.DefaultPool {
		return path
	}
	return path + "?" + url.Values{"pool": {pool}}.Encode()
}

// SessionCookie is the name (before any __Host- prefix) of the browser session's cookie: handlers/browser sets it
// at sign-in, and every page of the signed-in user reads it.
const SessionCookie = "lk_session"

// LoginURL is the sign-in page for pool ("" or the default pool: none named), returning to returnTo after.
func LoginURL(pool, returnTo string) string {
	q := url.Values{}
	if pool != "" && pool != models.DefaultPool {
		q.Set("pool", pool)
	}
	if returnTo != "" {
		q.Set("return_to", returnTo)
	}
	if len(q) == 0 {
		return PathLogin
	}
	return PathLogin + "?" + q.Encode()
}

// Truncate cuts what a visitor typed to n bytes before a page shows it again or a log line records it.
func Truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
