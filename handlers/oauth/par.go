package oauth

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// PAR serves RFC 9126 pushed authorization requests: the client posts its authorization parameters
// (authenticated) and gets a request_uri to send the browser to the authorization endpoint with.
//
// Each push stores a row until the request is used or expires, and a public client authenticates with nothing
// but its client_id, so pushes are bounded like the authorization endpoint's requests: parameters of at most
// models.MaxChallengeQuery bytes, and for public clients a rate per client IP. Confidential clients prove who
// they are, so only the size bound applies to them.
type PAR struct {
	OAuth fosite.OAuth2Provider
	// Throttle's store and clock count public clients' pushes; nil: no rate limit.
	Throttle *throttle.Throttle
	// Policy is the rate of pushes per client IP from public clients; zero: throttle.DefaultPARPolicy.
	Policy models.ThrottlePolicy
}

func (h *PAR) Mount(r *mux.Router) { r.Handle(provider.PathPAR, h) }

func (h *PAR) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseMultipartForm(1 << 20); err != nil && err != http.ErrNotMultipart {
		h.fail(ctx, w, fosite.NewAuthorizeRequest(), fosite.ErrInvalidRequest.WithHint("The request body could not be read as a form.").WithWrap(err).WithDebug(err.Error()))
		return
	}
	// Refused before the client is looked up: the authorization endpoint would refuse it later anyway.
	if n := len(pushedQuery(r)); n > models.MaxChallengeQuery {
		h.fail(ctx, w, fosite.NewAuthorizeRequest(), fosite.ErrInvalidRequest.WithHintf(
			"The pushed authorization request is %d bytes, over the limit of %d.", n, models.MaxChallengeQuery))
		return
	}
	ar, err := h.OAuth.NewPushedAuthorizeRequest(ctx, r)
	if err != nil {
		h.fail(ctx, w, ar, err)
		return
	}
	if client, ok := ar.GetClient().(*models.Client); ok && client.IsPublic() {
		if err := h.reserve(r, w); err != nil {
			h.fail(ctx, w, ar, err)
			return
		}
	}
	resp, err := h.OAuth.NewPushedAuthorizeResponse(ctx, ar, provider.NewSession())
	if err != nil {
		h.fail(ctx, w, ar, err)
		return
	}
	h.OAuth.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}

func (h *PAR) fail(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	err = jsonapi.NoteOAuthError(ctx, w, "par", err)
	h.OAuth.WritePushedAuthorizeError(ctx, w, ar, err)
}

// reserve counts one push from a public client against the client's IP before its row is stored. Nothing is
// ever given back: a push costs its row whatever becomes of it. It returns the error to answer with when the
// push may not go ahead (and sets Retry-After): 429 slow_down while the address must wait, 503 when the limit
// could not be consulted (it never fails open).
func (h *PAR) reserve(r *http.Request, w http.ResponseWriter) error {
	if h.Throttle == nil {
		return nil
	}
	p := h.Policy
	if p == (models.ThrottlePolicy{}) {
		p = throttle.DefaultPARPolicy
	}
	wait, err := h.Throttle.ReservePush(r, "par", p)
	switch {
	case err != nil:
		return fosite.ErrTemporarilyUnavailable.WithHint("Pushed authorization requests are temporarily unavailable.").WithWrap(err).WithDebug(err.Error())
	case wait > 0:
		w.Header().Set("Retry-After", throttle.Seconds(wait))
		return &fosite.RFC6749Error{
			ErrorField:       "slow_down",
			DescriptionField: "Too many pushed authorization requests from this address.",
			HintField:        "Try again in " + throttle.Seconds(wait) + " seconds.",
			CodeField:        http.StatusTooManyRequests,
		}
	}
	return nil
}

// pushedQuery is the size that counts for a push: its parameters encoded as the authorization endpoint will park
// them (parkedQuery), client_id included, the client's credentials not (they are never stored).
func pushedQuery(r *http.Request) string {
	q := url.Values{}
	for k, v := range r.Form {
		if k != "client_secret" && k != "client_assertion" {
			q[k] = v
		}
	}
	if q.Get("client_id") == "" {
		if user, _, ok := r.BasicAuth(); ok {
			if id, err := url.QueryUnescape(user); err == nil {
				user = id
			}
			q.Set("client_id", user)
		}
	}
	return q.Encode()
}
