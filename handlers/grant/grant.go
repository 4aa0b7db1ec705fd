// Package grant reads what a token stands for and what a user's tokens carry: the bearer access token of a
// request (never from the query string), whether it is an active access token and whose, whether a failed
// lookup was the store's fault rather than the token's, and the identity a user's tokens are issued with.
package grant

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/faults"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// Bearer reads an access token from the Authorization header, with the Bearer or the DPoP scheme (RFC 9449 §7.1;
// ActiveAccessToken holds the token to its scheme), or from a form-encoded POST body (RFC 6750 §2.2). Never from
// the query string: URLs end up in logs and browser history (RFC 9700 §4.3.2).
func Bearer(r *http.Request) string {
	if a := r.Header.Get("Authorization"); a != "" {
		if scheme, rest, ok := strings.Cut(a, " "); ok && (strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, dpop.Scheme)) {
			return strings.TrimSpace(rest)
		}
		return ""
	}
	if r.Method == http.MethodPost && r.PostForm != nil {
		return r.PostForm.Get("access_token")
	}
	return ""
}

// ActiveAccessToken returns the grant behind the access token that request r presented. fosite's introspection
// also accepts refresh tokens; a bearer credential must be an access token, so anything else is refused. A
// DPoP-bound token must come with the DPoP scheme and a proof by its key (proofs; checkBinding), and an unbound
// one with Bearer: such a refusal is a *jsonapi.Error to answer as it is (Refusal). Every endpoint that takes an
// access token goes through here.
func ActiveAccessToken(r *http.Request, oauth fosite.OAuth2Provider, proofs Proofs, token string) (fosite.AccessRequester, *provider.Session, error) {
	ctx := r.Context()
	session := provider.NewSession()
	use, ar, err := oauth.IntrospectToken(ctx, token, fosite.AccessToken, session)
	if err != nil {
		return nil, nil, err
	}
	if use != fosite.AccessToken {
		return nil, nil, fosite.ErrRequestUnauthorized.WithHint("The token is not an access token.")
	}
	sess, ok := ar.GetSession().(*provider.Session)
	if !ok {
		return nil, nil, fosite.ErrServerError.WithHint("unexpected session type")
	}
	if err := checkBinding(r, proofs, token, sess); err != nil {
		return nil, nil, err
	}
	return ar, sess, nil
}

// StoreFailed tells a token the store could not look up from one that is not valid. fosite reports both as
// request_unauthorized; a missing or inactive row, an expired or forged token are the caller's, anything else
// wrapped inside (a database error), or a database fault met while serving the request, is ours and must not
// read as "your token is invalid".
func StoreFailed(ctx context.Context, err error) bool {
	if faults.Recorded(ctx) != nil {
		return true
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField >= http.StatusInternalServerError {
		return true
	}
	cause := rfc.Unwrap()
	if cause == nil || errors.Is(cause, fosite.ErrNotFound) || errors.Is(cause, fosite.ErrInactiveToken) {
		return false
	}
	var inner *fosite.RFC6749Error
	if errors.As(cause, &inner) {
		return inner.CodeField >= http.StatusInternalServerError || errors.Is(cause, fosite.ErrSerializationFailure)
	}
	return true
}

// InsufficientScope answers a valid token that was not granted scope (RFC 6750 §3.1).
func InsufficientScope(scope, description string) *jsonapi.Error {
	return jsonapi.New(http.StatusForbidden, jsonapi.InsufficientScope, description).
		WithHeader("WWW-Authenticate", `Bearer realm="latchkey", error="insufficient_scope", scope="`+scope+`"`)
}

// Missing answers a request that carries no access token: a bare challenge, no error code in it (RFC 6750 §3.1).
func Missing(description string) *jsonapi.Error {
	return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidToken, description).WithHeader("WWW-Authenticate", `Bearer realm="latchkey"`)
}

// Invalid answers a token that is not (or no longer) good for the request.
func Invalid(description string) *jsonapi.Error {
	return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidToken, description).
		WithHeader("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`)
}

// IdentityOf turns a user row into what the provider puts in the user's tokens and userinfo.
func IdentityOf(u *models.User) provider.Identity {
	return provider.Identity{
		UserID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name,
		Roles: u.Roles, Extras: u.Extras, Pool: u.Pool, UpdatedAt: u.UpdatedAt,
	}
}
