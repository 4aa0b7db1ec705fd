package tokenapi

import (
	"errors"
	"net/http"

	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/provider"
)

// withDPoP verifies the DPoP proof of a login, signup or refresh (RFC 9449), if it carries one, and returns r with
// the key on its context, so the tokens issued are bound to it (provider.WithDPoPKey), and the token_type to
// answer. The current server nonce goes with every response when nonces are on. A refused proof is 400
// invalid_dpop_proof or use_dpop_nonce, checked before any password is.
func (h *API) withDPoP(w http.ResponseWriter, r *http.Request) (*http.Request, string, error) {
	if h.DPoP == nil {
		return r, "Bearer", nil
	}
	if nonce := h.DPoP.DPoPNonce(); nonce != "" {
		w.Header().Set(dpop.NonceHeader, nonce)
	}
	jkt, err := h.DPoP.CheckDPoP(r.Context(), r, "")
	var refused *dpop.Error
	switch {
	case errors.As(err, &refused):
		return r, "", jsonapi.New(http.StatusBadRequest, jsonapi.Code(refused.Code), refused.Description)
	case err != nil:
		return r, "", err
	case jkt == "":
		return r, "Bearer", nil
	}
	return r.WithContext(provider.WithDPoPKey(r.Context(), jkt)), dpop.TokenType, nil
}
