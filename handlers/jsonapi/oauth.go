package jsonapi

import (
	"context"
	"net/http"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/request"
)

// NoteOAuthError is Write's counterpart at the endpoints fosite owns, whose bodies only fosite's writers
// (WriteAccessError, WriteAuthorizeError, ...) produce. It logs the error the way the conventions ask (client
// mistakes at Info, server faults at Error with their cause) and sets WWW-Authenticate on 401s as RFC 6749 §5.2
// requires, and Retry-After on 503s. It returns the error to hand to fosite's writer: a request that failed
// because storage could not serve becomes temporarily_unavailable (503), whatever fosite made of it.
func NoteOAuthError(ctx context.Context, w http.ResponseWriter, endpoint string, err error) error {
	err = OAuthOutage(ctx, err)
	rfc := fosite.ErrorToRFC6749Error(err)
	switch rfc.CodeField {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="latchkey", charset="UTF-8"`)
	case http.StatusServiceUnavailable:
		SetRetryAfter(w)
	}
	attrs := []any{"endpoint", endpoint, "error", rfc.ErrorField, "status", rfc.CodeField}
	if rfc.HintField != "" {
		attrs = append(attrs, "hint", rfc.HintField)
	}
	if rfc.CodeField >= http.StatusInternalServerError {
		// The debug field carries the wrapped cause (storage errors and the like), never request secrets; an error
		// wrapped without one still has its cause logged.
		cause := rfc.DebugField
		if cause == "" && rfc.Unwrap() != nil {
			cause = rfc.Unwrap().Error()
		}
		request.Logger(ctx).Error("oauth request failed", append(attrs, "cause", cause)...)
		return err
	}
	request.Logger(ctx).Info("oauth request refused", attrs...)
	return err
}

// FromOAuth turns an error of fosite's, met at an endpoint of ours that is not fosite's (the token API's refresh
// and sign-in), into what Write answers: the client's mistake keeps fosite's status, code and description; a
// request that failed because storage could not serve (in the chain, or recorded under ctx while fosite turned
// it into "invalid client" or "invalid grant") and any server error stay faults, answered 503 or 500.
func FromOAuth(ctx context.Context, err error) error {
	if err == nil || Unavailable(ctx, err) {
		return err
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField >= http.StatusInternalServerError {
		return err
	}
	return New(rfc.CodeField, Code(rfc.ErrorField), rfc.GetDescription()).WithCause(err)
}
