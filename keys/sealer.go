package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// errOpen is what Open returns for any failure to authenticate: the caller cannot tell, and must not be told,
// whether the ciphertext, the aad or the secret was wrong.
var errOpen = errors.New("keys: sealed data failed authentication (tampered, wrong key id, or wrong secret)")

// Sealer encrypts private keys at rest: AES-256-GCM under Derive(secret, "key-encryption"), with a random
// 96-bit nonce prefixed to the ciphertext. The additional data (the key id) binds a ciphertext to its row, so a
// sealed key copied onto another row does not open.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer keyed from the system secret, which must be at least MinSecretLen bytes.
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("keys: system secret is %d bytes, need at least %d", len(secret), MinSecretLen)
	}
	block, err := aes.NewCipher(Derive(secret, "key-encryption"))
	if err != nil {
		return nil, fmt.Errorf("keys: new cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: new gcm: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext bound to aad and returns nonce || ciphertext || tag.
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	out := make([]byte, ns, ns+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("keys: seal: read nonce: %w", err)
	}
	return s.aead.Seal(out, out, plaintext, aad), nil
}

// Open decrypts what Seal returned for the same aad. It fails if the data was altered, the aad differs, or the
// Sealer was made from a different secret.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < ns+s.aead.Overhead() {
		return nil, errOpen
	}
	pt, err := s.aead.Open(nil, sealed[:ns], sealed[ns:], aad)
	if err != nil {
		return nil, errOpen
	}
	return pt, nil
}
