package provider

import (
	"context"

	"github.com/ory/fosite"
)

// A refresh token issued to a client that authenticated (a secret or an assertion) is bound to that proof: RFC
// 6749 §6 and RFC 9700 §4.14 make client authentication what keeps a confidential client's stolen refresh token
// useless. The public token endpoint always authenticates a confidential client. The token API identifies a
// first-party app by client_id alone, because no-code apps cannot keep a secret; without this rule a refresh token
// that a confidential app got at the token endpoint (code flow, password grant) would refresh there with no
// secret. So each grant records whether its client proved itself (Session.ClientAuthenticated), and the token API
// refuses to refresh a grant so marked unless the client proves itself again. Grants the token API issued to an
// app identified by client_id alone stay usable by client_id alone, as before.

// clientProved marks a context whose token request authenticated its client (the token API's exchange).
type clientProvedKey struct{}

func withClientProved(ctx context.Context, proved bool) context.Context {
	return context.WithValue(ctx, clientProvedKey{}, proved)
}

// clientProof is the pair of token endpoint handlers that record and check the proof. At the public endpoint
// (tokenAPI false) a confidential client has always authenticated; at the token API the request says
// (withClientProved). Neither handles a grant itself: each answers ErrUnknownRequest after its work, so an
// unsupported grant type stays unsupported.
//   - record, composed first, marks the session in PopulateTokenEndpointResponse, before any handler issues: by
//     then the session is the grant's (fosite loaded it for a refresh or a code; the password grant's caller set it
//     after NewAccessRequest).
//   - require, composed last, refuses in HandleTokenEndpointRequest, once fosite has loaded the grant and before
//     anything is issued or rotated. At the public endpoint it refuses only a client that can no longer prove
//     itself (made public since): fosite authenticates every confidential client there.
type clientProof struct {
	tokenAPI bool
	require  bool
}

var _ fosite.TokenEndpointHandler = clientProof{}

func (clientProof) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (clientProof) CanHandleTokenEndpointRequest(context.Context, fosite.AccessRequester) bool {
	return true
}

// proved says whether the client of r authenticated.
func (h clientProof) proved(ctx context.Context, r fosite.AccessRequester) bool {
	if h.tokenAPI {
		proved, _ := ctx.Value(clientProvedKey{}).(bool)
		return proved
	}
	return r.GetClient() != nil && !r.GetClient().IsPublic()
}

func (h clientProof) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if sess, ok := r.GetSession().(*Session); ok && h.require && sess.ClientAuthenticated &&
		r.GetGrantTypes().ExactOne("refresh_token") && !h.proved(ctx, r) {
		return fosite.ErrInvalidClient.WithHint("This refresh token was issued to the client when it authenticated; authenticate the client (client_secret) to use it.")
	}
	return fosite.ErrUnknownRequest
}

func (h clientProof) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, _ fosite.AccessResponder) error {
	if sess, ok := r.GetSession().(*Session); ok && !h.require && h.proved(ctx, r) {
		sess.ClientAuthenticated = true
	}
	return fosite.ErrUnknownRequest
}
