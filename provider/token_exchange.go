package provider

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// OAuth 2.0 Token Exchange (RFC 8693): a backend holding a user's token (the subject token) trades it for a token
// for another audience, as the user (impersonation) or as itself acting for the user (delegation, with an actor
// token; the new token says so in `act`). The policy, per client (models.Client.TokenExchangePolicy):
//   - a confidential client that registers the grant, with the audiences it may ask for; anything else is
//     unauthorized_client. An audience (or RFC 8707 resource) outside that list is invalid_target; naming none is
//     invalid_request: an exchange is always for a named audience;
//   - a delegation-only client must present an actor token;
//   - the subject and actor tokens are Latchkey's own: an access token (opaque or JWT) active in the store, a
//     refresh token active in the store, or an ID token we signed, unexpired, issued to the requesting client. The
//     actor token must have been issued to the requesting client: it proves who acts. A token that is not valid,
//     not ours or not acceptable is invalid_request (RFC 8693 §2.2.2);
//   - the subject's user is read again, as at every refresh (fresh.go): a deleted or disabled user, a user of
//     another pool than the client's, or an ended browser session refuses the exchange;
//   - the scope is at most the subject token's (for an ID token: openid) and the client's; invalid_scope otherwise.
//     None asked: the subject's scopes the client also holds;
//   - only an access token is issued (requested_token_type access_token or none): no refresh token, which would
//     outlive the subject token, and no ID token. Its lifetime never exceeds the subject's or the actor's.
//
// The issued token is a grant of its own (revocable and introspectable like any), tied to the subject's browser
// session by its sid: ending that session (logout, expiry, the user disabled) revokes it with the rest. Revoking
// the subject token alone does not.

// Token exchange grant and token type identifiers (RFC 8693 §2.1, §3).
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken  = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
)

// tokenExchangeClient is a client that may carry a token exchange policy (models.Client).
type tokenExchangeClient interface {
	TokenExchangePolicy() (audiences []string, delegationOnly bool)
	SignsInPool(pool string) bool
}

// tokenExchange is the token endpoint handler of the token exchange grant.
type tokenExchange struct {
	config interface {
		fosite.ScopeStrategyProvider
		fosite.AccessTokenLifespanProvider
	}
	store  Storage
	core   oauth2.CoreStrategy
	keys   SigningKeys
	issuer string
	dir    Directory
	now    func() time.Time
}

var _ fosite.TokenEndpointHandler = (*tokenExchange)(nil)

func (h *tokenExchange) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (h *tokenExchange) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(GrantTypeTokenExchange)
}

func (h *tokenExchange) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	ar, ok := r.(*fosite.AccessRequest)
	if !ok {
		return fosite.ErrServerError.WithDebugf("unexpected access request type %T", r)
	}
	sess, ok := r.GetSession().(*Session)
	if !ok {
		return fosite.ErrServerError.WithDebugf("unexpected session type %T", r.GetSession())
	}
	client := r.GetClient()
	policy, _ := client.(tokenExchangeClient)
	var audiences []string
	var delegationOnly bool
	if policy != nil {
		audiences, delegationOnly = policy.TokenExchangePolicy()
	}
	if policy == nil || len(audiences) == 0 || !client.GetGrantTypes().Has(GrantTypeTokenExchange) || client.IsPublic() {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to exchange tokens.")
	}
	form := r.GetRequestForm()
	if form.Get("subject_token") == "" || form.Get("subject_token_type") == "" {
		return fosite.ErrInvalidRequest.WithHint("The subject_token and subject_token_type parameters are required.")
	}
	if (form.Get("actor_token") == "") != (form.Get("actor_token_type") == "") {
		return fosite.ErrInvalidRequest.WithHint("The actor_token and actor_token_type parameters go together.")
	}
	switch form.Get("requested_token_type") {
	case "", TokenTypeAccessToken:
	default:
		return fosite.ErrInvalidRequest.WithHint("Only an access token (urn:ietf:params:oauth:token-type:access_token) is issued by token exchange.")
	}
	if delegationOnly && form.Get("actor_token") == "" {
		return fosite.ErrInvalidRequest.WithHint("This client exchanges tokens by delegation only: an actor_token is required.")
	}
	asked := r.GetRequestedAudience()
	if len(asked) == 0 {
		return fosite.ErrInvalidRequest.WithHint("Name the audience or resource the token is for.")
	}
	for _, a := range asked {
		if !slices.Contains(audiences, a) {
			return ErrInvalidTarget.WithHintf("The client may not exchange tokens for the audience '%s'.", a)
		}
	}

	subject, err := h.readToken(ctx, form.Get("subject_token"), form.Get("subject_token_type"), client.GetID(), false)
	if err != nil {
		return withHintPrefix(err, "subject_token")
	}
	if err := sameSender(ctx, subject); err != nil {
		return withHintPrefix(err, "subject_token")
	}
	if depth := actDepth(subject.session.Act); form.Get("actor_token") != "" && depth >= MaxActDepth {
		return fosite.ErrInvalidRequest.WithHintf("The subject_token has been exchanged by delegation %d times already; at most %d actors are chained.", depth, MaxActDepth)
	}
	var actor *exchangedToken
	if form.Get("actor_token") != "" {
		if actor, err = h.readToken(ctx, form.Get("actor_token"), form.Get("actor_token_type"), client.GetID(), true); err != nil {
			return withHintPrefix(err, "actor_token")
		}
		if err := sameSender(ctx, actor); err != nil {
			return withHintPrefix(err, "actor_token")
		}
	}

	id, err := h.dir.GrantUser(ctx, subject.session.Subject)
	switch {
	case errors.Is(err, ErrGrantEnded):
		return fosite.ErrInvalidRequest.WithHint("The subject_token is not about an existing, enabled user.")
	case err != nil:
		return fosite.ErrServerError.WithWrap(err).WithDebugf("read the subject's user: %s", err)
	case !policy.SignsInPool(id.Pool):
		return fosite.ErrInvalidRequest.WithHint("The subject_token's user is not of this client's user pool.")
	}
	if sid := subject.session.SID; sid != "" {
		err := h.dir.UseGrantSession(ctx, sid, h.now())
		if errors.Is(err, ErrGrantEnded) {
			return fosite.ErrInvalidRequest.WithHint("The session the subject_token was issued in has ended.")
		} else if err != nil {
			return fosite.ErrServerError.WithWrap(err).WithDebugf("use the subject's session: %s", err)
		}
	}

	if err := h.grantScopes(ctx, r, subject); err != nil {
		return err
	}
	for _, a := range asked {
		r.GrantAudience(a)
	}
	h.fillSession(sess, subject, actor, id, r.GetGrantedScopes())

	now := h.now().UTC()
	ar.RequestedAt = now
	exp := now.Add(fosite.GetEffectiveLifespan(client, fosite.GrantType(GrantTypeTokenExchange), fosite.AccessToken, h.config.GetAccessTokenLifespan(ctx)))
	for _, t := range []*exchangedToken{subject, actor} {
		if t != nil && !t.expiresAt.IsZero() && t.expiresAt.Before(exp) {
			exp = t.expiresAt
		}
	}
	sess.SetExpiresAt(fosite.AccessToken, exp.Round(time.Second))
	return nil
}

