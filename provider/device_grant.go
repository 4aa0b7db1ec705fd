package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/ory/fosite"
)

// The device authorization grant (RFC 8628). fosite v0.49.0 has no device flow, so it is composed here: the
// device authorization endpoint (handlers/oauth) stores a pending authorization, the /device page
// (handlers/browser) records a person's approval with the grant's session, and deviceGrant, a token endpoint
// handler, answers the device's polls and issues exactly as the first-party sign-in does (signInGrant): refresh
// token with offline_access, ID token with openid, the approving browser session as sid.

// GrantTypeDeviceCode is RFC 8628's grant type.
const GrantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// PathDeviceAuthorization is RFC 8628's device authorization endpoint; PathDevice is the page a person opens.
const (
	PathDeviceAuthorization = "/oauth2/device_authorization"
	PathDevice              = "/device"
)

// DeviceState is what a device's poll found.
type DeviceState int

const (
	DevicePending  DeviceState = iota // authorization_pending
	DeviceSlowDown                    // polled before its interval passed (or raced another poll): slow_down
	DeviceExpired                     // expired_token
	DeviceDenied                      // access_denied
	DeviceSpent                       // its tokens were issued already: invalid_grant
	DeviceApproved                    // this poll redeemed it: issue
)

// DevicePoll is one poll's outcome; Session (JSON of a *Session) and Scopes are set when State is DeviceApproved.
type DevicePoll struct {
	State    DeviceState
	Interval time.Duration
	Session  []byte
	Scopes   []string
}

// DeviceCodes is the device authorizations' storage, as the token endpoint uses it.
type DeviceCodes interface {
	// PollDeviceCode records one poll of deviceCode by clientID at now; fosite.ErrNotFound when the client has
	// no such device code. Of concurrent polls of an approved code exactly one gets DeviceApproved.
	PollDeviceCode(ctx context.Context, deviceCode, clientID string, now time.Time) (DevicePoll, error)
	// ReleaseDeviceCode undoes a redemption whose tokens could not be issued.
	ReleaseDeviceCode(ctx context.Context, deviceCode string) error
}

// RFC 8628 §3.5's token endpoint errors.
var (
	ErrAuthorizationPending = &fosite.RFC6749Error{ErrorField: "authorization_pending", CodeField: http.StatusBadRequest,
		DescriptionField: "The authorization request is still pending: the user has not yet approved or denied it."}
	ErrSlowDown = &fosite.RFC6749Error{ErrorField: "slow_down", CodeField: http.StatusBadRequest,
		DescriptionField: "The authorization request is still pending, and polling should slow down."}
	// errDeviceDenied is access_denied as a token endpoint error (RFC 6749 §5.2: 400), not fosite's 403.
	errDeviceDenied = &fosite.RFC6749Error{ErrorField: "access_denied", CodeField: http.StatusBadRequest,
		DescriptionField: "The user denied the authorization request."}
	ErrExpiredToken = &fosite.RFC6749Error{ErrorField: "expired_token", CodeField: http.StatusBadRequest,
		DescriptionField: "The device code has expired; start a new device authorization request."}
)

// deviceGrant is the token endpoint handler of the device code grant. HandleTokenEndpointRequest polls: every
// answer but an approval is an error for the device; an approval (redeemed by this request alone) puts the
// stored session and scopes on the request, re-reads the user and the approving session like a code exchange
// (fresh.go), and PopulateTokenEndpointResponse issues.
type deviceGrant struct {
	codes  DeviceCodes
	signIn *signInGrant
	dir    Directory
	now    func() time.Time
}

var _ fosite.TokenEndpointHandler = (*deviceGrant)(nil)

func (h *deviceGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (h *deviceGrant) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(GrantTypeDeviceCode)
}

func (h *deviceGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	client := r.GetClient()
	if !client.GetGrantTypes().Has(GrantTypeDeviceCode) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not registered for the device code grant.")
	}
	code := r.GetRequestForm().Get("device_code")
	if code == "" || len(code) > 128 {
		return fosite.ErrInvalidRequest.WithHint("The device_code parameter is missing or malformed.")
	}
	poll, err := h.codes.PollDeviceCode(ctx, code, client.GetID(), h.now())
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		return fosite.ErrInvalidGrant.WithHint("The device code is unknown or was issued to another client.")
	case err != nil:
		return fosite.ErrServerError.WithWrap(err).WithDebugf("poll device code: %s", err)
	}
	switch poll.State {
	case DevicePending:
		return ErrAuthorizationPending
	case DeviceSlowDown:
		return ErrSlowDown.WithHintf("Poll at most every %d seconds.", int(poll.Interval/time.Second))
	case DeviceExpired:
		return ErrExpiredToken
	case DeviceDenied:
		return errDeviceDenied
	case DeviceApproved:
	default:
		return fosite.ErrInvalidGrant.WithHint("The device code has already been used.")
	}
	if err := h.approved(ctx, r, poll); err != nil {
		// Nothing was issued: the next poll may try again.
		if rerr := h.codes.ReleaseDeviceCode(context.WithoutCancel(ctx), code); rerr != nil {
			return fosite.ErrServerError.WithWrap(errors.Join(err, rerr)).WithDebug(rerr.Error())
		}
		return err
	}
	return nil
}

// approved loads the approved grant onto the request: its session (with the user as they are now), scopes and
// lifespans.
func (h *deviceGrant) approved(ctx context.Context, r fosite.AccessRequester, poll DevicePoll) error {
	sess, ok := r.GetSession().(*Session)
	if !ok {
		return fosite.ErrServerError.WithDebugf("unexpected session type %T", r.GetSession())
	}
	if err := json.Unmarshal(poll.Session, sess); err != nil || sess.Subject == "" {
		return fosite.ErrServerError.WithDebugf("stored device session unreadable: %v", err)
	}
	id, err := h.dir.GrantUser(ctx, sess.Subject)
	if errors.Is(err, ErrGrantEnded) {
		return fosite.ErrInvalidGrant.WithHint("The user who approved this device no longer exists or is disabled.")
	} else if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebugf("read the grant's user: %s", err)
	}
	if sess.SID != "" {
		if err := h.dir.UseGrantSession(ctx, sess.SID, h.now()); errors.Is(err, ErrGrantEnded) {
			return fosite.ErrInvalidGrant.WithHint("The session that approved this device has ended.")
		} else if err != nil {
			return fosite.ErrServerError.WithWrap(err).WithDebugf("use the grant's session: %s", err)
		}
	}
	r.SetRequestedScopes(poll.Scopes)
	for _, s := range poll.Scopes {
		r.GrantScope(s)
	}
	sess.applyIdentity(id, poll.Scopes)
	return h.signIn.startLifespans(ctx, r)
}

func (h *deviceGrant) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	if s, ok := r.GetSession().(*Session); !ok || s.Subject == "" {
		return fosite.ErrServerError.WithDebug("device grant: no approved session on the request")
	}
	if err := h.signIn.issue(ctx, r, resp); err != nil {
		if rerr := h.codes.ReleaseDeviceCode(context.WithoutCancel(ctx), r.GetRequestForm().Get("device_code")); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	return nil
}
