package handlers

import (
	"context"
	"net/http"

	"github.com/ory/fosite"
)

// noteOAuthError logs an OAuth error the way the conventions ask (client mistakes at Info, server faults at
// Error) and sets WWW-Authenticate on 401s as RFC 6749 §5.2 requires. It returns the error to write: a request
// that failed because storage could not serve becomes temporarily_unavailable (503, with Retry-After), whatever
// fosite made of it. fosite's writers produce the body.
func noteOAuthError(ctx context.Context, w http.ResponseWriter, endpoint string, err error) error {
	err = oauthOutage(ctx, err)
	rfc := fosite.ErrorToRFC6749Error(err)
	switch rfc.CodeField {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="latchkey", charset="UTF-8"`)
	case http.StatusServiceUnavailable:
		setRetryAfter(w)
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
		Logger(ctx).Error("oauth request failed", append(attrs, "cause", cause)...)
		return err
	}
	Logger(ctx).Info("oauth request refused", attrs...)
	return err
}
