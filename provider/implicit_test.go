package provider

import (
	"context"
	"net/url"
	"testing"

	"github.com/ory/fosite"
)

// The front channel's rule, request by request: code, or an ID token alone with a nonce, never in the query,
// only to a redirect URI registered exactly; never an access token.
func TestCheckFrontChannel(t *testing.T) {
	client := &fosite.DefaultClient{ID: "spa", RedirectURIs: []string{"http://localhost:5173/cb"}}
	request := func(responseTypes fosite.Arguments, mode fosite.ResponseModeType, change url.Values) *fosite.AuthorizeRequest {
		form := url.Values{"redirect_uri": {"http://localhost:5173/cb"}, "nonce": {"nonce-1234567890"}}
		for k, v := range change {
			form[k] = v
		}
		ar := fosite.NewAuthorizeRequest()
		ar.Client, ar.Form, ar.ResponseTypes, ar.ResponseMode = client, form, responseTypes, mode
		ar.RequestedScope = fosite.Arguments{"openid", "profile"}
		if change.Has("scope") {
			ar.RequestedScope = fosite.Arguments{change.Get("scope")}
		}
		return ar
	}
	for _, tc := range []struct {
		name    string
		ar      *fosite.AuthorizeRequest
		wantErr string // "" = accepted
	}{
		{"code", request(fosite.Arguments{"code"}, fosite.ResponseModeQuery, nil), ""},
		{"ID token in the fragment", request(fosite.Arguments{"id_token"}, fosite.ResponseModeFragment, nil), ""},
		{"ID token by form_post", request(fosite.Arguments{"id_token"}, fosite.ResponseModeFormPost, nil), ""},
		{"ID token in the query", request(fosite.Arguments{"id_token"}, fosite.ResponseModeQuery, nil), "unsupported_response_mode"},
		{"ID token and access token", request(fosite.Arguments{"id_token", "token"}, fosite.ResponseModeFragment, nil), "unsupported_response_type"},
		{"access token alone", request(fosite.Arguments{"token"}, fosite.ResponseModeFragment, nil), "unsupported_response_type"},
		{"hybrid", request(fosite.Arguments{"code", "id_token"}, fosite.ResponseModeFragment, nil), "unsupported_response_type"},
		{"ID token without a nonce", request(fosite.Arguments{"id_token"}, fosite.ResponseModeFragment, url.Values{"nonce": {""}}), "invalid_request"},
		{"ID token with a short nonce", request(fosite.Arguments{"id_token"}, fosite.ResponseModeFragment, url.Values{"nonce": {"1234567"}}), "insufficient_entropy"},
		{"ID token without openid", request(fosite.Arguments{"id_token"}, fosite.ResponseModeFragment, url.Values{"scope": {"profile"}}), "invalid_request"},
		{"ID token to a loopback URI on another port", request(fosite.Arguments{"id_token"}, fosite.ResponseModeFragment,
			url.Values{"redirect_uri": {"http://localhost:5174/cb"}}), "invalid_request"},
		{"ID token without redirect_uri", request(fosite.Arguments{"id_token"}, fosite.ResponseModeFragment, url.Values{"redirect_uri": {""}}), "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckFrontChannel(tc.ar)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || fosite.ErrorToRFC6749Error(err).ErrorField != tc.wantErr):
				t.Fatalf("err = %v, want %s", err, tc.wantErr)
			}
		})
	}
}

// The composed implicit handler leaves every response type but the ID token alone unhandled (fosite then refuses
// the request), and checks the front channel's rule before it issues anything.
func TestIDTokenOnlyImplicitHandler(t *testing.T) {
	inner := &countingHandler{}
	h := idTokenOnlyImplicit{inner: inner}
	ctx := context.Background()
	for _, rt := range []fosite.Arguments{{"id_token", "token"}, {"token"}, {"code"}} {
		ar := fosite.NewAuthorizeRequest()
		ar.ResponseTypes = rt
		if err := h.HandleAuthorizeEndpointRequest(ctx, ar, fosite.NewAuthorizeResponse()); err != nil || inner.calls != 0 {
			t.Fatalf("response_type %v: err %v, inner called %d times; want it left unhandled", rt, err, inner.calls)
		}
		if ar.DidHandleAllResponseTypes() {
			t.Fatalf("response_type %v counts as handled", rt)
		}
	}
	ar := fosite.NewAuthorizeRequest()
	ar.ResponseTypes, ar.ResponseMode = fosite.Arguments{"id_token"}, fosite.ResponseModeFragment
	ar.Client = &fosite.DefaultClient{ID: "spa", RedirectURIs: []string{"https://app.example/cb"}}
	ar.RequestedScope = fosite.Arguments{"openid"}
	ar.Form = url.Values{"redirect_uri": {"https://app.example/cb"}}
	if err := h.HandleAuthorizeEndpointRequest(ctx, ar, fosite.NewAuthorizeResponse()); err == nil || inner.calls != 0 {
		t.Fatalf("ID token without a nonce: err %v, inner called %d times", err, inner.calls)
	}
	ar.Form.Set("nonce", "nonce-1234567890")
	if err := h.HandleAuthorizeEndpointRequest(ctx, ar, fosite.NewAuthorizeResponse()); err != nil || inner.calls != 1 {
		t.Fatalf("ID token with a nonce: err %v, inner called %d times, want once", err, inner.calls)
	}
}

type countingHandler struct{ calls int }

func (c *countingHandler) HandleAuthorizeEndpointRequest(context.Context, fosite.AuthorizeRequester, fosite.AuthorizeResponder) error {
	c.calls++
	return nil
}
