package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// Device tokens are OWASP's "device cookie" defence against lockouts: the account key's block is shared by
// everyone who names the account, so a stranger guessing a few times an hour could keep it blocked for its owner
// too. After a successful sign-in the device (a browser cookie, or device_token in the token API) gets a token
// naming that account on that device; an attempt presenting one is counted on its own key instead of the
// account's, with the same policy. Strangers' failures never block it, and its own failures still get only the
// free attempts per window. The per-IP key applies to everyone as before.
//
// A token is "<id>.<mac>": id is random, mac an HMAC over the account key and id, so it names the account without
// carrying the email, and cannot be made for an account without signing in to it.

const (
	deviceCookie = "lk_device"
	// deviceCookieAge is long: the token only buys its own bucket of attempts, never a sign-in.
	deviceCookieAge = 365 * 24 * time.Hour
	// maxDeviceAccounts bounds the accounts one browser remembers; the one least recently signed in to goes.
	maxDeviceAccounts = 5
	// maxDeviceTokenLen bounds a token: an id of rand.Text() (26 characters today), ".", a base64 SHA-256 MAC.
	maxDeviceTokenLen = 64 + 1 + 43
)

func (t *Throttle) deviceMAC(pool, email, id string) string {
	m := hmac.New(sha256.New, t.DeviceKey)
	m.Write([]byte("device\x00" + accountKey(pool, email) + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// deviceOf returns the id of the first of tokens that names this account, or "" if none does (forged, for
// another account, made under another secret, or device tokens are off).
func (t *Throttle) deviceOf(tokens []string, pool, email string) string {
	if t == nil || len(t.DeviceKey) == 0 {
		return ""
	}
	for _, tok := range tokens {
		if !wellFormedDeviceToken(tok) {
			continue
		}
		id, mac, _ := strings.Cut(tok, ".")
		if hmac.Equal([]byte(mac), []byte(t.deviceMAC(pool, email, id))) {
			return id
		}
	}
	return ""
}

// wellFormedDeviceToken reports whether tok has a token's shape: an id of base32 letters, ".", 43 base64url
// characters. Only such tokens are verified or kept in the cookie.
func wellFormedDeviceToken(tok string) bool {
	id, mac, ok := strings.Cut(tok, ".")
	if !ok || id == "" || len(tok) > maxDeviceTokenLen || len(mac) != 43 {
		return false
	}
	for _, c := range []byte(id) {
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return false
		}
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(mac)
	return err == nil
}

// deviceToken returns the token for this account on the device whose id is device (the one its attempt
// presented), or for a new device when device is ""; "" when device tokens are off.
func (t *Throttle) deviceToken(pool, email, device string) string {
	if t == nil || len(t.DeviceKey) == 0 {
		return ""
	}
	if device == "" {
		device = rand.Text()
	}
	return device + "." + t.deviceMAC(pool, email, device)
}

// deviceTokens reads the browser's device cookie: at most maxDeviceAccounts tokens, unverified.
func (h *Browser) deviceTokens(r *http.Request) []string {
	c, err := r.Cookie(h.cookieName(deviceCookie))
	if err != nil || len(c.Value) > maxDeviceAccounts*(maxDeviceTokenLen+1) {
		return nil
	}
	toks := strings.Split(c.Value, "~")
	return toks[:min(len(toks), maxDeviceAccounts)]
}

// rememberDevice puts this account's token first in the browser's device cookie, in place of any earlier one for
// the account, keeping at most maxDeviceAccounts.
func (h *Browser) rememberDevice(w http.ResponseWriter, r *http.Request, pool, email, device string) {
	tok := h.Throttle.deviceToken(pool, email, device)
	if tok == "" {
		return
	}
	toks := []string{tok}
	for _, old := range h.deviceTokens(r) {
		if len(toks) == maxDeviceAccounts {
			break
		}
		if wellFormedDeviceToken(old) && h.Throttle.deviceOf([]string{old}, pool, email) == "" {
			toks = append(toks, old)
		}
	}
	h.setCookie(w, deviceCookie, strings.Join(toks, "~"), deviceCookieAge)
}
