package keys

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// unknownKIDReloads bounds the reloads that unknown kids cause: at most one per UnknownKIDReloadGap, and callers
// arriving while one runs wait for it instead of starting their own.
type unknownKIDReloads struct {
	mu      sync.Mutex
	last    time.Time     // start of the last one
	running chan struct{} // closed when the one in flight ends; nil when none runs
	err     error         // how the last one failed (ErrKeysUnavailable), nil if it succeeded
}

// ErrKeysUnavailable is what a lookup of an unknown kid answers when the keys could not be reloaded to look for it:
// the token may well be ours, so it is neither valid nor invalid yet.
var ErrKeysUnavailable = errors.New("signing keys could not be reloaded")

// SigningKey returns the private key alg signs with at this moment, with KeyID, Algorithm and Use="sig" set:
// the newest key whose ActivatesAt has passed on this node's clock and which has not retired. It reads the
// in-memory snapshot only. The returned struct is a copy; the key it points to is shared and must not be changed.
func (m *Manager) SigningKey(alg string) (*jose.JSONWebKey, error) {
	candidates := m.snap.Load().signers[alg]
	if len(candidates) == 0 {
		return nil, fmt.Errorf("keys: no %q signing key (unsupported algorithm, or keys not loaded)", alg)
	}
	now := m.now()
	var pick *signer
	for i := range candidates {
		c := &candidates[i]
		if now.Before(c.activates) {
			continue
		}
		if c.retires == nil || now.Before(*c.retires) {
			pick = c
			break
		}
		if pick == nil {
			// Retired since the last reload, and this node has not loaded its successor: still better than
			// failing to sign. Its NotAfter leaves a reload interval of margin for exactly this.
			pick = c
		}
	}
	if pick == nil {
		// No key has activated by this node's clock: only the very first key of an algorithm, created by a
		// node whose clock runs ahead of ours. No verifier relies on an older one, so sign with it.
		pick = &candidates[len(candidates)-1]
	}
	k := *pick.private
	return &k, nil
}

// PublicKey returns a published public key (next, active, or retired and before its NotAfter) by kid, so that
// tokens signed before a rotation still verify. It reads the in-memory snapshot. A kid the snapshot does not
// hold may be a key another node created and this one has not loaded yet (an immediate rotation), so it
// reloads from the store before answering "unknown": at most once per UnknownKIDReloadGap however many
// requests ask, so made-up kids cannot hammer the database.
func (m *Manager) PublicKey(kid string) (*jose.JSONWebKey, bool) {
	k, err := m.LookupPublicKey(kid)
	return k, k != nil && err == nil
}

// LookupPublicKey is PublicKey telling "not ours" (nil, nil) from "could not check" (nil, ErrKeysUnavailable
// wrapping the cause): a verifier answers the first as an invalid token and the second as an outage.
func (m *Manager) LookupPublicKey(kid string) (*jose.JSONWebKey, error) {
	k, known := m.publicKey(kid)
	if k != nil || known || kid == "" {
		return k, nil
	}
	if err := m.reloadForUnknownKID(); err != nil {
		return nil, err
	}
	k, _ = m.publicKey(kid)
	return k, nil
}

// publicKey looks kid up in the snapshot; known reports whether the snapshot holds it at all (a key past its
// NotAfter is known but not returned).
func (m *Manager) publicKey(kid string) (key *jose.JSONWebKey, known bool) {
	p, ok := m.snap.Load().public[kid]
	if !ok {
		return nil, false
	}
	if p.notAfter != nil && !p.notAfter.After(m.now()) {
		return nil, true
	}
	k := *p.key
	return &k, true
}

// reloadForUnknownKID reloads because a request met an unknown kid, unless one ran less than
// UnknownKIDReloadGap ago; a caller arriving while one runs waits for it. It reports whether a reload ended
// that the caller should look at.
func (m *Manager) reloadForUnknownKID() error {
	u := &m.unknown
	u.mu.Lock()
	if running := u.running; running != nil {
		u.mu.Unlock()
		t := time.NewTimer(reloadTimeout)
		defer t.Stop()
		select {
		case <-running:
			u.mu.Lock()
			defer u.mu.Unlock()
			return u.err
		case <-t.C:
			return fmt.Errorf("%w: a reload is still running", ErrKeysUnavailable)
		}
	}
	now := m.now()
	if !u.last.IsZero() && now.Sub(u.last) < UnknownKIDReloadGap && now.Sub(u.last) >= 0 {
		// Too soon for another: the last one's outcome stands.
		err := u.err
		u.mu.Unlock()
		return err
	}
	u.last = now
	running := make(chan struct{})
	u.running = running
	u.mu.Unlock()

	// Detached from any one request: waiters share this reload, and one client giving up must not fail it for
	// the others.
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	err := m.reload(ctx)
	cancel()
	if err != nil {
		m.log.Error("reload signing keys for an unknown kid", "err", err)
		err = fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
	}
	u.mu.Lock()
	u.err = err
	u.running = nil
	close(running)
	u.mu.Unlock()
	return err
}

// JWKS returns the pre-encoded JSON Web Key Set (public keys only: next, active, and retired still within
// NotAfter) and its strong ETag, quoted. The body is shared between callers and must not be modified.
func (m *Manager) JWKS() (body []byte, etag string) {
	snap := m.snap.Load()
	return snap.jwks, snap.etag
}
