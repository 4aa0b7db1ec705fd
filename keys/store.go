package keys

import (
	"context"
	"errors"
	"time"
)

// Key states reported in KeyInfo.State. A key is published from the moment it is stored until its NotAfter;
// it signs only while active.
const (
	StateNext    = "next"    // published, not signing yet: waiting for every node and every JWKS cache to know it
	StateActive  = "active"  // signing
	StateRetired = "retired" // published, not signing: tokens it signed may still be in use
)

// Record is one stored signing key row.
type Record struct {
	KID           string // RFC 7638 SHA-256 thumbprint, base64url
	Alg           string // RS256 | ES256
	PublicJWK     []byte // public JWK JSON (kid, alg, use=sig)
	SealedPrivate []byte // Sealer.Seal(private JWK JSON, aad=[]byte(KID))
	CreatedAt     time.Time
	// ActivatesAt is the moment the key starts signing. Every node compares it with its own clock, so all nodes
	// switch at the same moment without talking to each other. Zero means CreatedAt.
	ActivatesAt time.Time
	// RetiredAt is the moment the key stops signing: its successor's ActivatesAt, which may still be in the
	// future. nil while the key is the newest of its algorithm.
	RetiredAt *time.Time
	// NotAfter is when a retired key leaves the JWKS; nil while the key is the newest of its algorithm.
	NotAfter *time.Time
}

// activatesAt is ActivatesAt, or CreatedAt for a row that has none.
func (r Record) activatesAt() time.Time {
	if r.ActivatesAt.IsZero() {
		return r.CreatedAt
	}
	return r.ActivatesAt
}

// State returns the key's state at now: retired once RetiredAt has passed, next before ActivatesAt, otherwise
// active.
func (r Record) State(now time.Time) string {
	switch {
	case r.RetiredAt != nil && !now.Before(*r.RetiredAt):
		return StateRetired
	case now.Before(r.activatesAt()):
		return StateNext
	default:
		return StateActive
	}
}

// ErrRotationConflict is returned by Store.ReplaceActiveKey when the newest key is no longer the one the caller
// expected: another node rotated first.
var ErrRotationConflict = errors.New("keys: rotation conflict")

// Store is where keys live; models.Store implements it.
type Store interface {
	// ListSigningKeys returns every key whose NotAfter is unset or after now.
	ListSigningKeys(ctx context.Context, now time.Time) ([]Record, error)
	// ReplaceActiveKey schedules next to follow the newest key of next.Alg, in one transaction. If the newest
	// key (the one with no RetiredAt: active, or next when a rotation is already scheduled) is not currentKID
	// ("" = there must be no key for that alg), it returns ErrRotationConflict and changes nothing. Otherwise
	// the newest key retires when next activates (RetiredAt = next.ActivatesAt, or now when that is zero;
	// NotAfter = retireUntil), any older key of the alg still due to retire later retires then too (an
	// immediate rotation overtaking a scheduled one), and next is inserted.
	ReplaceActiveKey(ctx context.Context, currentKID string, next Record, now, retireUntil time.Time) error
}
