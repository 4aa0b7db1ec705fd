package provider

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"strings"
	"sync"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/keys"
)

// MinClientSecretLength is the shortest secret an operator may set by hand. Generated secrets are 43 characters
// (256 random bits); a keyed fast hash is only safe for secrets with that much entropy.
const MinClientSecretLength = 32

const secretHashPrefix = "hmac-sha256$"

// ErrSecretTooShort is returned for operator-chosen client secrets below MinClientSecretLength.
var ErrSecretTooShort = errors.New("client secret must be at least 32 characters")

// SecretHasher hashes client secrets with HMAC-SHA-256 under a key derived from the system secret.
//
// Client secrets are generated with 256 bits of entropy, so a slow password hash buys nothing: nobody can
// brute-force a 256-bit value, fast hash or not. The HMAC key means a stolen database alone does not even allow
// offline guessing. Comparison is constant-time. It implements fosite.Hasher.
type SecretHasher struct {
	pool sync.Pool
}

var _ fosite.Hasher = (*SecretHasher)(nil)

// NewSecretHasher derives the hashing key from the system secret.
func NewSecretHasher(systemSecret []byte) *SecretHasher {
	return newSecretHasher(keys.Derive(systemSecret, "client-secret"))
}

// NewRegistrationTokenHasher hashes the tokens of dynamic client registration (initial access tokens and
// registration access tokens, RFC 7591 and 7592) the same way, under a key of their own: they are generated like
// client secrets (GenerateClientSecret), and the hash of one is never the hash of a client secret.
func NewRegistrationTokenHasher(systemSecret []byte) *SecretHasher {
	return newSecretHasher(keys.Derive(systemSecret, "registration-token"))
}

func newSecretHasher(key []byte) *SecretHasher {
	return &SecretHasher{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

func (h *SecretHasher) sum(secret []byte) []byte {
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	m.Write(secret)
	out := m.Sum(nil)
	h.pool.Put(m)
	return out
}

// HashSecret returns the stored form of a client secret.
func (h *SecretHasher) HashSecret(secret string) string {
	return secretHashPrefix + base64.RawURLEncoding.EncodeToString(h.sum([]byte(secret)))
}

// Hash implements fosite.Hasher.
func (h *SecretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	return []byte(h.HashSecret(string(data))), nil
}

// Compare implements fosite.Hasher: nil when data is the secret behind hash.
func (h *SecretHasher) Compare(_ context.Context, hashed, data []byte) error {
	stored, ok := strings.CutPrefix(string(hashed), secretHashPrefix)
	if !ok {
		return errors.New("unknown client secret hash format")
	}
	want, err := base64.RawURLEncoding.DecodeString(stored)
	if err != nil {
		return errors.New("malformed client secret hash")
	}
	if !hmac.Equal(want, h.sum(data)) {
		return errors.New("client secret mismatch")
	}
	return nil
}

// GenerateClientSecret returns a new secret with 256 bits of entropy.
func GenerateClientSecret() string { return generateSecret(32) }

// generateSecret returns n random bytes, base64url-encoded.
func generateSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// CheckClientSecret refuses operator-chosen secrets too short to be safe under a fast hash.
func CheckClientSecret(secret string) error {
	if len(secret) < MinClientSecretLength {
		return ErrSecretTooShort
	}
	return nil
}
