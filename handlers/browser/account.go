package browser

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/templates"
)

// sessionsPath is the sessions page of pool's users ("" or the default pool: no pool named).
func sessionsPath(pool string) string {
	if pool == "" || pool == models.DefaultPool {
		return PathSessions
	}
	return PathSessions + "?" + url.Values{"pool": {pool}}.Encode()
}

// signInForAccount sends the browser to sign in as a user of the pool the account page names (pool=, else
// whichever the sign-in page defaults to), then back to that page.
func signInForAccount(w http.ResponseWriter, r *http.Request) {
	pool := r.URL.Query().Get("pool")
	http.Redirect(w, r, page.LoginURL(pool, sessionsPath(pool)), http.StatusSeeOther)
}

// signedInForAccount is the browser session of an account page's visitor; without one it answers (a fault page,
// or the sign-in page that returns here) and reports false.
func (h *Browser) signedInForAccount(w http.ResponseWriter, r *http.Request) (*models.BrowserSession, bool) {
	bs, err := h.currentSession(r)
	if err != nil {
		h.page().Fault(w, r, "account page", err)
		return nil, false
	}
	if bs == nil {
		signInForAccount(w, r)
		return nil, false
	}
	return bs, true
}

// sessionsPage lists the signed-in user's active sessions, whatever their pool. An app links its users to it with
// pool=NAME: a visitor who is not signed in, or signed in as a user of another pool, signs in to that pool first.
func (h *Browser) sessionsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	bs, ok := h.signedInForAccount(w, r)
	if !ok {
		return
	}
	user, err := h.Store.UserByID(ctx, bs.UserID)
	if err != nil {
		h.page().Fault(w, r, "load signed-in user "+bs.UserID, err)
		return
	}
	if pool := r.URL.Query().Get("pool"); pool != "" && pool != user.Pool {
		signInForAccount(w, r)
		return
	}
	list, err := h.Store.ListBrowserSessions(ctx, bs.UserID, h.Now())
	if err != nil {
		h.page().Fault(w, r, "list sessions", err)
		return
	}
	rows := make([]templates.SessionRow, 0, len(list))
	for _, s := range list {
		rows = append(rows, templates.SessionRow{
			ID: s.ID, Device: request.DeviceName(s.UserAgent), IP: s.IP,
			CreatedAt: s.CreatedAt, LastActive: s.LastActiveAt, Current: s.ID == bs.ID,
		})
	}
	flash := ""
	switch r.URL.Query().Get("done") {
	case "one":
		flash = "Session ended."
	case "others":
		flash = "All other sessions ended."
	}
	page.LogRender(r, h.Pages.Sessions(w, http.StatusOK, templates.SessionsPage{
		UserEmail: user.Email, CSRFToken: h.page().CSRFToken(w, r), Action: PathSessions, Flash: flash, Sessions: rows,
	}))
}

// sessionsSubmit ends one of the user's sessions, or all but the current one. Each ended session's refresh
// tokens are revoked with it.
func (h *Browser) sessionsSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.page().ParsePost(w, r) {
		return
	}
	ctx := r.Context()
	now := h.Now()
	bs, ok := h.signedInForAccount(w, r)
	if !ok {
		return
	}
	if r.PostForm.Get("all_others") != "" {
		n, err := h.Store.EndUserBrowserSessions(ctx, bs.UserID, bs.ID, now)
		if err != nil {
			h.page().Fault(w, r, "end other sessions", err)
			return
		}
		request.Logger(ctx).Info("ended other sessions", "user", bs.UserID, "count", n)
		http.Redirect(w, r, PathSessions+"?done=others", http.StatusSeeOther)
		return
	}
	id := r.PostForm.Get("session_id")
	target, err := h.Store.BrowserSessionByID(ctx, id)
	if errors.Is(err, models.ErrNotFound) || (err == nil && target.UserID != bs.UserID) {
		// Someone else's session looks exactly like a missing one.
		h.page().Error(w, r, http.StatusNotFound, "Session not found", "That session does not exist or has already ended.")
		return
	} else if err != nil {
		h.page().Fault(w, r, "load session to end", err)
		return
	}
	if err := h.Store.EndBrowserSession(ctx, target.ID, now); err != nil && !errors.Is(err, models.ErrNotFound) {
		h.page().Fault(w, r, "end session", err)
		return
	}
	if target.ID == bs.ID {
		h.page().ClearCookie(w, sessionCookie)
		page.LogRender(r, h.Pages.LoggedOut(w, http.StatusOK, templates.LoggedOutPage{Message: "You have been signed out."}))
		return
	}
	http.Redirect(w, r, PathSessions+"?done=one", http.StatusSeeOther)
}
