package handlers

import (
	"net/http"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/provider"
)

// Revoke serves RFC 7009 token revocation. Revoking a refresh token also revokes the access tokens of its grant.
type Revoke struct {
	OAuth fosite.OAuth2Provider
}

func (h *Revoke) Mount(r *mux.Router) { r.Handle(provider.PathRevoke, h) }

func (h *Revoke) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	err := h.OAuth.NewRevocationRequest(ctx, r)
	if err != nil {
		noteOAuthError(ctx, w, "revoke", err)
	}
	h.OAuth.WriteRevocationResponse(ctx, w, err)
}
