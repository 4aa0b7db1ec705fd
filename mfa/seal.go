package mfa

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/latchkey/latchkey/keys"
)

// Sealer keeps a factor's secret at rest: AES-256-GCM (keys.Sealer) under a key derived from the system secret
// for this use alone, bound to the factor id, so a sealed secret copied onto another factor's row does not open.
type Sealer struct {
	sealer *keys.Sealer
}

// NewSealer derives the sealing key from the system secret.
func NewSealer(systemSecret []byte) *Sealer {
	s, err := keys.NewSealer(keys.Derive(systemSecret, "mfa factor secret v1"))
	if err != nil {
		// Derive always returns 32 bytes, which NewSealer accepts: this cannot happen.
		panic(fmt.Sprintf("mfa: factor sealer: %v", err))
	}
	return &Sealer{sealer: s}
}

func factorAAD(factorID string) []byte { return []byte("latchkey/mfa/factor/v1\x00" + factorID) }

// Seal returns secret sealed for factor factorID, base64url-encoded.
func (s *Sealer) Seal(factorID string, secret []byte) (string, error) {
	b, err := s.sealer.Seal(secret, factorAAD(factorID))
	if err != nil {
		return "", fmt.Errorf("seal factor secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Open returns the secret Seal sealed for factorID; an error if sealed is not that.
func (s *Sealer) Open(factorID, sealed string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return nil, errors.New("open factor secret: not base64url")
	}
	secret, err := s.sealer.Open(b, factorAAD(factorID))
	if err != nil {
		return nil, fmt.Errorf("open factor secret: %w", err)
	}
	return secret, nil
}
