package grant

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/provider"
)

// Proofs verifies DPoP proofs (RFC 9449): provider.Provider.
type Proofs interface {
	// CheckDPoP verifies the request's proof for accessToken and spends it: the key's thumbprint, "" without a
	// proof; a refused proof is a *dpop.Error, anything else the store's failure.
	CheckDPoP(ctx context.Context, r *http.Request, accessToken string) (string, error)
	// DPoPNonce is the nonce to send in DPoP-Nonce, "" when nonces are off.
	DPoPNonce() string
}

// presentedWithDPoP says whether the request's Authorization header uses the DPoP scheme (RFC 9449 §7.1).
func presentedWithDPoP(r *http.Request) bool {
	scheme, _, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, dpop.Scheme)
}

// checkBinding holds an active access token to how it was presented: a DPoP-bound token only with the DPoP scheme
// and a proof by its key for this request (htm, htu, ath, a fresh jti, the nonce if required), an unbound one
// never with the DPoP scheme. A refusal is a *jsonapi.Error with an RFC 9449 §7.1 challenge; any other error is
// the store's.
func checkBinding(r *http.Request, proofs Proofs, token string, sess *provider.Session) error {
	bound, withDPoP := sess.DPoPKey(), presentedWithDPoP(r)
	switch {
	case bound == "" && !withDPoP:
		return nil // a proof beside a bearer token proves nothing, and is ignored
	case bound == "":
		return dpopChallenge(proofs, jsonapi.InvalidToken, "This access token is not DPoP-bound; present it with the Bearer scheme.")
	case !withDPoP:
		return dpopChallenge(proofs, jsonapi.InvalidToken, "This access token is DPoP-bound; present it with the DPoP scheme and a DPoP proof.")
	}
	if proofs == nil {
		return dpopChallenge(nil, jsonapi.InvalidToken, "DPoP-bound access tokens are not accepted here.")
	}
	jkt, err := proofs.CheckDPoP(r.Context(), r, token)
	var refused *dpop.Error
	switch {
	case errors.As(err, &refused):
		return dpopChallenge(proofs, jsonapi.Code(refused.Code), refused.Description)
	case err != nil:
		return err
	case jkt == "":
		return dpopChallenge(proofs, jsonapi.Code(dpop.CodeInvalidProof), "A DPoP proof (the DPoP header) is required with this access token.")
	case jkt != bound:
		return dpopChallenge(proofs, jsonapi.InvalidToken, "The DPoP proof is not signed with the key this access token is bound to.")
	}
	return nil
}

// dpopChallenge is a 401 with a DPoP challenge (RFC 9449 §7.1), and a fresh nonce when nonces are on.
func dpopChallenge(proofs Proofs, code jsonapi.Code, description string) *jsonapi.Error {
	e := jsonapi.New(http.StatusUnauthorized, code, description).
		WithHeader("WWW-Authenticate", `DPoP realm="latchkey", error="`+string(code)+`", algs="`+strings.Join(dpop.AlgorithmNames(), " ")+`"`)
	if proofs != nil {
		if nonce := proofs.DPoPNonce(); nonce != "" {
			e = e.WithHeader(dpop.NonceHeader, nonce)
		}
	}
	return e
}

// Refusal is the answer to give when ActiveAccessToken's error is its own refusal of how the token was presented
// (DPoP), ready to write; nil otherwise.
func Refusal(err error) *jsonapi.Error {
	var e *jsonapi.Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
