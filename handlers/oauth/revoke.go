package oauth

import (
	"context"
	"errors"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/provider"
)

// Revoke serves RFC 7009 token revocation. Revoking a refresh token also revokes the access tokens of its grant.
// A client may revoke only its own tokens; an unknown token is answered 200 as revoked.
type Revoke struct {
	OAuth   fosite.OAuth2Provider
	CORS    *request.CORS
	Clients ClientCache
}

func (h *Revoke) Mount(r *mux.Router) {
	r.Handle(provider.PathRevoke, h.CORS.WrapRoute(h, request.CORSRoute{Methods: []string{http.MethodPost}}))
}

func (h *Revoke) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	err := checkRevocationRequest(r)
	if err == nil {
		err = withClientCache(ctx, h.Clients, func(ctx context.Context) error {
			return h.OAuth.NewRevocationRequest(ctx, r)
		})
	}
	if err != nil {
		err = jsonapi.NoteOAuthError(ctx, w, "revoke", err)
	}
	// fosite answers 200 to every error but invalid_request and invalid_client. RFC 7009 §2.1 has a client that
	// names another client's token refused and told (the token stays active), and §2.2.1 a store that failed
	// answer 503 so the client retries: fosite's own error writer says both.
	if errors.Is(err, fosite.ErrUnauthorizedClient) {
		h.OAuth.WriteAccessError(ctx, w, nil, fosite.ErrUnauthorizedClient.WithHint("The token was not issued to this client."))
		return
	}
	if errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		h.OAuth.WriteAccessError(ctx, w, nil, err)
		return
	}
	h.OAuth.WriteRevocationResponse(ctx, w, err)
}

// checkRevocationRequest answers a missing or malformed client authentication with invalid_client, as RFC 7009
// §2.1 asks, where fosite would answer invalid_request.
func checkRevocationRequest(r *http.Request) error {
	if r.Method != http.MethodPost {
		return fosite.ErrInvalidRequest.WithHintf("HTTP method is '%s' but expected 'POST'.", r.Method)
	}
	if err := r.ParseForm(); err != nil {
		return fosite.ErrInvalidRequest.WithHint("Unable to parse the request body.")
	}
	if len(r.PostForm) == 0 {
		return fosite.ErrInvalidRequest.WithHint("The POST body can not be empty.")
	}
	return checkClientAuthentication(r)
}
