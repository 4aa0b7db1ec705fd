package provider

import (
	"context"

	"github.com/ory/fosite"
)

// GrantTypePassword is RFC 6749 §4.3's resource owner password credentials grant. RFC 9700 §2.4 says it must not
// be used; Latchkey serves it only to first-party clients that register it (models.Client.Validate refuses it
// for any other), for the operator's own apps built in tools that offer nothing better (Bubble's API Connector).
const GrantTypePassword = "password"

// passwordGrant is the token endpoint handler of the password grant, composed into the public token endpoint.
// Its request is handled in two halves around the password check, which is not the provider's to make (the
// check is throttled per account and IP, and starts a browser session: handlers/oauth does both):
//   - HandleTokenEndpointRequest (inside NewAccessRequest, after fosite authenticated the client) refuses what
//     needs no password hash: a client that is not first-party or did not register the grant, a missing username
//     or password, a scope or audience the client may not have. An empty scope asks for every scope of the
//     client, as the token API's sign-in does.
//   - the caller then checks the password, starts the session and puts the signed-in user's Session on the
//     request (SessionFor, with its SID);
//   - PopulateTokenEndpointResponse issues exactly as the first-party sign-in does (signInGrant), and refuses
//     a request whose session carries no signed-in user, so nothing is issued unless the caller signed one in.
type passwordGrant struct {
	signIn   *signInGrant
	audience fosite.AudienceStrategyProvider
}

var _ fosite.TokenEndpointHandler = (*passwordGrant)(nil)

func (h *passwordGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (h *passwordGrant) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(GrantTypePassword)
}

func (h *passwordGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	client := r.GetClient()
	if !client.GetGrantTypes().Has(GrantTypePassword) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not registered for the password grant.")
	}
	if fp, ok := client.(firstPartyClient); !ok || !fp.IsFirstParty() {
		// The client rules refuse to store such a client; a row changed behind their back is refused here too.
		return fosite.ErrUnauthorizedClient.WithHint("The password grant is only for first-party apps.")
	}
	form := r.GetRequestForm()
	if form.Get("username") == "" || form.Get("password") == "" {
		return fosite.ErrInvalidRequest.WithHint("The username and password parameters are required.")
	}
	if len(r.GetRequestedScopes()) == 0 {
		r.SetRequestedScopes(client.GetScopes())
	}
	if err := h.signIn.grantScopes(ctx, r); err != nil {
		return err
	}
	if err := h.audience.GetAudienceStrategy(ctx)(client.GetAudience(), r.GetRequestedAudience()); err != nil {
		return err
	}
	for _, aud := range r.GetRequestedAudience() {
		r.GrantAudience(aud)
	}
	return nil
}

func (h *passwordGrant) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	if s, ok := r.GetSession().(*Session); !ok || s.Subject == "" || s.SID == "" {
		return fosite.ErrServerError.WithDebug("password grant: no signed-in user on the request")
	}
	if err := h.signIn.startLifespans(ctx, r); err != nil {
		return err
	}
	if err := h.signIn.issue(ctx, r, resp); err != nil {
		// A fault, for fosite's writer: server_error (503 when storage could not be reached; handlers/jsonapi).
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	return nil
}
