package handlers

import (
	"net/http"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/provider"
)

// PAR serves RFC 9126 pushed authorization requests: the client posts its authorization parameters
// (authenticated) and gets a request_uri to send the browser to the authorization endpoint with.
type PAR struct {
	OAuth fosite.OAuth2Provider
}

func (h *PAR) Mount(r *mux.Router) { r.Handle(provider.PathPAR, h) }

func (h *PAR) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := h.OAuth.NewPushedAuthorizeRequest(ctx, r)
	if err != nil {
		err = noteOAuthError(ctx, w, "par", err)
		h.OAuth.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	resp, err := h.OAuth.NewPushedAuthorizeResponse(ctx, ar, provider.NewSession())
	if err != nil {
		err = noteOAuthError(ctx, w, "par", err)
		h.OAuth.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	h.OAuth.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}
