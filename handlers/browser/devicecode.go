package browser

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/telemetry"
	"github.com/latchkey/latchkey/templates"
)

// deviceStore is what the device page reads and writes (RFC 8628 device authorizations).
type deviceStore interface {
	PendingDeviceAuthorization(ctx context.Context, userCode string, now time.Time) (*models.DeviceAuthorization, error)
	DecideDeviceAuthorization(ctx context.Context, userCode string, d models.DeviceDecision, now time.Time) error
}

const wrongUserCode = "That code is not valid or has expired. Check the code on your device and try again."

// devicePage is the verification URI: the code form, prefilled from ?user_code= (verification_uri_complete).
// Nothing is looked up on GET: every lookup is a posted, CSRF-checked and throttled guess.
func (h *Browser) devicePage(w http.ResponseWriter, r *http.Request) {
	code := page.Truncate(r.URL.Query().Get("user_code"), 32)
	if c, ok := models.NormalizeUserCode(code); ok {
		code = models.FormatUserCode(c)
	}
	h.deviceEntry(w, r, http.StatusOK, code, "")
}

func (h *Browser) deviceEntry(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	page.LogRender(r, h.Pages.Device(w, status, templates.DevicePage{Action: provider.PathDevice, CSRFToken: h.page().CSRFToken(w, r), UserCode: code, Error: msg}))
}

// deviceSubmit takes a user code (decision=lookup) or a decision on one (allow, deny). Each counts as a guess
// against the client's IP before the code is looked up (5 wrong codes free, then back-off); a right one is given
// back. A wrong, expired or decided code gets the form again with one message, whatever the reason. A person
// not signed in, or signed in to another pool than the client's, is sent to sign in and back.
func (h *Browser) deviceSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.page().ParsePost(w, r) {
		return
	}
	ctx := r.Context()
	now := h.Now()
	typed := page.Truncate(r.PostForm.Get("user_code"), 32)
	decision := r.PostForm.Get("decision")
	if decision != "allow" && decision != "deny" {
		decision = "lookup"
	}
	guess, wait, err := h.Throttle.ReserveGuess(r, telemetry.ThrottleUserCode, throttle.DefaultUserCodePolicy)
	switch {
	case err != nil:
		h.page().Fault(w, r, "device code throttle", err)
		return
	case wait > 0:
		request.Logger(ctx).Info("device code entry throttled", "retry_after", throttle.Seconds(wait))
		w.Header().Set("Retry-After", throttle.Seconds(wait))
		h.deviceEntry(w, r, http.StatusTooManyRequests, typed, "Too many attempts. Try again in "+throttle.Seconds(wait)+" seconds.")
		return
	}
	code, ok := models.NormalizeUserCode(typed)
	var da *models.DeviceAuthorization
	if ok {
		da, err = h.Devices.PendingDeviceAuthorization(ctx, code, now)
	}
	switch {
	case !ok || errors.Is(err, models.ErrNotFound):
		request.Logger(ctx).Info("device code refused", "reason", "unknown, expired or decided")
		h.deviceEntry(w, r, http.StatusBadRequest, typed, wrongUserCode)
		return
	case err != nil:
		h.page().Fault(w, r, "load device authorization", err)
		return
	}
	guess.Right()
	shown := models.FormatUserCode(code)
	client, err := h.Store.ClientByID(ctx, da.ClientID)
	if errors.Is(err, models.ErrNotFound) {
		// The client was deleted meanwhile (its codes go with it): as for any code no longer valid.
		request.Logger(ctx).Info("device code refused", "reason", "client deleted")
		h.deviceEntry(w, r, http.StatusBadRequest, typed, wrongUserCode)
		return
	} else if err != nil {
		h.page().Fault(w, r, "load the device's client", err)
		return
	}
	bs, user, err := h.poolSession(r, client.Pool)
	if err != nil {
		h.page().Fault(w, r, "device page session", err)
		return
	}
	if bs == nil {
		http.Redirect(w, r, page.LoginURL(client.Pool, provider.PathDevice+"?"+url.Values{"user_code": {shown}}.Encode()), http.StatusSeeOther)
		return
	}
	if decision == "lookup" {
		page.LogRender(r, h.Pages.Device(w, http.StatusOK, templates.DevicePage{
			Step: "confirm", Action: provider.PathDevice, CSRFToken: h.page().CSRFToken(w, r), UserCode: shown,
			ClientName: client.Name, UserEmail: user.Email, Scopes: describeScopes(da.Scopes),
		}))
		return
	}
	d := models.DeviceDecision{Approve: decision == "allow", UserID: user.ID, BrowserSessionID: bs.ID}
	if d.Approve {
		session := provider.SessionFor(grant.IdentityOf(user), da.Scopes, bs.ID, bs.AuthTime, da.CreatedAt)
		session.IDClaims.AuthenticationMethodsReferences = bs.AMR()
		session.ClientID = client.ID
		if d.Session, err = json.Marshal(session); err != nil {
			h.page().Fault(w, r, "encode device session", err)
			return
		}
	}
	if err := h.Devices.DecideDeviceAuthorization(ctx, code, d, now); errors.Is(err, models.ErrNotFound) {
		h.deviceEntry(w, r, http.StatusBadRequest, "", wrongUserCode) // decided in another tab, or expired meanwhile
		return
	} else if err != nil {
		h.page().Fault(w, r, "decide device authorization", err)
		return
	}
	request.Logger(ctx).Info("device authorization decided", "client", client.ID, "user", user.ID, "decision", decision)
	msg := "Device connected"
	if !d.Approve {
		msg = "Request denied"
	}
	page.LogRender(r, h.Pages.Device(w, http.StatusOK, templates.DevicePage{Step: "done", Message: msg}))
}

// poolSession is the browser's signed-in session and its user when that user is of pool and enabled; nil, nil
// otherwise. A session whose user is gone or disabled is ended, as at the authorization endpoint.
func (h *Browser) poolSession(r *http.Request, pool string) (*models.BrowserSession, *models.User, error) {
	bs, err := h.currentSession(r)
	if err != nil || bs == nil {
		return nil, nil, err
	}
	user, err := h.Store.UserByID(r.Context(), bs.UserID)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return nil, nil, err
	}
	if err != nil || user.Disabled {
		_ = h.Store.EndBrowserSession(r.Context(), bs.ID, h.Now())
		return nil, nil, nil
	}
	if user.Pool != pool {
		return nil, nil, nil
	}
	return bs, user, nil
}
