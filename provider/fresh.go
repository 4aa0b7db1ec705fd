package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// ErrGrantEnded is what a Directory answers when the user or browser session behind a grant is gone: the user
// was deleted or disabled, the session ended or passed its idle or absolute expiry. Any other error is the
// lookup failing, and refuses the request without ending the grant.
var ErrGrantEnded = errors.New("the user or session behind the grant is gone")

// Directory is what the provider reads again each time it issues tokens from a stored grant (a code exchange, a
// refresh), so that tokens say what is true now rather than what was true at sign-in.
type Directory interface {
	// GrantUser returns the user as they are now; ErrGrantEnded if deleted or disabled.
	GrantUser(ctx context.Context, userID string) (Identity, error)
	// UseGrantSession records a use, at now, of the browser session a grant was made in (it counts as activity
	// for the idle expiry); ErrGrantEnded if the session has ended or expired.
	UseGrantSession(ctx context.Context, sid string, now time.Time) error
}

// currentGrant is the token endpoint handler composed after fosite's. For the authorization code and refresh
// grants it runs once fosite has loaded the stored grant into the request, before anything is issued or rotated:
//   - a refresh may ask for a narrower scope (RFC 6749 §6); anything the grant does not hold is invalid_scope;
//   - the user is read again; a deleted or disabled user, or an ended or expired browser session, ends the grant
//     (invalid_grant, and its tokens are revoked);
//   - the tokens about to be issued carry the user's roles, extras, email, name and pool as they are now.
//
// A failing lookup is a server error: nothing is revoked and the refresh token is not spent.
// Client credentials grants have no user and never reach it.
type currentGrant struct {
	dir   Directory
	store Storage
	core  oauth2.CoreStrategy
	now   func() time.Time
}

var _ fosite.TokenEndpointHandler = (*currentGrant)(nil)

func (h *currentGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (h *currentGrant) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	g := r.GetGrantTypes()
	return g.ExactOne("refresh_token") || g.ExactOne("authorization_code")
}

func (h *currentGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	sess, ok := r.GetSession().(*Session)
	if !ok {
		return fosite.ErrServerError.WithDebugf("unexpected session type %T", r.GetSession())
	}
	if r.GetGrantTypes().ExactOne("refresh_token") {
		if err := narrowScope(r, sess); err != nil {
			return err
		}
	}
	id, err := h.dir.GrantUser(ctx, sess.Subject)
	if errors.Is(err, ErrGrantEnded) {
		return h.end(ctx, r, "The user of this grant no longer exists or is disabled.")
	} else if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebugf("read the grant's user: %s", err)
	}
	if sess.SID != "" {
		err := h.dir.UseGrantSession(ctx, sess.SID, h.now())
		if errors.Is(err, ErrGrantEnded) {
			return h.end(ctx, r, "The session this grant was made in has ended or expired.")
		} else if err != nil {
			return fosite.ErrServerError.WithWrap(err).WithDebugf("use the grant's session: %s", err)
		}
	}
	sess.current = &id
	return nil
}

func (h *currentGrant) PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error {
	return fosite.ErrUnknownRequest
}

// end revokes the grant (its refresh and access tokens, and for a code exchange the code) and answers
// invalid_grant. It runs on a context the client cannot cancel, so hanging up cannot keep the grant alive.
func (h *currentGrant) end(ctx context.Context, r fosite.AccessRequester, hint string) (err error) {
	ctx, err = h.store.BeginTX(context.WithoutCancel(ctx))
	if err == nil {
		err = h.revoke(ctx, r)
		if err == nil {
			err = h.store.Commit(ctx)
		} else if rbErr := h.store.Rollback(ctx); rbErr != nil {
			err = errors.Join(err, rbErr)
		}
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebugf("revoke an ended grant: %s", err)
	}
	return fosite.ErrInvalidGrant.WithHint(hint)
}

func (h *currentGrant) revoke(ctx context.Context, r fosite.AccessRequester) error {
	if code := r.GetRequestForm().Get("code"); code != "" && r.GetGrantTypes().ExactOne("authorization_code") {
		if err := h.store.InvalidateAuthorizeCodeSession(ctx, h.core.AuthorizeCodeSignature(ctx, code)); err != nil && !errors.Is(err, fosite.ErrNotFound) {
			return fmt.Errorf("invalidate code: %w", err)
		}
	}
	return revokeGrant(ctx, h.store, r.GetID())
}

// narrowScope grants a refresh only the scopes its scope parameter names, each of which the grant must hold
// (RFC 6749 §6). fosite's refresh handler has granted the stored grant's scope and ignores the parameter.
// The new refresh token keeps the grant's whole scope (grantStore).
func narrowScope(r fosite.AccessRequester, sess *Session) error {
	asked := strings.Fields(r.GetRequestForm().Get("scope"))
	if len(asked) == 0 {
		return nil
	}
	granted := r.GetGrantedScopes()
	for _, s := range asked {
		if !granted.Has(s) {
			return fosite.ErrInvalidScope.WithHintf("The scope '%s' was not granted to this refresh token; a refresh may only narrow the scope.", s)
		}
	}
	ar, ok := r.(*fosite.AccessRequest)
	if !ok {
		return fosite.ErrServerError.WithDebugf("unexpected access request type %T", r)
	}
	sess.refreshScopes = slices.Clone(granted)
	ar.GrantedScope = slices.DeleteFunc(slices.Clone(granted), func(s string) bool { return !slices.Contains(asked, s) })
	return nil
}

// withCurrentUser brings the session's claims about the user up to date with the user as read for this request,
// for the scopes granted. Token generation calls it: for a code exchange fosite decodes the stored code's session
// into the request once more after our handler ran, and again before it signs the ID token.
func withCurrentUser(r fosite.Requester) {
	if s, ok := r.GetSession().(*Session); ok && s.current != nil {
		s.applyIdentity(*s.current, r.GetGrantedScopes())
	}
}

// grantStore is the storage fosite is composed with. After a refresh that narrowed its scope, the access token
// has the narrower scope but the new refresh token the grant's whole scope, as RFC 6749 §6 requires.
type grantStore struct{ Storage }

func (s grantStore) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	if sess, ok := req.GetSession().(*Session); ok && sess.refreshScopes != nil {
		whole := sess.Clone().(*Session)
		whole.refreshScopes = nil
		if whole.current != nil {
			whole.applyIdentity(*whole.current, sess.refreshScopes)
		}
		req = wholeScope{Requester: req, scopes: sess.refreshScopes, session: whole}
	}
	return s.Storage.CreateRefreshTokenSession(ctx, signature, accessSignature, req)
}

// wholeScope is a requester with the grant's whole scope and the session that goes with it.
type wholeScope struct {
	fosite.Requester
	scopes  fosite.Arguments
	session *Session
}

func (w wholeScope) GetGrantedScopes() fosite.Arguments { return w.scopes }
func (w wholeScope) GetSession() fosite.Session         { return w.session }
