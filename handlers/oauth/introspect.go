package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/faults"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/provider"
)

// Introspect serves RFC 7662 token introspection. Only clients (resource servers) may ask, authenticated with
// client_secret_basic or client_secret_post, which fosite's introspection checks, or private_key_jwt or
// client_secret_jwt, which the provider's client authentication checks (its introspection takes only HTTP Basic; see introspectAsserted). A bearer access token is not a client
// credential: fosite would accept a user's token there and let any user introspect other people's tokens.
type Introspect struct {
	OAuth   fosite.OAuth2Provider
	Clients ClientCache
	// Assertions authenticates a caller that sends a client assertion (private_key_jwt, client_secret_jwt); nil:
	// refused.
	Assertions clientAuthenticator
}

func (h *Introspect) Mount(r *mux.Router) { r.Handle(provider.PathIntrospect, h) }

func (h *Introspect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := introspectionCaller(r); err != nil {
		err = jsonapi.NoteOAuthError(ctx, w, "introspect", err)
		// fosite's introspection writer knows only invalid_request and request_unauthorized.
		h.OAuth.WriteAccessError(ctx, w, nil, err)
		return
	}
	var ir fosite.IntrospectionResponder
	err := withClientCache(ctx, h.Clients, func(ctx context.Context) error {
		var err error
		if assertsClient(r) {
			ir, err = h.introspectAsserted(ctx, r)
		} else {
			ir, err = h.OAuth.NewIntrospectionRequest(ctx, r, provider.NewSession())
		}
		return err
	})
	if err != nil {
		if !errorIsInactive(err) || faults.Recorded(ctx) != nil {
			err = jsonapi.NoteOAuthError(ctx, w, "introspect", err)
		}
		if errors.Is(err, fosite.ErrTemporarilyUnavailable) {
			// Never {"active":false} for a token we could not look up: a resource server would refuse it.
			h.OAuth.WriteAccessError(ctx, w, nil, err)
			return
		}
		h.OAuth.WriteIntrospectionError(ctx, w, err)
		return
	}
	writeIntrospection(w, ir)
}

// introspectionCaller refuses a bearer token as the caller's credential (RFC 7662 §2.1) and turns
// client_secret_post into the HTTP Basic fosite checks. It fails closed: a request it cannot read, or one without
// HTTP Basic client credentials once it is done, never reaches fosite, whose introspection would otherwise take
// an access token (from the header, the form or the query) as the caller's credential.
func introspectionCaller(r *http.Request) error {
	if r.Method != http.MethodPost {
		return fosite.ErrInvalidRequest.WithHintf("HTTP method is '%s' but expected 'POST'.", r.Method)
	}
	authz := r.Header.Get("Authorization")
	scheme, _, _ := strings.Cut(authz, " ")
	if strings.EqualFold(scheme, "Bearer") {
		return errBearerIntrospection
	}
	// As fosite parses it: a multipart body too, and access_token may also come in the query.
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return fosite.ErrInvalidRequest.WithHint("Unable to parse the request; send application/x-www-form-urlencoded.")
	}
	if r.Form.Has("access_token") {
		return errBearerIntrospection
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if assertsClient(r) {
		if authz != "" || secret != "" {
			return fosite.ErrInvalidRequest.WithHint("Use one client authentication method per request, not a client assertion and a secret.")
		}
		return nil
	}
	switch {
	case secret == "":
	case authz != "":
		return fosite.ErrInvalidRequest.WithHint("Use one client authentication method per request, not both HTTP Basic and form credentials.")
	default:
		r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		r.PostForm.Del("client_secret")
		r.Form.Del("client_secret")
	}
	if _, _, ok := r.BasicAuth(); !ok {
		return fosite.ErrInvalidClient.WithHint("Introspection callers authenticate as a client, with client_secret_basic or client_secret_post.")
	}
	return nil
}

// assertsClient reports whether the caller authenticates with a client assertion (RFC 7523 §2.2).
func assertsClient(r *http.Request) bool {
	return r.PostForm.Has("client_assertion_type") || r.PostForm.Has("client_assertion")
}

