package account

import (
	"errors"
	"net/http"

	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/templates"
)

// sessionsPage lists the signed-in user's active sessions, whatever their pool. An app links its users to it with
// pool=NAME: a visitor who is not signed in, or signed in as a user of another pool, signs in to that pool first.
func (h *Pages) sessionsPage(w http.ResponseWriter, r *http.Request) {
	v, ok := h.visitor(w, r, page.PathSessions)
	if !ok {
		return
	}
	list, err := h.Store.ListBrowserSessions(r.Context(), v.user.ID, h.Now())
	if err != nil {
		h.page().Fault(w, r, "list sessions", err)
		return
	}
	rows := make([]templates.SessionRow, 0, len(list))
	for _, s := range list {
		rows = append(rows, templates.SessionRow{
			ID: s.ID, Device: request.DeviceName(s.UserAgent), IP: s.IP,
			CreatedAt: s.CreatedAt, LastActive: s.LastActiveAt, Current: s.ID == v.session.ID,
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
		UserEmail: v.user.Email, CSRFToken: h.page().CSRFToken(w, r), Action: page.PathSessions, Flash: flash, Sessions: rows,
	}))
}

// sessionsSubmit ends one of the user's sessions, or all but the current one. Each ended session's refresh
// tokens are revoked with it.
func (h *Pages) sessionsSubmit(w http.ResponseWriter, r *http.Request, v *signedIn) {
	ctx, now := r.Context(), h.Now()
	if r.PostForm.Get("all_others") != "" {
		n, err := h.Store.EndUserBrowserSessions(ctx, v.user.ID, v.session.ID, now)
		if err != nil {
			h.page().Fault(w, r, "end other sessions", err)
			return
		}
		request.Logger(ctx).Info("ended other sessions", "user", v.user.ID, "count", n)
		http.Redirect(w, r, page.PathSessions+"?done=others", http.StatusSeeOther)
		return
	}
	target, err := h.Store.BrowserSessionByID(ctx, r.PostForm.Get("session_id"))
	if errors.Is(err, models.ErrNotFound) || (err == nil && target.UserID != v.user.ID) {
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
	if target.ID == v.session.ID {
		h.page().ClearCookie(w, page.SessionCookie)
		page.LogRender(r, h.Pages.LoggedOut(w, http.StatusOK, templates.LoggedOutPage{Message: "You have been signed out."}))
		return
	}
	http.Redirect(w, r, page.PathSessions+"?done=one", http.StatusSeeOther)
}