// grantScopes grants the asked scopes, each held by the subject token and the client; none asked: those of the
// subject's the client holds.
func (h *tokenExchange) grantScopes(ctx context.Context, r fosite.AccessRequester, subject *exchangedToken) error {
	clientScopes := r.GetClient().GetScopes()
	strategy := h.config.GetScopeStrategy(ctx)
	asked := r.GetRequestedScopes()
	if len(asked) == 0 {
		for _, s := range subject.scopes {
			if strategy(clientScopes, s) {
				r.GrantScope(s)
			}
		}
		return nil
	}
	for _, s := range asked {
		switch {
		case !strategy(clientScopes, s):
			return fosite.ErrInvalidScope.WithHintf("The client may not request scope '%s'.", s)
		case !subject.scopes.Has(s):
			return fosite.ErrInvalidScope.WithHintf("The scope '%s' was not granted to the subject_token; an exchange may only narrow the scope.", s)
		}
		r.GrantScope(s)
	}
	return nil
}

// fillSession makes sess the exchanged token's: the subject's user as now, in the subject's browser session, with
// the actor chain (RFC 8693 §4.1): with an actor, the actor is the current one and the subject's own chain nests
// under it; without (impersonation), the subject's chain is kept as it was.
func (h *tokenExchange) fillSession(sess *Session, subject, actor *exchangedToken, id Identity, granted []string) {
	src := subject.session
	sess.Subject = id.UserID
	sess.SID = src.SID
	sess.AuthTime = src.AuthTime
	sess.GrantExtras = cloneJSONMap(src.GrantExtras)
	sess.AccessTokenLifespan = src.AccessTokenLifespan
	sess.Act = cloneJSONMap(src.Act)
	if actor != nil {
		act := map[string]any{"sub": actor.session.Subject, "client_id": actor.clientID}
		if len(src.Act) > 0 {
			act["act"] = cloneJSONMap(src.Act)
		}
		sess.Act = act
	}
	sess.IDTokenClaims().Subject = id.UserID
	sess.applyIdentity(id, granted)
	sess.current = &id
}

func (h *tokenExchange) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	token, sig, err := h.core.GenerateAccessToken(ctx, r)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebugf("generate access token: %s", err)
	}
	if err := h.store.CreateAccessTokenSession(ctx, sig, r.Sanitize(nil)); err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebugf("store access token: %s", err)
	}
	resp.SetAccessToken(token)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(r.GetSession().GetExpiresAt(fosite.AccessToken).Sub(h.now()).Round(time.Second))
	resp.SetScopes(r.GetGrantedScopes())
	resp.SetExtra("issued_token_type", TokenTypeAccessToken)
	return nil
}

// withHintPrefix names which parameter an invalid_request was about.
func withHintPrefix(err error, param string) error {
	var e *fosite.RFC6749Error
	if errors.As(err, &e) && e.ErrorField == fosite.ErrInvalidRequest.ErrorField {
		return e.WithHintf("The %s is not acceptable: %s", param, e.HintField)
	}
	return err
}

// MaxActDepth is how many actors a delegation chain may name (act nested in act, RFC 8693 §4.1): each exchange by
// delegation adds one, and the chain is carried in every token and stored session.
const MaxActDepth = 5

// actDepth is how many actors act names.
func actDepth(act map[string]any) int {
	n := 0
	for len(act) > 0 {
		n++
		act, _ = act["act"].(map[string]any)
	}
	return n
}

// sameSender refuses a DPoP-bound token (RFC 9449) presented by a request without a proof by its key: exchanging
// it would hand out an unbound copy, so whoever stole the token would no longer need the key. With the proof,
// the exchanged token is bound to the same key (dpopBinding).
func sameSender(ctx context.Context, t *exchangedToken) error {
	if jkt := t.session.DPoPJKT; jkt != "" && dpopKeyOf(ctx) != jkt {
		return fosite.ErrInvalidRequest.WithHint("The token is bound to a DPoP key: send the exchange with a DPoP proof by that key.")
	}
	return nil
}
