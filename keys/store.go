package keys

import (
	"context"
	"errors"
	"time"
)

// Record is one stored signing key row.
type Record struct {
	KID           string     // RFC 7638 SHA-256 thumbprint, base64url
	Alg           string     // RS256 | ES256
	PublicJWK     []byte     // public JWK JSON (kid, alg, use=sig)
	SealedPrivate []byte     // Sealer.Seal(private JWK JSON, aad=[]byte(KID))
	CreatedAt     time.Time  //
	RetiredAt     *time.Time // nil while active
	NotAfter      *time.Time // a retired key leaves the JWKS after this; nil while active
}

// Active reports whether r is the active key of its algorithm.
func (r Record) Active() bool { return r.RetiredAt == nil }

// ErrRotationConflict is returned by Store.ReplaceActiveKey when the active key is no longer the one the caller
// expected: another node rotated first.
var ErrRotationConflict = errors.New("keys: rotation conflict")

// Store is where keys live; models.Store implements it.
type Store interface {
	// ListSigningKeys returns active keys and retired keys whose NotAfter is after now.
	ListSigningKeys(ctx context.Context, now time.Time) ([]Record, error)
	// ReplaceActiveKey, in one transaction: if the active key for next.Alg is not currentKID ("" = there must be
	// no active key for that alg), return ErrRotationConflict and change nothing; otherwise retire that key
	// (RetiredAt=now, NotAfter=retireUntil) and insert next as the active key.
	ReplaceActiveKey(ctx context.Context, currentKID string, next Record, now, retireUntil time.Time) error
}
