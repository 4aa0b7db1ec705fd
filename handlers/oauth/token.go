// Package oauth serves the OAuth 2.0 and OpenID Connect protocol endpoints a client or resource server calls:
// token, introspection, revocation, pushed authorization requests, userinfo, discovery and the JWKS. Every error
// of an endpoint fosite owns goes through fosite's writers, after jsonapi.NoteOAuthError has logged it and mapped
// an outage to temporarily_unavailable.
package oauth

import (
	"context"
	"net/http"
	"slices"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/provider"
)

// Token serves the OAuth 2.0 token endpoint (RFC 6749 §3.2).
type Token struct {
	OAuth      fosite.OAuth2Provider
	GrantTypes []string // the grants the provider composed; anything else is unsupported_grant_type
	CORS       *request.CORS
	Clients    ClientCache
	// Issued counts successful token responses by grant type; nil: none.
	Issued interface{ TokenIssued(grantType string) }
	// Password serves the password grant for the first-party clients that register it; nil: the grant is
	// unsupported whatever GrantTypes says.
	Password *PasswordGrant
	// DPoP verifies the request's DPoP proof (RFC 9449), whose key the tokens are then bound to.
	DPoP grant.Proofs
}

func (h *Token) Mount(r *mux.Router) {
	r.Handle(provider.PathToken, h.CORS.WrapRoute(h, request.CORSRoute{Methods: []string{http.MethodPost}}))
}

// singleValued are the token request parameters RFC 6749 §3.2 forbids repeating. resource and audience may repeat.
var singleValued = []string{
	"grant_type", "client_id", "client_secret", "scope", "code", "redirect_uri",
	"refresh_token", "code_verifier", "client_assertion", "client_assertion_type", "username", "password", "device_code",
	"subject_token", "subject_token_type", "actor_token", "actor_token_type", "requested_token_type",
}

func (h *Token) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := h.prepareForm(r); err != nil {
		err = jsonapi.NoteOAuthError(ctx, w, "token", err)
		h.OAuth.WriteAccessError(ctx, w, nil, err)
		return
	}
	jkt, err := h.checkDPoP(w, r)
	if err != nil {
		err = jsonapi.NoteOAuthError(ctx, w, "token", provider.TokenEndpointDPoPError(err))
		h.OAuth.WriteAccessError(ctx, w, nil, err)
		return
	}
	if jkt != "" {
		ctx = provider.WithDPoPKey(ctx, jkt)
		r = r.WithContext(ctx)
	}
	var (
		ar   fosite.AccessRequester
		resp fosite.AccessResponder
	)
	if r.PostForm.Get("grant_type") == provider.GrantTypePassword {
		r = request.Detached(r)
		ctx = r.Context()
		ar, resp, err = h.Password.exchange(w, r, h.OAuth)
	} else {
		ar, resp, err = h.exchange(ctx, r)
	}
	if err != nil {
		err = jsonapi.NoteOAuthError(ctx, w, "token", err)
		h.OAuth.WriteAccessError(ctx, w, ar, err)
		return
	}
	if h.Issued != nil && len(ar.GetGrantTypes()) > 0 {
		h.Issued.TokenIssued(ar.GetGrantTypes()[0])
	}
	if jkt != "" {
		resp.SetTokenType(dpop.TokenType) // RFC 9449 §5
	}
	h.OAuth.WriteAccessResponse(ctx, w, ar, resp)
}

// checkDPoP verifies the request's DPoP proof, if any, and answers its key's thumbprint; it sends the current
// server nonce with every response when nonces are on.
func (h *Token) checkDPoP(w http.ResponseWriter, r *http.Request) (string, error) {
	if h.DPoP == nil {
		if len(r.Header.Values(dpop.HeaderName)) > 0 {
			return "", &dpop.Error{Code: dpop.CodeInvalidProof, Description: "DPoP is not supported here."}
		}
		return "", nil
	}
	if nonce := h.DPoP.DPoPNonce(); nonce != "" {
		w.Header().Set(dpop.NonceHeader, nonce)
	}
	return h.DPoP.CheckDPoP(r.Context(), r, "")
}

// exchange runs every grant but the password grant through fosite, with cached client rows allowed but for a
// device's poll: it paces and redeems in the database, which a second run with a fresh client row would repeat.
func (h *Token) exchange(ctx context.Context, r *http.Request) (ar fosite.AccessRequester, resp fosite.AccessResponder, err error) {
	cache := h.Clients
	if r.PostForm.Get("grant_type") == provider.GrantTypeDeviceCode {
		cache = nil
	}
	err = withClientCache(ctx, cache, func(ctx context.Context) error {
		var err error
		session := provider.NewSession()
		if ar, err = h.OAuth.NewAccessRequest(ctx, r, session); err != nil {
			return err
		}
		if ar.GetGrantTypes().ExactOne("client_credentials") {
			// The client acts on its own behalf: it is the subject (RFC 9068 §2.2), and fosite has already checked
			// every requested scope and audience against the client's registration.
			session.Subject = ar.GetClient().GetID()
			session.ClientID = ar.GetClient().GetID()
			for _, scope := range ar.GetRequestedScopes() {
				ar.GrantScope(scope)
			}
			for _, aud := range ar.GetRequestedAudience() {
				ar.GrantAudience(aud)
			}
		}
		resp, err = h.OAuth.NewAccessResponse(ctx, ar)
		return err
	})
	return ar, resp, err
}

// prepareForm parses the form and answers, with the precise RFC 6749 §5.2 error, what fosite would only call
// invalid_request: repeated parameters, unknown grant types, missing or doubled client authentication. RFC 8707
// resource indicators are read by the provider (provider/resource.go).
func (h *Token) prepareForm(r *http.Request) error {
	if r.Method != http.MethodPost {
		return fosite.ErrInvalidRequest.WithHintf("HTTP method is '%s' but expected 'POST'.", r.Method)
	}
	if err := r.ParseForm(); err != nil {
		return fosite.ErrInvalidRequest.WithHint("Unable to parse the request body; send application/x-www-form-urlencoded of at most 64 KiB.")
	}
	for _, name := range singleValued {
		if len(r.PostForm[name]) > 1 {
			return fosite.ErrInvalidRequest.WithHintf("Parameter '%s' must not be repeated.", name)
		}
	}
	switch grant := r.PostForm.Get("grant_type"); {
	case grant == "":
		return fosite.ErrInvalidRequest.WithHint("The 'grant_type' parameter is missing.")
	case !slices.Contains(h.GrantTypes, grant), grant == provider.GrantTypePassword && h.Password == nil:
		return fosite.ErrUnsupportedGrantType.WithHintf("The grant type '%s' is not supported by this server.", grant)
	}
	if err := checkClientAuthentication(r); err != nil {
		return err
	}
	return nil
}

// checkClientAuthentication refuses requests that carry no client identification at all, a malformed Basic
// header, or two authentication methods at once (RFC 6749 §2.3). Call it after ParseForm.
func checkClientAuthentication(r *http.Request) error {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		if r.PostForm.Get("client_id") == "" && r.PostForm.Get("client_assertion") == "" {
			return fosite.ErrInvalidClient.WithHint("Client authentication is required.")
		}
		return nil
	}
	if _, _, ok := r.BasicAuth(); !ok {
		return fosite.ErrInvalidClient.WithHint("The Authorization header is not valid HTTP Basic authentication.")
	}
	if r.PostForm.Get("client_secret") != "" || r.PostForm.Get("client_assertion") != "" {
		return fosite.ErrInvalidRequest.WithHint("Use one client authentication method per request, not both HTTP Basic and form credentials.")
	}
	return nil
}
