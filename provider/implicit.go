package provider

import (
	"context"
	"slices"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
)

// The ID-token-only front channel: OpenID Connect implicit with response_type=id_token and nothing else, for
// clients registered with the id_token response type and the implicit grant (no-code tools whose OIDC library
// asks for an ID token alone, e.g. oidc-client 1.x). No access token is ever sent in a URL: response_type
// "token" and "id_token token" are refused for every client (RFC 9700 §2.1.2).

// Names of the implicit flow as clients register it.
const (
	GrantTypeImplicit   = "implicit"
	ResponseTypeIDToken = "id_token"
)

// IDTokenOnly reports whether an authorization request asks for the front channel's ID token alone.
func IDTokenOnly(ar fosite.AuthorizeRequester) bool {
	return ar.GetResponseTypes().ExactOne(ResponseTypeIDToken)
}

// CheckFrontChannel is the rule for what an authorization request may have sent back through the browser, the
// one the composed implicit handler applies and the authorization endpoint checks before anyone signs in:
// response_type is code, or id_token alone; an id_token request asks for the openid scope, carries a nonce of at
// least fosite.MinParameterEntropy characters, is not answered in the query (fragment or form_post), and names
// one of the client's redirect URIs exactly (see ExactRedirectURI).
func CheckFrontChannel(ar fosite.AuthorizeRequester) error {
	rt := ar.GetResponseTypes()
	switch {
	case rt.ExactOne("code"):
		return nil
	case !IDTokenOnly(ar):
		return fosite.ErrUnsupportedResponseType.WithHint("Only response_type 'code', or 'id_token' for clients registered for it, is supported: no access token is sent in a URL.")
	}
	form := ar.GetRequestForm()
	switch nonce := form.Get("nonce"); {
	case !ar.GetRequestedScopes().Has(ScopeOpenID):
		return fosite.ErrInvalidRequest.WithHint("response_type 'id_token' needs the 'openid' scope.")
	case nonce == "":
		return fosite.ErrInvalidRequest.WithHint("Parameter 'nonce' must be set when using the OpenID Connect Implicit Flow.")
	case len(nonce) < fosite.MinParameterEntropy:
		return fosite.ErrInsufficientEntropy.WithHintf("Parameter 'nonce' must be at least %d characters long.", fosite.MinParameterEntropy)
	case ar.GetResponseMode() == fosite.ResponseModeQuery:
		return fosite.ErrUnsupportedResponseMode.WithHint("An ID token is never sent in the query: use response_mode 'fragment' or 'form_post'.")
	case !ExactRedirectURI(ar):
		return fosite.ErrInvalidRequest.WithHint("response_type 'id_token' needs a redirect_uri registered for the client, exactly as registered.")
	}
	return nil
}

// ExactRedirectURI reports whether the request names one of its client's registered redirect URIs exactly. The
// implicit flow needs that: fosite's matching also lets a loopback URI differ in its port (RFC 8252 §7.3), which
// is for native apps exchanging a code, not for a page receiving an ID token.
func ExactRedirectURI(ar fosite.AuthorizeRequester) bool {
	raw := ar.GetRequestForm().Get("redirect_uri")
	return raw != "" && slices.Contains(ar.GetClient().GetRedirectURIs(), raw)
}

// idTokenOnlyImplicit is fosite's OpenID Connect implicit handler answering only response_type=id_token, checked
// by CheckFrontChannel first. Any other combination it would handle ("id_token token" issues an access token in
// the fragment) it leaves alone, so nothing handles it and fosite refuses it as unsupported_response_type.
type idTokenOnlyImplicit struct {
	inner fosite.AuthorizeEndpointHandler
}

func (h idTokenOnlyImplicit) HandleAuthorizeEndpointRequest(ctx context.Context, ar fosite.AuthorizeRequester, resp fosite.AuthorizeResponder) error {
	if !IDTokenOnly(ar) {
		return nil
	}
	if err := CheckFrontChannel(ar); err != nil {
		return err
	}
	return h.inner.HandleAuthorizeEndpointRequest(ctx, ar, resp)
}

// idTokenOnlyImplicitFactory composes idTokenOnlyImplicit around compose.OpenIDConnectImplicitFactory.
func idTokenOnlyImplicitFactory(config fosite.Configurator, storage any, strategy any) any {
	return idTokenOnlyImplicit{inner: compose.OpenIDConnectImplicitFactory(config, storage, strategy).(fosite.AuthorizeEndpointHandler)}
}
