package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// deviceStore stores device authorization requests.
type deviceStore interface {
	CreateDeviceAuthorization(ctx context.Context, d models.DeviceAuthorization) (deviceCode, userCode string, err error)
}

// DeviceAuthorization serves RFC 8628's device authorization endpoint: a client registered for the device code
// grant (public by client_id, confidential authenticated as at the token endpoint) gets a device code to poll
// with and a user code for a person to enter at the verification URI.
type DeviceAuthorization struct {
	OAuth   fosite.OAuth2Provider // its access error writer answers every refusal
	Clients clientAuthenticator
	Store   deviceStore
	Issuer  string
	// Lifetime of a device authorization (default 10 minutes); Interval between polls (default 5 seconds).
	Lifetime, Interval time.Duration
	// Throttle counts public clients' requests per IP (each stores a row); nil: no limit.
	Throttle *throttle.Throttle
	Now      func() time.Time
}

func (h *DeviceAuthorization) Mount(r *mux.Router) {
	if h.Lifetime == 0 {
		h.Lifetime = 10 * time.Minute
	}
	if h.Interval == 0 {
		h.Interval = 5 * time.Second
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	r.Handle(provider.PathDeviceAuthorization, h).Methods(http.MethodPost)
}

type deviceAuthorizationResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

func (h *DeviceAuthorization) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	resp, err := h.authorize(w, r)
	if err != nil {
		err = jsonapi.NoteOAuthError(ctx, w, "device_authorization", err)
		h.OAuth.WriteAccessError(ctx, w, nil, err)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		request.Logger(ctx).Debug("device authorization response not sent", "error", err)
	}
}

func (h *DeviceAuthorization) authorize(w http.ResponseWriter, r *http.Request) (*deviceAuthorizationResponse, error) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		return nil, fosite.ErrInvalidRequest.WithHint("The request body could not be read as a form.")
	}
	for _, name := range []string{"client_id", "client_secret", "scope", "client_assertion", "client_assertion_type"} {
		if len(r.PostForm[name]) > 1 {
			return nil, fosite.ErrInvalidRequest.WithHintf("Parameter '%s' must not be repeated.", name)
		}
	}
	if err := checkClientAuthentication(r); err != nil {
		return nil, err
	}
	client, err := h.Clients.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		return nil, err
	}
	if !client.GetGrantTypes().Has(provider.GrantTypeDeviceCode) {
		return nil, fosite.ErrUnauthorizedClient.WithHint("The client is not registered for the device code grant.")
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	for _, s := range scopes {
		if !fosite.ExactScopeStrategy(client.GetScopes(), s) {
			return nil, fosite.ErrInvalidScope.WithHintf("The client may not request scope '%s'.", s)
		}
	}
	if client.IsPublic() && h.Throttle != nil {
		wait, err := h.Throttle.ReservePush(r, "device", throttle.DefaultPARPolicy)
		switch {
		case err != nil:
			return nil, fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
		case wait > 0:
			w.Header().Set("Retry-After", throttle.Seconds(wait))
			return nil, &fosite.RFC6749Error{ErrorField: "slow_down", CodeField: http.StatusTooManyRequests,
				DescriptionField: "Too many device authorization requests from this address.", HintField: "Try again in " + throttle.Seconds(wait) + " seconds."}
		}
	}
	now := h.Now()
	deviceCode, userCode, err := h.Store.CreateDeviceAuthorization(ctx, models.DeviceAuthorization{
		ClientID: client.GetID(), Scopes: scopes, Interval: h.Interval, CreatedAt: now, ExpiresAt: now.Add(h.Lifetime),
	})
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	shown := models.FormatUserCode(userCode)
	verify := h.Issuer + provider.PathDevice
	return &deviceAuthorizationResponse{
		DeviceCode: deviceCode, UserCode: shown, VerificationURI: verify,
		VerificationURIComplete: verify + "?" + url.Values{"user_code": {shown}}.Encode(),
		ExpiresIn:               int64(h.Lifetime / time.Second), Interval: int64(h.Interval / time.Second),
	}, nil
}
