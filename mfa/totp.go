// Package mfa holds what second factors are made of, with no storage and no HTTP: TOTP (RFC 6238: HMAC-SHA-1,
// 6 digits, 30-second steps, one step of skew either way), the sealing of a TOTP secret at rest, recovery codes
// and their hashes, and the otpauth:// enrolment URI with its QR code.
package mfa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TOTP parameters: what every authenticator app defaults to (RFC 6238 §4, Google Authenticator's key URI format).
const (
	Period  = 30 * time.Second
	Digits  = 6
	Skew    = 1  // steps accepted either side of now: a phone clock a little off, a code typed as it turns
	keySize = 20 // 160 bits: RFC 4226 §4 recommends the HMAC-SHA-1 output length
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a new random TOTP secret.
func NewSecret() []byte {
	k := make([]byte, keySize)
	if _, err := rand.Read(k); err != nil {
		panic(fmt.Sprintf("mfa: read random: %v", err)) // crypto/rand does not fail on supported platforms
	}
	return k
}

// Step is the TOTP time step t falls in.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// Code is the TOTP code of secret at time step step (RFC 4226 §5.3 dynamic truncation).
func Code(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	mac := hmac.New(sha1.New, secret)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", Digits, v%1_000_000)
}

// Match returns the time step within Skew of now whose code is code, and whether there is one. Only the step
// is decided here; accepting it once (never a step at or before one already used) is the store's, atomically.
func Match(secret []byte, code string, now time.Time) (int64, bool) {
	code = NormalizeCode(code)
	if len(code) != Digits {
		return 0, false
	}
	cur := Step(now)
	found, step := 0, int64(0)
	for s := cur - Skew; s <= cur+Skew; s++ {
		// Every step is compared, in constant time, so the time taken tells nothing about which matched.
		if subtle.ConstantTimeCompare([]byte(Code(secret, s)), []byte(code)) == 1 && found == 0 {
			found, step = 1, s
		}
	}
	return step, found == 1
}

// NormalizeCode drops the spaces and dashes people type or paste inside a code.
func NormalizeCode(code string) string {
	return strings.NewReplacer(" ", "", "-", "", "\t", "").Replace(strings.TrimSpace(code))
}

// EncodeSecret is the secret as authenticator apps take it typed in: base32 without padding.
func EncodeSecret(secret []byte) string { return b32.EncodeToString(secret) }

// URI is the otpauth:// key URI an authenticator app scans: issuer and account label it in the app.
func URI(secret []byte, issuer, account string) string {
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	q := url.Values{
		"secret": {EncodeSecret(secret)}, "issuer": {issuer}, "algorithm": {"SHA1"},
		"digits": {fmt.Sprint(Digits)}, "period": {fmt.Sprint(int(Period / time.Second))},
	}
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// DecodeSecret reads a secret as EncodeSecret wrote it.
func DecodeSecret(s string) ([]byte, error) { return b32.DecodeString(s) }
