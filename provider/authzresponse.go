package provider

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/ory/fosite"
)

// authorizationEndpoint is the fosite provider with two rules of the authorization endpoint that fosite v0.49.0
// has no setting for, so every handler that parses or answers an authorization request gets them:
//
//   - RFC 9207: `iss` on every authorization response written through the provider, success and error, in every
//     response mode (query, fragment, form_post). Our own error page (no validated redirect URI) is not an
//     authorization response and gets nothing.
//   - RFC 9700 §2.1.1: `state` is optional when the request carries an S256 PKCE challenge (StateRequired).
type authorizationEndpoint struct {
	fosite.OAuth2Provider
	cfg    *fosite.Config
	issuer string
}

// StateRequired reports whether an authorization request with form must carry a state of at least
// fosite.MinParameterEntropy characters. With an S256 code_challenge the code is bound to the client's verifier,
// which is the CSRF protection state otherwise gives (RFC 9700 §2.1.1), so state may be absent or short; a
// state that is present is still echoed exactly. A plain challenge (refused anyway) does not count.
func StateRequired(form url.Values) bool {
	return form.Get("code_challenge") == "" || form.Get("code_challenge_method") != "S256"
}

// waiveState drops fosite's state-entropy refusal for a request that does not need state. fosite checks state
// last, after the client, redirect URI, scopes, audience, response type and mode, so the request it returns with
// that error is complete.
func waiveState(ar fosite.AuthorizeRequester, err error) error {
	if err != nil && ar != nil && errors.Is(err, fosite.ErrInvalidState) && !StateRequired(ar.GetRequestForm()) {
		return nil
	}
	return err
}

func (a authorizationEndpoint) NewAuthorizeRequest(ctx context.Context, r *http.Request) (fosite.AuthorizeRequester, error) {
	ar, err := a.OAuth2Provider.NewAuthorizeRequest(ctx, r)
	return ar, waiveState(ar, err)
}

func (a authorizationEndpoint) NewPushedAuthorizeRequest(ctx context.Context, r *http.Request) (fosite.AuthorizeRequester, error) {
	ar, err := a.OAuth2Provider.NewPushedAuthorizeRequest(ctx, r)
	return ar, waiveState(ar, err)
}

// WriteAuthorizeResponse adds `iss`, and drops the empty `state` fosite's handlers add to a request without one:
// a client that sent none (oauth4webapi with PKCE) refuses a response carrying the parameter.
func (a authorizationEndpoint) WriteAuthorizeResponse(ctx context.Context, rw http.ResponseWriter, ar fosite.AuthorizeRequester, resp fosite.AuthorizeResponder) {
	if ar.GetState() == "" {
		resp.GetParameters().Del("state")
	}
	resp.AddParameter("iss", a.issuer)
	a.OAuth2Provider.WriteAuthorizeResponse(ctx, rw, ar, resp)
}

// WriteAuthorizeError is fosite's WriteAuthorizeError (authorize_error.go, v0.49.0) for a validated redirect URI,
// with `iss` added and `state` sent only when the request had one: fosite builds the error parameters inside the
// function and offers no way to add one. Without a validated redirect URI fosite's own writer answers.
func (a authorizationEndpoint) WriteAuthorizeError(ctx context.Context, rw http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	if ar == nil || !ar.IsRedirectURIValid() {
		a.OAuth2Provider.WriteAuthorizeError(ctx, rw, ar, err)
		return
	}
	rw.Header().Set("Cache-Control", "no-store")
	rw.Header().Set("Pragma", "no-cache")

	rfcerr := fosite.ErrorToRFC6749Error(err).
		WithLegacyFormat(a.cfg.GetUseLegacyErrorFormat(ctx)).
		WithExposeDebug(a.cfg.GetSendDebugMessagesToClients(ctx))
	if g, ok := ar.(fosite.G11NContext); ok {
		rfcerr = rfcerr.WithLocalizer(a.cfg.GetMessageCatalog(ctx), g.GetLang())
	}
	params := rfcerr.ToValues()
	if s := ar.GetState(); s != "" {
		params.Set("state", s)
	}
	params.Set("iss", a.issuer)

	redirectURI := *ar.GetRedirectURI()
	// The endpoint URI MUST NOT include a fragment component.
	redirectURI.Fragment, redirectURI.RawFragment = "", ""
	switch ar.GetResponseMode() {
	case fosite.ResponseModeFormPost:
		rw.Header().Set("Content-Type", "text/html;charset=UTF-8")
		tmpl := a.cfg.GetFormPostHTMLTemplate(ctx)
		if tmpl == nil {
			tmpl = fosite.DefaultFormPostTemplate
		}
		fosite.WriteAuthorizeFormPostResponse(redirectURI.String(), params, tmpl, rw)
		return
	case fosite.ResponseModeFragment:
		rw.Header().Set("Location", redirectURI.String()+"#"+params.Encode())
	default:
		for key, values := range redirectURI.Query() {
			for _, v := range values {
				params.Add(key, v)
			}
		}
		redirectURI.RawQuery = params.Encode()
		rw.Header().Set("Location", redirectURI.String())
	}
	rw.WriteHeader(http.StatusSeeOther)
}
