package tokenapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// caller is the authenticated caller of me, logout, password and sessions.
type caller struct {
	user    *models.User
	session *provider.Session
	client  *models.Client   // read fresh: a first-party app of ours
	scopes  fosite.Arguments // what the token was granted
}

// authenticate is authenticateUser for the calls that manage the sign-in itself (logout, password, sessions):
// their token must come from a sign-in session.
func (h *API) authenticate(r *http.Request) (*caller, error) {
	return h.authenticateUser(r, true)
}

// accessToken reads the caller's access token: from Authorization as "Bearer <token>" or as "Basic <token>", the
// raw token and not base64 of user:password, which is what WeWeb's Token-Based Auth plugin sends when its auth
// type is Basic (it has no base64 form, so neither have we: an encoded token is just an invalid one); or from the
// configured custom header, bare or as "Bearer <token>". Empty when there is none.
func (h *API) accessToken(r *http.Request) string {
	token := ""
	if a := r.Header.Get("Authorization"); a != "" {
		if scheme, rest, ok := strings.Cut(a, " "); ok && (strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "Basic") || strings.EqualFold(scheme, dpop.Scheme)) {
			token = strings.TrimSpace(rest)
		}
	}
	if token == "" && h.TokenHeader != "" {
		token = strings.TrimSpace(r.Header.Get(h.TokenHeader))
		if scheme, rest, ok := strings.Cut(token, " "); ok && strings.EqualFold(scheme, "Bearer") {
			token = strings.TrimSpace(rest)
		}
	}
	return token
}

// authenticateUser reads the access token (see accessToken). The token API trusts only its own tokens: active,
// issued for a user (not client_credentials) to a client that is, as read now, a first-party app of ours.
// Anything else is 401 with an RFC 6750 challenge, whichever scheme carried it; a store that cannot answer is
// 503, never 401, so apps do not sign their users out over an outage.
func (h *API) authenticateUser(r *http.Request, needSession bool) (*caller, error) {
	ctx := r.Context()
	token := h.accessToken(r)
	if token == "" {
		return nil, grant.Missing("An access token is required.")
	}
	ar, sess, err := grant.ActiveAccessToken(r, h.OAuth, h.DPoP, token)
	if err != nil {
		if refused := grant.Refusal(err); refused != nil {
			return nil, refused
		}
		if grant.StoreFailed(ctx, err) {
			return nil, fmt.Errorf("api: look up access token: %w", err)
		}
		return nil, grant.Invalid("The access token is invalid, expired or revoked.")
	}
	if ar.GetRequestForm().Get("grant_type") == "client_credentials" || sess.Subject == "" {
		return nil, grant.Invalid("This API takes a user's access token, not a client's.")
	}
	c, err := h.Store.ClientByID(ctx, ar.GetClient().GetID())
	switch {
	case errors.Is(err, models.ErrNotFound):
		return nil, grant.Invalid("The access token is invalid, expired or revoked.")
	case err != nil:
		return nil, fmt.Errorf("api: load the token's client: %w", err)
	case !c.FirstParty:
		request.Logger(ctx).Info("api refused a token of another app", "client", c.ID)
		return nil, grant.Invalid("This API accepts only tokens issued to a first-party app.")
	}
	u, err := h.Store.UserByID(ctx, sess.Subject)
	switch {
	case err != nil && !errors.Is(err, models.ErrNotFound):
		return nil, fmt.Errorf("api: load the token's user: %w", err)
	case err != nil || u.Disabled:
		return nil, grant.Invalid("This token does not belong to an active user.")
	}
	if needSession && sess.SID == "" {
		return nil, jsonapi.BadRequest("This token is not tied to a session; revoke it at " + provider.PathRevoke + ".")
	}
	if sess.SID != "" {
		// A token lives no longer than its session: signed out, ended by a password change, or idle or past its
		// absolute lifetime, the session takes its access tokens with it.
		now := h.Now()
		bs, err := h.Store.BrowserSessionByID(ctx, sess.SID)
		switch {
		case errors.Is(err, models.ErrNotFound):
			return nil, grant.Invalid("The session of this access token has ended.")
		case err != nil:
			return nil, fmt.Errorf("api: load the token's session: %w", err)
		case bs.EndedAt != nil || !now.Before(bs.IdleExpiresAt) || !now.Before(bs.ExpiresAt):
			return nil, grant.Invalid("The session of this access token has ended.")
		case now.Sub(bs.LastActiveAt) > time.Minute:
			_ = h.Store.TouchBrowserSession(ctx, sess.SID, request.ClientIP(r), now, h.SessionIdle)
		}
	}
	return &caller{user: u, session: sess, client: c, scopes: ar.GetGrantedScopes()}, nil
}
