package browser

import (
	"net/http"
	"strings"
	"time"

	"github.com/latchkey/latchkey/handlers/throttle"
)

// The device cookie carries the sign-in throttle's device tokens (see throttle.Throttle.DeviceOf): one per
// account this browser has signed in to.
const (
	deviceCookie = "lk_device"
	// deviceCookieAge is long: the token only buys its own bucket of attempts, never a sign-in.
	deviceCookieAge = 365 * 24 * time.Hour
	// maxDeviceAccounts bounds the accounts one browser remembers; the one least recently signed in to goes.
	maxDeviceAccounts = 5
)

// deviceTokens reads the browser's device cookie: at most maxDeviceAccounts tokens, unverified.
func (h *Browser) deviceTokens(r *http.Request) []string {
	c, err := r.Cookie(h.page().CookieName(deviceCookie))
	if err != nil || len(c.Value) > maxDeviceAccounts*(throttle.MaxDeviceTokenLen+1) {
		return nil
	}
	toks := strings.Split(c.Value, "~")
	return toks[:min(len(toks), maxDeviceAccounts)]
}

// rememberDevice puts this account's token first in the browser's device cookie, in place of any earlier one for
// the account, keeping at most maxDeviceAccounts.
func (h *Browser) rememberDevice(w http.ResponseWriter, r *http.Request, pool, email, stamp, device string) {
	tok := h.Throttle.DeviceToken(pool, email, stamp, device)
	if tok == "" {
		return
	}
	toks := []string{tok}
	for _, old := range h.deviceTokens(r) {
		if len(toks) == maxDeviceAccounts {
			break
		}
		if throttle.WellFormedDeviceToken(old) && !h.Throttle.IsAccountToken(old, pool, email, stamp) {
			toks = append(toks, old)
		}
	}
	h.page().SetCookie(w, deviceCookie, strings.Join(toks, "~"), deviceCookieAge)
}
