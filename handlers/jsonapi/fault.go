package jsonapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/faults"
	"github.com/latchkey/latchkey/models"
)

// Failures on our side, whatever the endpoint (JSON, fosite's, HTML pages), are told apart here: a database that
// cannot serve right now answers 503 with Retry-After — never a 4xx that tells a client its credentials are bad
// (a browser app signs its user out on that) and never {"active":false}.

// OutageRetryAfter is the Retry-After of every 503: long enough for a database restart or failover to finish,
// short enough that a person retrying does not wait long.
const OutageRetryAfter = 5 * time.Second

var retryAfterSeconds = strconv.Itoa(int(OutageRetryAfter / time.Second))

// Unavailable reports whether a request failed because storage could not serve right now: err says so anywhere
// in its chain, or a database fault was recorded while serving the request (fosite sometimes keeps only an
// error's text, or turns it into "invalid client" or "inactive token").
func Unavailable(ctx context.Context, err error) bool {
	return models.IsUnavailable(err) || errors.Is(err, fosite.ErrTemporarilyUnavailable) || faults.Recorded(ctx) != nil
}

// SetRetryAfter marks a 503 as worth retrying soon (OutageRetryAfter).
func SetRetryAfter(w http.ResponseWriter) {
	w.Header().Set("Retry-After", retryAfterSeconds)
}

// OAuthOutage turns an error from fosite (or one of our steps at an OAuth endpoint) into temporarily_unavailable
// when storage was the cause, whatever fosite made of it; other errors are returned as they are.
func OAuthOutage(ctx context.Context, err error) error {
	if err == nil || !Unavailable(ctx, err) || errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		return err
	}
	cause := err
	if faults.Recorded(ctx) != nil && !models.IsUnavailable(err) {
		cause = fmt.Errorf("%w (database: %w)", err, faults.Recorded(ctx))
	}
	return fosite.ErrTemporarilyUnavailable.WithWrap(cause).WithDebug(cause.Error())
}

// FaultCause is what to log of a failure: the error with the storage error fosite wrapped spelled out (fosite's
// own text is only its error name, "request_unauthorized"), and the database fault recorded under ctx when the
// error itself does not say it.
func FaultCause(ctx context.Context, err error) error {
	if err == nil {
		err = errors.New("no error given")
	}
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) && rfc.Unwrap() != nil {
		err = fmt.Errorf("%s: %w", err.Error(), rfc.Unwrap())
	}
	if fault := faults.Recorded(ctx); fault != nil && !models.IsUnavailable(err) {
		return fmt.Errorf("%w (database: %w)", err, fault)
	}
	return err
}

// WriteUnavailable answers 503 temporarily_unavailable with Retry-After whatever err is, logging err as the cause
// at Error with the request id: for a step in front of a handler that failed on our side and must not let the
// handler run (request.CORS's origin check, whose store error need not look like an outage, e.g. a missing table).
func WriteUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	Write(w, r, errUnavailable().WithCause(err))
}
