package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Nonces are the server's DPoP nonces (RFC 9449 §8, §9), stateless so that every node accepts any node's: a nonce
// is the MAC of a time window under a key derived from the system secret, valid in its window and the next. A
// client that keeps using the last DPoP-Nonce it was sent is never refused for it.
type Nonces struct {
	key    []byte
	period time.Duration
}

// DefaultNoncePeriod is a nonce window: a nonce lives between one and two of them.
const DefaultNoncePeriod = 5 * time.Minute

// NewNonces makes nonces under key (at least 32 bytes, for this purpose alone), changing every period.
func NewNonces(key []byte, period time.Duration) *Nonces {
	if period <= 0 {
		period = DefaultNoncePeriod
	}
	return &Nonces{key: key, period: period}
}

// Current is the nonce to send now.
func (n *Nonces) Current(now time.Time) string { return n.of(now.UnixNano() / int64(n.period)) }

// Valid accepts a nonce of the current window or the previous one.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	if nonce == "" {
		return false
	}
	w := now.UnixNano() / int64(n.period)
	return hmac.Equal([]byte(nonce), []byte(n.of(w))) || hmac.Equal([]byte(nonce), []byte(n.of(w-1)))
}

func (n *Nonces) of(window int64) string {
	m := hmac.New(sha256.New, n.key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(window))
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}
