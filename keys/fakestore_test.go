package keys

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeStore is an in-memory Store with the compare-and-swap semantics models.Store must have.
type fakeStore struct {
	mu        sync.Mutex
	recs      []Record
	lists     int   // ListSigningKeys calls
	conflicts int   // ReplaceActiveKey calls refused with ErrRotationConflict
	listErr   error // returned by ListSigningKeys when set
	// keepExpired makes ListSigningKeys also return retired keys past NotAfter, as a lagging store might.
	keepExpired bool
	// onList, when set, runs in every ListSigningKeys call after the records are read, outside the mutex;
	// call counts from 1.
	onList func(call int)
}

func (s *fakeStore) ListSigningKeys(ctx context.Context, now time.Time) ([]Record, error) {
	s.mu.Lock()
	s.lists++
	call, hook, listErr := s.lists, s.onList, s.listErr
	var out []Record
	for _, r := range s.recs {
		if r.NotAfter == nil || s.keepExpired || r.NotAfter.After(now) {
			out = append(out, copyRecord(r))
		}
	}
	s.mu.Unlock()
	if hook != nil {
		hook(call) // after the read, as if the query's answer were still on its way back
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if listErr != nil {
		return nil, listErr
	}
	return out, nil
}

func (s *fakeStore) ReplaceActiveKey(ctx context.Context, currentKID string, next Record, now, retireUntil time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	activates := next.ActivatesAt
	if activates.IsZero() {
		activates = now
	}
	idx, headKID := -1, ""
	for i, r := range s.recs {
		if r.Alg == next.Alg && r.RetiredAt == nil {
			idx, headKID = i, r.KID
		}
	}
	if headKID != currentKID {
		s.conflicts++
		return ErrRotationConflict
	}
	if idx >= 0 {
		s.recs[idx].RetiredAt = &activates
		s.recs[idx].NotAfter = &retireUntil
	}
	for i, r := range s.recs {
		if r.Alg == next.Alg && i != idx && r.RetiredAt != nil && r.RetiredAt.After(activates) {
			s.recs[i].RetiredAt = &activates
		}
	}
	next = copyRecord(next)
	next.ActivatesAt = activates
	s.recs = append(s.recs, next)
	return nil
}

// all returns a copy of every stored record.
func (s *fakeStore) all() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, len(s.recs))
	for i, r := range s.recs {
		out[i] = copyRecord(r)
	}
	return out
}

// activeKIDs maps each algorithm to the kid the store says is active at now; the test fails if any algorithm
// has more than one.
func (s *fakeStore) activeKIDs(t *testing.T, now time.Time) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range s.all() {
		if r.State(now) != StateActive {
			continue
		}
		if prev, ok := out[r.Alg]; ok {
			t.Fatalf("store has two active %s keys at %v: %s and %s", r.Alg, now, prev, r.KID)
		}
		out[r.Alg] = r.KID
	}
	return out
}

// states maps each stored kid to its state at now.
func (s *fakeStore) states(now time.Time) map[string]string {
	out := map[string]string{}
	for _, r := range s.all() {
		out[r.KID] = r.State(now)
	}
	return out
}

func copyRecord(r Record) Record {
	r.PublicJWK = append([]byte(nil), r.PublicJWK...)
	r.SealedPrivate = append([]byte(nil), r.SealedPrivate...)
	if r.RetiredAt != nil {
		v := *r.RetiredAt
		r.RetiredAt = &v
	}
	if r.NotAfter != nil {
		v := *r.NotAfter
		r.NotAfter = &v
	}
	return r
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
