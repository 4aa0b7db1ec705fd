package browser

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/templates"
)

// endSession is OpenID Connect RP-Initiated Logout 1.0. With an id_token_hint naming the current browser
// session the user is signed out at once; otherwise they confirm on a CSRF-protected page, so another site
// cannot sign them out. Ending the session revokes the refresh tokens issued through it.
func (h *Browser) endSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		h.page().Error(w, r, http.StatusBadRequest, "Bad request", "The logout request could not be read.")
		return
	}
	for _, k := range []string{"id_token_hint", "post_logout_redirect_uri", "state", "client_id", "decision"} {
		if len(r.Form[k]) > 1 {
			h.page().Error(w, r, http.StatusBadRequest, "Bad request", "The parameter "+k+" was sent more than once.")
			return
		}
	}
	hintRaw := r.Form.Get("id_token_hint")
	redirectURI := r.Form.Get("post_logout_redirect_uri")
	state := r.Form.Get("state")
	clientID := r.Form.Get("client_id")

	var hint *provider.IDTokenHint
	if hintRaw != "" {
		hh, err := h.Hints.DecodeIDTokenHint(ctx, hintRaw)
		if err != nil && jsonapi.Unavailable(ctx, err) {
			h.page().Fault(w, r, "check id_token_hint", err)
			return
		}
		if err != nil {
			request.Logger(ctx).Info("logout refused", "reason", "invalid id_token_hint")
			h.page().Error(w, r, http.StatusBadRequest, "Invalid logout request", "The id_token_hint is not a valid ID token from this server.")
			return
		}
		hint = &hh
		if clientID == "" {
			clientID = hh.Audience[0]
		} else if !slices.Contains(hh.Audience, clientID) {
			h.page().Error(w, r, http.StatusBadRequest, "Invalid logout request", "client_id does not match the id_token_hint.")
			return
		}
	}
	var client *models.Client
	if clientID != "" {
		c, err := h.Store.ClientByID(ctx, clientID)
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			h.page().Fault(w, r, "load the logging-out client", err)
			return
		}
		if err != nil {
			h.page().Error(w, r, http.StatusBadRequest, "Invalid logout request", "Unknown client.")
			return
		}
		client = c
	}
	if redirectURI != "" {
		// Exact match against the client's registration; without a known client nothing can be matched.
		if client == nil || !slices.Contains(client.PostLogoutRedirectURIs, redirectURI) {
			h.page().Error(w, r, http.StatusBadRequest, "Invalid logout request", "post_logout_redirect_uri is not registered for this client.")
			return
		}
	}

	bs, err := h.currentSession(r)
	if err != nil {
		h.page().Fault(w, r, "logout", err)
		return
	}
	confirmed := bs == nil || (hint != nil && hint.SID != "" && hint.SID == bs.ID && hint.Subject == bs.UserID)
	if !confirmed && r.Method == http.MethodPost && r.PostForm.Get("decision") != "" {
		if !h.page().CheckCSRF(r) {
			h.page().Error(w, r, http.StatusForbidden, "This form has expired", "Reload the page and try again.")
			return
		}
		if r.PostForm.Get("decision") != "logout" {
			page.LogRender(r, h.Pages.LoggedOut(w, http.StatusOK, templates.LoggedOutPage{Message: "You are still signed in."}))
			return
		}
		confirmed = true
	}
	if !confirmed {
		hidden := map[string]string{}
		for k, v := range map[string]string{"id_token_hint": hintRaw, "post_logout_redirect_uri": redirectURI, "state": state, "client_id": clientID} {
			if v != "" {
				hidden[k] = v
			}
		}
		name := ""
		if client != nil {
			name = client.Name
		}
		page.LogRender(r, h.Pages.Logout(w, http.StatusOK, templates.LogoutPage{
			Action: provider.PathEndSession, CSRFToken: h.page().CSRFToken(w, r), ClientName: name, Hidden: hidden,
			FormActionExtra: nonEmpty(redirectURI),
		}))
		return
	}

	var frames []string
	if bs != nil {
		if err := h.Store.EndBrowserSession(ctx, bs.ID, h.Now()); err != nil && !errors.Is(err, models.ErrNotFound) {
			h.page().Fault(w, r, "end browser session", err)
			return
		}
		request.Logger(ctx).Info("signed out", "user", bs.UserID, "session", bs.ID)
		// Back-channel logouts were enqueued with the end; the front channel is this page's iframes. Not
		// finding them is no reason to fail a sign-out that happened.
		fc, err := h.Store.FrontchannelLogouts(ctx, bs.ID)
		if err != nil {
			request.Logger(ctx).Warn("front-channel logouts not loaded", "err", err)
		}
		frames = h.frontchannelURLs(fc, bs.ID)
	}
	h.page().ClearCookie(w, sessionCookie)
	if redirectURI != "" && len(frames) > 0 {
		// The frames must load before the user leaves: the page shows them and a way on.
		page.LogRender(r, h.Pages.LoggedOut(w, http.StatusOK, templates.LoggedOutPage{Message: "You have been signed out.",
			FrontchannelLogouts: frames, ContinueURL: withState(redirectURI, state)}))
		return
	}
	if redirectURI != "" {
		u, _ := url.Parse(redirectURI)
		if state != "" {
			q := u.Query()
			q.Set("state", state)
			u.RawQuery = q.Encode()
		}
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	page.LogRender(r, h.Pages.LoggedOut(w, http.StatusOK, templates.LoggedOutPage{Message: "You have been signed out.", FrontchannelLogouts: frames}))
}

// frontchannelURLs are the URLs the signed-out page frames (OpenID Connect Front-Channel Logout §3): each
// client's frontchannel_logout_uri, with iss and sid added when it asked for them.
func (h *Browser) frontchannelURLs(fc []models.FrontchannelLogout, sid string) []string {
	var out []string
	for _, f := range fc {
		u, err := url.Parse(f.URI)
		if err != nil {
			continue
		}
		if f.SessionRequired {
			q := u.Query()
			q.Set("iss", h.Issuer)
			q.Set("sid", sid)
			u.RawQuery = q.Encode()
		}
		out = append(out, u.String())
	}
	return out
}

// withState is the post-logout redirect URI with state added, if there is one.
func withState(redirectURI, state string) string {
	u, err := url.Parse(redirectURI)
	if err != nil || state == "" {
		return redirectURI
	}
	q := u.Query()
	q.Set("state", state)
	u.RawQuery = q.Encode()
	return u.String()
}
