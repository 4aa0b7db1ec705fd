package handlers

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

// Failures on our side go through here, whatever the endpoint: the cause is logged at ERROR with the request id,
// and a database that cannot serve right now answers 503 with Retry-After — never a 4xx that tells a client its
// credentials are bad (a browser app signs its user out on that) and never {"active":false}.

// outageRetryAfter is the Retry-After of every 503: long enough for a database restart or failover to finish,
// short enough that a person retrying does not wait long.
const outageRetryAfter = 5 * time.Second

// unavailable reports whether a request failed because storage could not serve right now: err says so anywhere
// in its chain, or a database fault was recorded while serving the request (fosite sometimes keeps only an
// error's text, or turns it into "invalid client" or "inactive token").
func unavailable(ctx context.Context, err error) bool {
	return models.IsUnavailable(err) || errors.Is(err, fosite.ErrTemporarilyUnavailable) || faults.Recorded(ctx) != nil
}

// setRetryAfter marks a 503 as worth retrying soon.
func setRetryAfter(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int(outageRetryAfter/time.Second)))
}

// serverFault answers a JSON request that failed on our side: 503 temporarily_unavailable with Retry-After when
// storage is unavailable, 500 server_error otherwise. what names the step that failed, for the log.
func serverFault(w http.ResponseWriter, r *http.Request, what string, err error) {
	Logger(r.Context()).Error(what, "error", faultCause(r.Context(), err))
	if unavailable(r.Context(), err) {
		setRetryAfter(w)
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable; retry shortly.")
		return
	}
	writeJSONError(w, http.StatusInternalServerError, "server_error", "Internal server error.")
}

// pageFault is serverFault for the HTML pages: Latchkey's error page with 503 or 500.
func (h *Browser) pageFault(w http.ResponseWriter, r *http.Request, what string, err error) {
	Logger(r.Context()).Error(what, "error", faultCause(r.Context(), err))
	if unavailable(r.Context(), err) {
		setRetryAfter(w)
		h.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "We could not reach our database. Please try again in a moment.")
		return
	}
	h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "Please try again.")
}

// oauthOutage turns an error from fosite (or one of our steps at an OAuth endpoint) into temporarily_unavailable
// when storage was the cause, whatever fosite made of it; other errors are returned as they are.
func oauthOutage(ctx context.Context, err error) error {
	if err == nil || !unavailable(ctx, err) || errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		return err
	}
	cause := err
	if faults.Recorded(ctx) != nil && !models.IsUnavailable(err) {
		cause = fmt.Errorf("%w (database: %w)", err, faults.Recorded(ctx))
	}
	return fosite.ErrTemporarilyUnavailable.WithWrap(cause).WithDebug(cause.Error())
}

// faultCause is what to log of a failure: the storage error fosite wrapped rather than its own error name
// ("request_unauthorized"), and the database fault recorded under ctx when the error itself does not say it.
func faultCause(ctx context.Context, err error) error {
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) && rfc.Unwrap() != nil {
		err = rfc.Unwrap()
	}
	if fault := faults.Recorded(ctx); fault != nil && !models.IsUnavailable(err) {
		return fmt.Errorf("%w (database: %w)", err, fault)
	}
	return err
}
