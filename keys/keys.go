// Package keys generates Latchkey's signing keys, encrypts them at rest, rotates them and publishes the JSON
// Web Key Set. It uses go-jose v4 and imports nothing else of ours.
//
// Every node loads the keys once, decrypts each private key once, and keeps them in an immutable snapshot
// behind an atomic pointer: signing and verifying never touch the database and never wait on a lock that
// database I/O holds. Rotation is a compare-and-swap in the store, so when many nodes decide at once that a key
// is due, exactly one of them schedules its successor and the others reload.
//
// A key's life is next (published, not signing) -> active (signing) -> retired (published, not signing), by
// moments stored with it that every node compares with its own clock: a rotated-in key is published for
// ActivationDelay before it signs, long enough for every node to load it and every cached JWKS to expire, and
// a retired key stays published until every token it signed has expired.
package keys

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// Signing algorithms Latchkey keeps a key for.
const (
	RS256 = "RS256"
	ES256 = "ES256"
)

// Algorithms lists the signing algorithms Latchkey keeps a key for, RS256 first (the default: OpenID Connect
// requires every provider to support it).
var Algorithms = []string{RS256, ES256}

// MinSecretLen is the shortest system secret accepted for encrypting keys at rest.
const MinSecretLen = 32

// Derive returns a 32-byte key for one purpose, HKDF-SHA256 over the system secret (no salt,
// info = "latchkey/"+purpose). Different purposes give independent keys, so one secret can serve them all.
func Derive(secret []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, "latchkey/"+purpose, 32)
	if err != nil {
		// hkdf.Key fails only for an output longer than 255 hash blocks, or a short secret in FIPS-only
		// mode; neither can be recovered from here.
		panic(fmt.Sprintf("keys: derive %q: %v", purpose, err))
	}
	return k
}
