package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/templates"
)

// authorize is the OAuth 2.0 authorization endpoint (response_type=code). A request that needs the user to sign
// in or consent is parked as a challenge; the login and consent forms finish it and send the browser back here
// with only ?lk_challenge=ID, and the original parameters are restored from the challenge.
func (h *Browser) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := h.Now()

	chal, r, ok := h.restoreChallenge(w, r)
	if !ok {
		return
	}
	ar, err := h.OAuth.NewAuthorizeRequest(ctx, r)
	if err != nil {
		h.authorizeError(w, r, ar, err)
		return
	}
	client, ok := ar.GetClient().(*models.Client)
	if !ok {
		h.authorizeError(w, r, ar, fosite.ErrServerError.WithDebug("unexpected client type"))
		return
	}
	form := ar.GetRequestForm()
	// PKCE is required of public clients (RFC 9700 §2.1.1); refuse before the user signs in or consents, not after.
	if client.IsPublic() {
		switch method := form.Get("code_challenge_method"); {
		case form.Get("code_challenge") == "":
			h.authorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHint("Public clients must use PKCE: code_challenge is missing."))
			return
		case method != "S256":
			h.authorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256."))
			return
		}
	}
	prompts := strings.Fields(form.Get("prompt"))
	for _, p := range prompts {
		if p != "none" && p != "login" && p != "consent" {
			h.authorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHintf("Unsupported prompt value '%s'.", p))
			return
		}
	}
	promptNone := slices.Contains(prompts, "none")
	if promptNone && len(prompts) > 1 {
		h.authorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with other values."))
		return
	}
	maxAge := int64(-1)
	if v := form.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			h.authorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHint("max_age must be a non-negative integer."))
			return
		}
		maxAge = n
	}
	requestedAt := now
	if chal != nil {
		requestedAt = chal.CreatedAt
	}

	bs := h.currentSession(r)
	var user *models.User
	if bs != nil {
		user, err = h.Store.UserByID(ctx, bs.UserID)
		if err != nil || user.Disabled {
			// The account went away or was disabled since sign-in: that session is over.
			_ = h.Store.EndBrowserSession(ctx, bs.ID, now)
			h.clearCookie(w, sessionCookie)
			bs, user = nil, nil
		}
	}
	if user != nil && user.Pool != client.Pool {
		// Signed in, but as a user of another pool: this client can only sign in its own pool's users.
		bs, user = nil, nil
	}
	freshLogin := bs != nil && chal != nil && chal.LoginAt != nil && chal.BrowserSessionID == bs.ID
	needLogin := bs == nil ||
		(slices.Contains(prompts, "login") && !freshLogin) ||
		(maxAge >= 0 && now.Sub(bs.AuthTime) > time.Duration(maxAge)*time.Second && !freshLogin)
	if needLogin {
		if promptNone {
			h.authorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The user is not signed in."))
			return
		}
		if chal, ok = h.ensureChallenge(w, r, ar, chal); !ok {
			return
		}
		email := ""
		if user != nil {
			email = user.Email
		}
		_ = h.Pages.Login(w, http.StatusOK, templates.LoginPage{
			Action: PathLogin, CSRFToken: h.csrfToken(w, r), Challenge: chal.ID, ClientName: client.Name, Email: email,
			FormActionExtra: []string{ar.GetRedirectURI().String()},
		})
		return
	}

	requested := ar.GetRequestedScopes()
	// Consent recorded on the challenge counts only for the browser session that gave it.
	freshConsent := chal != nil && chal.ConsentAt != nil && chal.BrowserSessionID == bs.ID
	needConsent := slices.Contains(prompts, "consent") && !freshConsent
	if !client.FirstParty && !needConsent && !freshConsent {
		granted, err := h.Store.ConsentedScopes(ctx, user.ID, client.ID)
		if err != nil {
			h.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error()))
			return
		}
		for _, s := range requested {
			if !slices.Contains(granted, s) {
				needConsent = true
				break
			}
		}
	}
	if needConsent {
		if promptNone {
			h.authorizeError(w, r, ar, fosite.ErrConsentRequired.WithHint("The user has not consented to this request."))
			return
		}
		if chal, ok = h.ensureChallenge(w, r, ar, chal); !ok {
			return
		}
		_ = h.Pages.Consent(w, http.StatusOK, templates.ConsentPage{
			Action: PathConsent, CSRFToken: h.csrfToken(w, r), Challenge: chal.ID, ClientName: client.Name,
			UserEmail: user.Email, Scopes: describeScopes(requested),
			FormActionExtra: []string{ar.GetRedirectURI().String()},
		})
		return
	}

	// fosite has checked every requested scope and audience against the client's registration.
	for _, s := range requested {
		ar.GrantScope(s)
	}
	for _, a := range ar.GetRequestedAudience() {
		ar.GrantAudience(a)
	}
	session := provider.SessionFor(identityOf(user), ar.GetGrantedScopes(), bs.ID, bs.AuthTime, requestedAt)
	session.ClientID = client.ID
	resp, err := h.OAuth.NewAuthorizeResponse(ctx, ar, session)
	if err != nil {
		h.authorizeError(w, r, ar, err)
		return
	}
	if chal != nil {
		if err := h.Store.DeleteAuthChallenge(ctx, chal.ID); err != nil {
			Logger(ctx).Warn("delete finished challenge", "error", err)
		}
	}
	h.OAuth.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// identityOf turns a user row into what the provider puts in tokens.
