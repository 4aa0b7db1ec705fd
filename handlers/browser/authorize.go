package browser

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/templates"
)

// authorize is the OAuth 2.0 authorization endpoint: response_type=code, or id_token alone for clients registered
// for the implicit flow (provider.CheckFrontChannel). A request that needs the user to sign
// in is handed to the sign-in form sealed (pendingRequest), so nothing is stored for an anonymous browser. Once
// someone signs in for it, or a signed-in user is asked for consent, it becomes a challenge bound to that browser
// session; the forms then send the browser back here with only ?lk_challenge=ID, and the original parameters are
// restored from the challenge.
func (h *Browser) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := h.Now()

	if !h.authorizeSizeOK(w, r) {
		return
	}
	chal, r, ok := h.restoreChallenge(w, r)
	if !ok {
		return
	}
	ctx = r.Context() // a restored request is marked resumed (parkedRequest)
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
	if provider.IDTokenOnly(ar) && !provider.ExactRedirectURI(ar) {
		// fosite accepted the redirect URI loosely (a loopback port may differ); an ID token, and so an error,
		// goes only to a redirect URI registered exactly: our page answers.
		h.authorizeError(w, r, nil, fosite.ErrInvalidRequest.WithHint("response_type 'id_token' needs a redirect_uri registered for the client, exactly as registered."))
		return
	}
	// Before anyone signs in: what may come back through the browser (no access token; an ID token with a nonce,
	// never in the query).
	if err := provider.CheckFrontChannel(ar); err != nil {
		h.authorizeError(w, r, ar, err)
		return
	}
	demand, err := checkAuthorizeRequest(client.IsPublic(), ar.GetRequestForm())
	if err != nil {
		h.authorizeError(w, r, ar, err)
		return
	}
	// What is parked for sign-in and consent: the parameters with a PAR request expanded (its request_uri is
	// single-use), within the same bound as a request sent directly.
	query := parkedQuery(ar)
	if len(query) > models.MaxChallengeQuery {
		h.tooLong(w, r, len(query))
		return
	}

	bs, err := h.currentSession(r)
	if err != nil {
		h.page().Fault(w, r, "authorize", err)
		return
	}
	var user *models.User
	if bs != nil {
		user, err = h.Store.UserByID(ctx, bs.UserID)
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			// An outage is not a reason to sign anyone out.
			h.page().Fault(w, r, "load the signed-in user", err)
			return
		}
		if err != nil || user.Disabled {
			// The account went away or was disabled since sign-in: that session is over.
			_ = h.Store.EndBrowserSession(ctx, bs.ID, now)
			h.page().ClearCookie(w, sessionCookie)
			bs, user = nil, nil
		}
	}
	if user != nil && user.Pool != client.Pool {
		// Signed in, but as a user of another pool: this client can only sign in its own pool's users.
		bs, user = nil, nil
	}
	if chal != nil && (bs == nil || chal.BrowserSessionID != bs.ID) {
		// Another browser session's challenge (or this browser signed out or in as someone else since): its
		// sign-in and consent are not this session's, only its parameters count.
		chal = nil
	}
	requestedAt := now
	if chal != nil {
		requestedAt = chal.CreatedAt
	}

	facts := authorizeFacts{Demand: demand, FirstParty: client.FirstParty, Session: bs, Challenge: chal,
		Requested: ar.GetRequestedScopes(), Now: now}
	if facts.needsConsentOnRecord() {
		granted, err := h.Store.ConsentedScopes(ctx, user.ID, client.ID)
		if err != nil {
			h.authorizeError(w, r, ar, serverError(err))
			return
		}
		facts.Consented = granted
	}
	switch d := decideAuthorize(facts); d.Step {
	case stepRefuse:
		h.authorizeError(w, r, ar, d.Err)
		return
	case stepSignIn:
		sealed, err := h.sealPending(pendingRequest{Query: query, ClientID: client.ID, RequestedAt: requestedAt, ExpiresAt: now.Add(h.ChallengeTTL),
			Redirect: ar.GetRedirectURI().String()})
		if err != nil {
			h.authorizeError(w, r, ar, serverError(err))
			return
		}
		email := ""
		if user != nil {
			email = user.Email
		}
		page.LogRender(r, h.Pages.Login(w, http.StatusOK, templates.LoginPage{
			Action: PathLogin, CSRFToken: h.page().CSRFToken(w, r), Challenge: sealed, ClientName: client.Name, Email: email,
			FormActionExtra: []string{ar.GetRedirectURI().String()}, Providers: h.providerButtons(r, client.Pool, ""),
			ForgotURL: page.ForgotURL(h.Mail != nil, client.Pool),
		}))
		return
	case stepConsent:
		if chal == nil {
			// Signed in already: the consent form finishes the request in this browser session only.
			chal, err = h.Store.CreateAuthChallenge(ctx, models.AuthChallenge{
				Query: query, ClientID: client.ID, BrowserSessionID: bs.ID, CreatedAt: requestedAt, ExpiresAt: now.Add(h.ChallengeTTL),
			})
			if err != nil {
				h.authorizeError(w, r, ar, serverError(err))
				return
			}
		}
		page.LogRender(r, h.Pages.Consent(w, http.StatusOK, templates.ConsentPage{
			Action: PathConsent, CSRFToken: h.page().CSRFToken(w, r), Challenge: chal.ID, ClientName: client.Name,
			UserEmail: user.Email, Scopes: describeScopes(facts.Requested),
			FormActionExtra: []string{ar.GetRedirectURI().String()},
		}))
		return
	}

	if chal != nil {
		// Finished once: of two tabs resuming the same challenge, one gets the code.
		if err := h.Store.TakeAuthChallenge(ctx, chal.ID, bs.ID, now); errors.Is(err, models.ErrNotFound) {
			h.expiredPage(w, r)
			return
		} else if err != nil {
			h.authorizeError(w, r, ar, serverError(err))
			return
		}
	}
	// fosite has checked every requested scope and audience against the client's registration.
	for _, s := range facts.Requested {
		ar.GrantScope(s)
	}
	for _, a := range ar.GetRequestedAudience() {
		ar.GrantAudience(a)
	}
	session := provider.SessionFor(grant.IdentityOf(user), ar.GetGrantedScopes(), bs.ID, bs.AuthTime, requestedAt)
	session.IDClaims.AuthenticationMethodsReferences = bs.AMR()
	session.ClientID = client.ID
	resp, err := h.OAuth.NewAuthorizeResponse(ctx, ar, session)
	if err != nil {
		h.authorizeError(w, r, ar, err)
		return
	}
	h.OAuth.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// parkedQuery is the request's parameters to restore after sign-in or consent, PAR requests expanded.
