// Package jsonapi is what every JSON endpoint of ours shares that fosite does not own: the error codes, the
// Error handlers return, the one writer (Write) that maps an error to a status and an OAuth-shaped body and
// logs every failure on our side, the mapping of infrastructure faults to 503 with Retry-After (also used in
// front of fosite's own writers, see NoteOAuthError), strict JSON body decoding, the user object, and list pages
// with opaque keyset cursors and strong ETags checked by If-Match (page.go).
package jsonapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/request"
)

// Code is an error code of ours, sent as the body's "error". The OAuth ones mean what RFC 6749 and RFC 6750 say.
type Code string

// Every error code a JSON endpoint of ours answers with.
const (
	InvalidRequest    Code = "invalid_request"
	InvalidClient     Code = "invalid_client"
	InvalidGrant      Code = "invalid_grant"
	InvalidScope      Code = "invalid_scope"
	InvalidToken      Code = "invalid_token"
	InsufficientScope Code = "insufficient_scope"
	InvalidOrigin     Code = "invalid_origin"
	NotFound          Code = "not_found"
	SignupDisabled    Code = "signup_disabled"
	EmailTaken        Code = "email_taken"
	WeakPassword      Code = "weak_password"
	// Mail: the server has no SMTP configured; the account's email is not verified yet (its pool requires it);
	// a verification or reset token or code that is unknown, used, expired or out of guesses.
	MailNotConfigured      Code = "mail_not_configured"
	EmailNotVerified       Code = "email_not_verified"
	InvalidMailToken       Code = "invalid_token_or_code"
	TooManyRequests        Code = "too_many_requests"
	TemporarilyUnavailable Code = "temporarily_unavailable"
	ServerError            Code = "server_error"
	// RFC 7591 §3.2.2: a registration's redirect URIs, or another of its metadata, are refused.
	InvalidRedirectURI    Code = "invalid_redirect_uri"
	InvalidClientMetadata Code = "invalid_client_metadata"
)

// Error is a JSON endpoint's answer that is not a success: a status, a code, a short description for the
// client, optional response headers (WWW-Authenticate, Retry-After, Allow), and for a failure on our side the
// cause, which is logged and never sent.
type Error struct {
	Status      int
	Code        Code
	Description string
	// Field names the request field at fault in a validation error, sent as "field"; "" for none.
	Field  string
	header http.Header
	cause  error
}

// New returns an error answered with status, code and description.
func New(status int, code Code, description string) *Error {
	return &Error{Status: status, Code: code, Description: description}
}

// Invalid is a 400 invalid_request about one field of the request.
func Invalid(field, description string) *Error {
	e := BadRequest(description)
	e.Field = field
	return e
}

// BadRequest is the common 400 invalid_request.
func BadRequest(description string) *Error {
	return New(http.StatusBadRequest, InvalidRequest, description)
}

// WithHeader sets a response header sent with the error, and returns e.
func (e *Error) WithHeader(name, value string) *Error {
	if e.header == nil {
		e.header = http.Header{}
	}
	e.header.Set(name, value)
	return e
}

// WithCause records what went wrong on our side (logged, never sent), and returns e.
func (e *Error) WithCause(err error) *Error {
	e.cause = err
	return e
}

func (e *Error) Error() string {
	if e.cause != nil {
		return string(e.Code) + ": " + e.Description + ": " + e.cause.Error()
	}
	return string(e.Code) + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.cause }

// Send writes e as it is, without logging: for the few callers that log on their own terms (readiness logs an
// outage once, not once per probe). Handlers return errors to Write instead.
func (e *Error) Send(w http.ResponseWriter) {
	for k, v := range e.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	body := map[string]string{"error": string(e.Code), "error_description": e.Description}
	if e.Field != "" {
		body["field"] = e.Field
	}
	_ = json.NewEncoder(w).Encode(body)
}

// The generic answers to a failure on our side: the client learns nothing of the cause.
func errUnavailable() *Error {
	return New(http.StatusServiceUnavailable, TemporarilyUnavailable, "The service is temporarily unavailable; retry shortly.")
}

func errInternal() *Error {
	return New(http.StatusInternalServerError, ServerError, "Internal server error.")
}

// Write answers err, whatever a handler returned, and is the only place a JSON endpoint's error is decided:
//
//   - an *Error (anywhere in the chain) with a status below 500 is the client's: sent as it is, logged at Info;
//   - anything else is ours, logged at Error with its cause and the request id. When storage could not serve
//     right now (Unavailable) it answers 503 temporarily_unavailable with Retry-After, never a 4xx and never a
//     plain 500; otherwise 500 server_error, or the status, code and description of an *Error of 500 and above.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	var e *Error
	if errors.As(err, &e) && e.Status < http.StatusInternalServerError {
		attrs := []any{"status", e.Status, "error", string(e.Code)}
		var rfc *fosite.RFC6749Error
		if errors.As(e.cause, &rfc) && rfc.HintField != "" {
			attrs = append(attrs, "hint", rfc.HintField)
		}
		request.Logger(ctx).Info("request refused", attrs...)
		e.Send(w)
		return
	}
	answer := errInternal()
	if e != nil {
		answer = &Error{Status: e.Status, Code: e.Code, Description: e.Description, header: e.header}
	}
	if Unavailable(ctx, err) && answer.Status != http.StatusServiceUnavailable {
		answer = errUnavailable()
	}
	if answer.Status == http.StatusServiceUnavailable && answer.header.Get("Retry-After") == "" {
		answer.WithHeader("Retry-After", retryAfterSeconds)
	}
	request.Logger(ctx).Error("request failed", "status", answer.Status, "error", string(answer.Code), "cause", FaultCause(ctx, err).Error())
	answer.Send(w)
}

// Respond writes a successful JSON answer; API answers are never cached.
func Respond(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
