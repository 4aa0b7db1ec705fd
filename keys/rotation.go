package keys

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Rotation outcomes reported to Options.OnRotation.
const (
	RotationScheduled = "scheduled" // a successor was stored; it signs after ActivationDelay
	RotationImmediate = "immediate" // a successor was stored active at once (RotateNow)
	RotationConflict  = "conflict"  // another node rotated this algorithm first
	RotationFailed    = "failed"    // the successor could not be generated or stored
)

// Run reloads every RefreshEvery and, when RotateEvery > 0 and a key is due, schedules its successor. A
// rotation lost to another node is logged at Info. Run returns when ctx is done.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.RefreshEvery)
	defer t.Stop()
	m.rotateDue(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, reloadTimeout)
		err := m.Reload(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				m.log.ErrorContext(ctx, "keeping the signing keys already loaded", "err", err)
			}
			continue
		}
		m.rotateDue(ctx)
	}
}

// dueForRotation lists the algorithms whose successor key should be scheduled at now: those whose newest key
// activated at least RotateEvery - ActivationDelay ago, so the successor activates when the key is RotateEvery
// old (and those with no key). A scheduled successor is the newest key and not yet active, so an algorithm
// with one is never due. It is empty when automatic rotation is off.
func (m *Manager) dueForRotation(now time.Time) []string {
	if m.opts.RotateEvery <= 0 {
		return nil
	}
	snap := m.snap.Load()
	var due []string
	for _, alg := range Algorithms {
		h, ok := snap.heads[alg]
		if !ok || !now.Before(h.activates.Add(m.opts.RotateEvery-m.ActivationDelay())) {
			due = append(due, alg)
		}
	}
	return due
}

// rotateDue schedules successors for the keys that are due. The store's compare-and-swap re-checks, inside its
// transaction, that the newest key we saw is still the newest, so when several nodes find the same key due
// only one schedules a successor.
func (m *Manager) rotateDue(ctx context.Context) {
	due := m.dueForRotation(m.now())
	if len(due) == 0 {
		return
	}
	_, errs := m.rotate(ctx, due, false)
	for _, err := range errs {
		switch {
		case errors.Is(err, ErrRotationConflict):
			m.log.InfoContext(ctx, "another node rotated the signing key first", "err", err)
		case ctx.Err() != nil:
		default:
			m.log.ErrorContext(ctx, "automatic key rotation failed", "err", err)
		}
	}
}

// Rotate schedules a new key for every algorithm, active ActivationDelay from now, and reloads; it returns the
// new keys. Until then the new keys are published and the current ones keep signing; from then on the old
// keys stay published, not signing, for RetainFor plus one reload interval. If another node rotated an
// algorithm since this Manager last reloaded, that algorithm is left alone and the error wraps
// ErrRotationConflict.
func (m *Manager) Rotate(ctx context.Context) ([]KeyInfo, error) {
	infos, errs := m.rotate(ctx, Algorithms, false)
	if err := errors.Join(errs...); err != nil {
		return infos, fmt.Errorf("rotate signing keys: %w", err)
	}
	return infos, nil
}

// RotateNow is Rotate with the new keys active at once, for when a key may be compromised. Nodes switch at
// their next reload (or when they meet the new kid), and verifiers holding a cached JWKS reject tokens signed
// with the new keys until their copy expires.
func (m *Manager) RotateNow(ctx context.Context) ([]KeyInfo, error) {
	infos, errs := m.rotate(ctx, Algorithms, true)
	if err := errors.Join(errs...); err != nil {
		return infos, fmt.Errorf("rotate signing keys now: %w", err)
	}
	return infos, nil
}

// rotate stores a successor for the newest key of each alg, comparing against the key in the current snapshot,
// then reloads. It returns the new keys and one error per failure.
func (m *Manager) rotate(ctx context.Context, algs []string, immediately bool) ([]KeyInfo, []error) {
	snap := m.snap.Load()
	now := m.now()
	activates := now
	if !immediately {
		activates = now.Add(m.ActivationDelay())
	}
	// Microseconds: what PostgreSQL keeps, so every node reads back the same moment.
	activates = activates.UTC().Truncate(time.Microsecond)
	// The margin of one reload interval covers a node whose clock runs behind and so stops signing a little late.
	retireUntil := activates.Add(m.opts.RetainFor + m.opts.RefreshEvery)
	var infos []KeyInfo
	var errs []error
	for _, alg := range algs {
		current := snap.heads[alg].kid
		rec, err := m.generate(alg, now)
		if err != nil {
			errs = append(errs, err)
			m.rotated(alg, RotationFailed)
			continue
		}
		rec.ActivatesAt = activates
		if err := m.store.ReplaceActiveKey(ctx, current, rec, now, retireUntil); err != nil {
			errs = append(errs, fmt.Errorf("replace %s key %q: %w", alg, current, err))
			if errors.Is(err, ErrRotationConflict) {
				m.rotated(alg, RotationConflict)
			} else {
				m.rotated(alg, RotationFailed)
			}
			continue
		}
		if immediately {
			m.rotated(alg, RotationImmediate)
			m.log.WarnContext(ctx, "rotated signing key immediately: verifiers holding a cached JWKS reject tokens it signs until their copy expires",
				"alg", alg, "kid", rec.KID, "retired_kid", current, "retired_published_until", retireUntil)
		} else {
			m.rotated(alg, RotationScheduled)
			m.log.InfoContext(ctx, "scheduled signing key", "alg", alg, "kid", rec.KID, "activates_at", activates,
				"retiring_kid", current, "retiring_published_until", retireUntil)
		}
		infos = append(infos, recordInfo(rec, now))
	}
	if err := m.Reload(ctx); err != nil {
		errs = append(errs, err)
	}
	return infos, errs
}

// rotated tells Options.OnRotation, if set, how a rotation of alg ended.
func (m *Manager) rotated(alg, outcome string) {
	if m.opts.OnRotation != nil {
		m.opts.OnRotation(alg, outcome)
	}
}