func identityOf(u *models.User) provider.Identity {
	return provider.Identity{
		UserID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name,
		Roles: u.Roles, Extras: u.Extras, Pool: u.Pool, UpdatedAt: u.UpdatedAt,
	}
}

// restoreChallenge swaps a ?lk_challenge=ID request for the parked original. It answers the browser itself when
// the challenge is unknown or expired.
func (h *Browser) restoreChallenge(w http.ResponseWriter, r *http.Request) (*models.AuthChallenge, *http.Request, bool) {
	q := r.URL.Query()
	id := q.Get(challengeParam)
	if id == "" {
		return nil, r, true
	}
	if len(q) != 1 || len(q[challengeParam]) != 1 || len(id) > 128 {
		h.errorPage(w, r, http.StatusBadRequest, "Bad request", "This sign-in link is malformed.")
		return nil, r, false
	}
	chal, err := h.Store.AuthChallenge(r.Context(), id, h.Now())
	if errors.Is(err, models.ErrNotFound) {
		h.errorPage(w, r, http.StatusBadRequest, "This sign-in request has expired", "Go back to the application and start signing in again.")
		return nil, r, false
	} else if err != nil {
		Logger(r.Context()).Error("load challenge", "error", err)
		h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "Please try again.")
		return nil, r, false
	}
	r2 := r.Clone(r.Context())
	r2.Method = http.MethodGet
	r2.URL.RawQuery = chal.Query
	r2.Form, r2.PostForm, r2.Body = nil, nil, http.NoBody
	r2.ContentLength = 0
	return chal, r2, true
}

// ensureChallenge parks the authorization request (with PAR requests expanded to their parameters) unless it
// already is parked.
func (h *Browser) ensureChallenge(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, chal *models.AuthChallenge) (*models.AuthChallenge, bool) {
	if chal != nil {
		return chal, true
	}
	q := url.Values{}
	for k, v := range ar.GetRequestForm() {
		if k == "request_uri" || k == challengeParam {
			continue
		}
		q[k] = v
	}
	chal, err := h.Store.CreateAuthChallenge(r.Context(), q.Encode(), ar.GetClient().GetID(), h.Now(), h.ChallengeTTL)
	if err != nil {
		h.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error()))
		return nil, false
	}
	return chal, true
}

// authorizeError sends an error to the client when its redirect URI has been validated, and shows our own page
// otherwise: an unverified redirect URI never receives anything.
func (h *Browser) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	ctx := r.Context()
	rfc := fosite.ErrorToRFC6749Error(err)
	noteOAuthError(ctx, w, "authorize", err)
	w.Header().Del("WWW-Authenticate")
	if ar == nil || !ar.IsRedirectURIValid() {
		msg := rfc.DescriptionField
		if rfc.HintField != "" {
			msg += " " + rfc.HintField
		}
		// Our page is for a person, not an HTTP client authenticating: any client-side problem is a 400.
		status := http.StatusBadRequest
		if rfc.CodeField >= 500 {
			status = http.StatusInternalServerError
		}
		h.errorPage(w, r, status, "This sign-in request is invalid", msg)
		return
	}
	h.OAuth.WriteAuthorizeError(ctx, w, ar, err)
}

var scopeDescriptions = map[string]string{
	provider.ScopeOpenID:        "Confirm who you are (your account identifier)",
	provider.ScopeProfile:       "See your name and profile details",
	provider.ScopeEmail:         "See your email address",
	provider.ScopeRoles:         "See the roles assigned to you",
	provider.ScopeOfflineAccess: "Stay signed in and act for you when you are not using it",
}

func describeScopes(scopes []string) []templates.ScopeInfo {
	out := make([]templates.ScopeInfo, 0, len(scopes))
	for _, s := range scopes {
		d, ok := scopeDescriptions[s]
		if !ok {
			d = "Access: " + s
		}
		out = append(out, templates.ScopeInfo{Name: s, Description: d})
	}
	return out
}