// clientAuthenticator is fosite's client authentication (fosite.Fosite.AuthenticateClient, the one the token,
// revocation and PAR endpoints use).
type clientAuthenticator interface {
	AuthenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error)
}

// introspectAsserted is fosite's NewIntrospectionRequest for a caller that authenticates with a client assertion:
// fosite's client authentication checks the caller, then fosite's IntrospectToken looks the token up. A caller
// refused is request_unauthorized, as fosite's introspection answers a wrong secret.
func (h *Introspect) introspectAsserted(ctx context.Context, r *http.Request) (fosite.IntrospectionResponder, error) {
	auth := h.Assertions
	if auth == nil {
		return nil, fosite.ErrRequestUnauthorized.WithHint("Client assertions are not supported here.")
	}
	if _, err := auth.AuthenticateClient(ctx, r, r.PostForm); err != nil {
		return nil, fosite.ErrRequestUnauthorized.WithHint("The client assertion is invalid.").WithWrap(err).WithDebug(err.Error())
	}
	scopes := fosite.RemoveEmpty(strings.Split(r.PostForm.Get("scope"), " "))
	tu, ar, err := h.OAuth.IntrospectToken(ctx, r.PostForm.Get("token"), fosite.TokenUse(r.PostForm.Get("token_type_hint")), provider.NewSession(), scopes...)
	if err != nil {
		return nil, fosite.ErrInactiveToken.WithHint("An introspection strategy indicated that the token is inactive.").WithWrap(err).WithDebug(err.Error())
	}
	resp := &fosite.IntrospectionResponse{Active: true, AccessRequester: ar, TokenUse: tu}
	if tu == fosite.AccessToken {
		resp.AccessTokenType = fosite.BearerAccessToken
	}
	return resp, nil
}

var errBearerIntrospection = fosite.ErrInvalidClient.WithHint("Introspection callers authenticate as a client (client_secret_basic or client_secret_post); an access token is not a client credential.")

func errorIsInactive(err error) bool {
	return fosite.ErrorToRFC6749Error(err).ErrorField == fosite.ErrInactiveToken.ErrorField
}

// writeIntrospection writes an active token's RFC 7662 response. Unlike fosite's writer it reports the expiry of
// the token actually introspected (refresh or access) and its real type.
func writeIntrospection(w http.ResponseWriter, ir fosite.IntrospectionResponder) {
	ar := ir.GetAccessRequester()
	sess := ar.GetSession()
	resp := map[string]any{}
	if extra, ok := sess.(fosite.ExtraClaimsSession); ok {
		for k, v := range extra.GetExtraClaims() {
			resp[k] = v
		}
	}
	tokenType := fosite.AccessToken
	if ir.GetTokenUse() == fosite.RefreshToken {
		tokenType = fosite.RefreshToken
		resp["token_type"] = "refresh_token"
	} else {
		resp["token_type"] = ir.GetAccessTokenType()
		if s, ok := sess.(*provider.Session); ok && s.DPoPKey() != "" {
			// RFC 9449 §6.2: a bound token says so, and with which key.
			resp["token_type"] = dpop.TokenType
			resp["cnf"] = map[string]string{"jkt": s.DPoPKey()}
		}
	}
	if exp := sess.GetExpiresAt(tokenType); !exp.IsZero() {
		resp["exp"] = exp.Unix()
	}
	if !ar.GetRequestedAt().IsZero() {
		resp["iat"] = ar.GetRequestedAt().Unix()
	}
	resp["client_id"] = ar.GetClient().GetID()
	if scopes := ar.GetGrantedScopes(); len(scopes) > 0 {
		resp["scope"] = strings.Join(scopes, " ")
	}
	if sub := sess.GetSubject(); sub != "" {
		resp["sub"] = sub
	}
	if aud := ar.GetGrantedAudience(); len(aud) > 0 {
		resp["aud"] = []string(aud)
	}
	if u := sess.GetUsername(); u != "" {
		resp["username"] = u
	}
	resp["active"] = true

	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(resp)
}