func parkedQuery(ar fosite.AuthorizeRequester) string {
	q := url.Values{}
	for k, v := range ar.GetRequestForm() {
		if k == "request_uri" || k == challengeParam {
			continue
		}
		q[k] = v
	}
	return q.Encode()
}

// authorizeSizeOK refuses an authorization request over models.MaxChallengeQuery bytes with our own page. fosite
// sets no limit of its own and would echo an oversized state to the client's redirect URI.
func (h *Browser) authorizeSizeOK(w http.ResponseWriter, r *http.Request) bool {
	if len(r.URL.RawQuery) > models.MaxChallengeQuery {
		h.tooLong(w, r, len(r.URL.RawQuery))
		return false
	}
	if err := r.ParseForm(); err != nil {
		request.Logger(r.Context()).Info("authorize refused", "reason", "unreadable parameters", "error", err)
		h.page().Error(w, r, http.StatusBadRequest, "This sign-in request is invalid", "The request parameters could not be read.")
		return false
	}
	if n := len(r.Form.Encode()); n > models.MaxChallengeQuery {
		h.tooLong(w, r, n)
		return false
	}
	return true
}

func (h *Browser) tooLong(w http.ResponseWriter, r *http.Request, n int) {
	request.Logger(r.Context()).Info("authorize refused", "reason", "request too long", "bytes", n)
	h.page().Error(w, r, http.StatusBadRequest, "This sign-in request is invalid",
		fmt.Sprintf("invalid_request: the authorization request is %d bytes, over the limit of %d. Go back to the application and try again.", n, models.MaxChallengeQuery))
}

// expiredPage answers a sign-in form or resume link that no longer leads anywhere.
func (h *Browser) expiredPage(w http.ResponseWriter, r *http.Request) {
	h.page().Error(w, r, http.StatusBadRequest, "This sign-in request has expired", "Go back to the application and start signing in again.")
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
		h.page().Error(w, r, http.StatusBadRequest, "Bad request", "This sign-in link is malformed.")
		return nil, r, false
	}
	chal, err := h.Store.AuthChallenge(r.Context(), id, h.Now())
	if errors.Is(err, models.ErrNotFound) {
		h.expiredPage(w, r)
		return nil, r, false
	} else if err != nil {
		h.page().Fault(w, r, "load challenge", err)
		return nil, r, false
	}
	return chal, parkedRequest(r, chal.Query), true
}

// parkedRequest is r turned into the GET authorization request with the parked query, for fosite to validate
// again (client, redirect URI, scopes) before anything is sent to the client. Its context is marked resumed: the
// parked parameters are those verified when the request first arrived (a signed request object's, not the object).
func parkedRequest(r *http.Request, query string) *http.Request {
	r2 := r.Clone(provider.ResumedAuthorizeRequest(r.Context()))
	r2.Method = http.MethodGet
	r2.URL.RawQuery = query
	r2.Form, r2.PostForm, r2.MultipartForm, r2.Body = nil, nil, nil, http.NoBody
	r2.ContentLength = 0
	return r2
}

// serverError is a failure on our side at the authorization endpoint, its cause kept for the log; an outage
// becomes temporarily_unavailable in authorizeError.
func serverError(err error) error {
	return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
}

// authorizeError sends an error to the client when its redirect URI has been validated, and shows our own page
// otherwise: an unverified redirect URI never receives anything.
func (h *Browser) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	ctx := r.Context()
	err = jsonapi.NoteOAuthError(ctx, w, "authorize", err)
	rfc := fosite.ErrorToRFC6749Error(err)
	w.Header().Del("WWW-Authenticate")
	if ar == nil || !ar.IsRedirectURIValid() {
		msg := rfc.DescriptionField
		if rfc.HintField != "" {
			msg += " " + rfc.HintField
		}
		// Our page is for a person, not an HTTP client authenticating: any client-side problem is a 400.
		status := http.StatusBadRequest
		if rfc.CodeField >= 500 {
			status = rfc.CodeField
		}
		h.page().Error(w, r, status, "This sign-in request is invalid", msg)
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
