package throttle

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strings"
)

// Device tokens are OWASP's "device cookie" defence against lockouts: the account key's block is shared by
// everyone who names the account, so a stranger guessing a few times an hour could keep it blocked for its owner
// too. After a successful sign-in the device (a browser cookie, or device_token in the token API) gets a token
// naming that account on that device; an attempt presenting one is counted on its own key instead of the
// account's, with the same policy. Strangers' failures never block it, and its own failures still get only the
// free attempts per window. The per-IP key applies to everyone as before.
//
// A token is "<id>.<mac>": id is random, mac an HMAC over the account key, the stamp of the account's current
// password and id, so it names the account without carrying the email, cannot be made for an account without
// signing in to it, and stops counting once the password changes (a token kept by someone who once knew the
// password buys nothing after the owner changes it, nor for a new account that later takes the same email).

// MaxDeviceTokenLen bounds a token: an id of rand.Text() (26 characters today), ".", a base64 SHA-256 MAC.
const MaxDeviceTokenLen = 64 + 1 + 43

func (t *Throttle) deviceMAC(pool, email, stamp, id string) string {
	m := hmac.New(sha256.New, t.DeviceKey)
	m.Write([]byte("device\x00" + accountKey(pool, email) + "\x00" + stamp + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// DeviceOf returns the id of the first of tokens that names this account with its current password, or "" if
// none does (forged, for another account, from before a password change, made under another secret, or device
// tokens are off). It reads the account's credential stamp only when a token is there to check; if that fails,
// no exemption is given (the reservation that follows meets the same database).
func (t *Throttle) DeviceOf(ctx context.Context, tokens []string, pool, email string) string {
	if t == nil || len(t.DeviceKey) == 0 {
		return ""
	}
	tokens = slices.DeleteFunc(slices.Clone(tokens), func(tok string) bool { return !WellFormedDeviceToken(tok) })
	if len(tokens) == 0 {
		return ""
	}
	stamp, err := t.Store.CredentialStamp(ctx, pool, email)
	if err != nil || stamp == "" {
		return ""
	}
	for _, tok := range tokens {
		id, mac, _ := strings.Cut(tok, ".")
		if hmac.Equal([]byte(mac), []byte(t.deviceMAC(pool, email, stamp, id))) {
			return id
		}
	}
	return ""
}

// WellFormedDeviceToken reports whether tok has a token's shape: an id of base32 letters, ".", 43 base64url
// characters. Only such tokens are verified or kept in the cookie.
func WellFormedDeviceToken(tok string) bool {
	id, mac, ok := strings.Cut(tok, ".")
	if !ok || id == "" || len(tok) > MaxDeviceTokenLen || len(mac) != 43 {
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

// DeviceToken returns the token for this account, whose password has the stamp stamp (see
// models.User.CredentialStamp), on the device whose id is device (the one its attempt presented), or for a new
// device when device is ""; "" when device tokens are off.
func (t *Throttle) DeviceToken(pool, email, stamp, device string) string {
	if t == nil || len(t.DeviceKey) == 0 || stamp == "" {
		return ""
	}
	if device == "" {
		device = rand.Text()
	}
	return device + "." + t.deviceMAC(pool, email, stamp, device)
}

// IsAccountToken reports whether tok is this account's token for the password whose stamp is stamp, whatever
// device it names: a browser keeps one token per account.
func (t *Throttle) IsAccountToken(tok, pool, email, stamp string) bool {
	id, mac, _ := strings.Cut(tok, ".")
	return hmac.Equal([]byte(mac), []byte(t.deviceMAC(pool, email, stamp, id)))
}
