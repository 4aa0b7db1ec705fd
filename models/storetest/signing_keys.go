package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/models"
)

// Signing key lifecycle: next -> active -> retired, by stored moments.

func scheduledKey(kid, alg string, activates time.Time) keys.Record {
	r := keyRecord(kid, alg)
	r.ActivatesAt = activates
	return r
}

func byKID(t *testing.T, s *models.Store, now time.Time) map[string]keys.Record {
	t.Helper()
	ks, err := s.ListSigningKeys(ctxT(t), now)
	must(t, "list", err)
	out := map[string]keys.Record{}
	for _, k := range ks {
		out[k.KID] = k
	}
	return out
}

// activeAt fails unless exactly one key of alg is active at now, and returns it.
func activeAt(t *testing.T, s *models.Store, alg string, now time.Time) string {
	t.Helper()
	var active []string
	for kid, k := range byKID(t, s, now) {
		if k.Alg == alg && k.State(now) == keys.StateActive {
			active = append(active, kid)
		}
	}
	if len(active) != 1 {
		t.Fatalf("at %v the active %s keys are %v, want exactly one", now, alg, active)
	}
	return active[0]
}

func testSigningKeysScheduled(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	activates := now.Add(time.Hour)
	must(t, "k1", s.ReplaceActiveKey(ctx, "", scheduledKey("k1", keys.RS256, now), now, time.Time{}))
	must(t, "schedule k2", s.ReplaceActiveKey(ctx, "k1", scheduledKey("k2", keys.RS256, activates), now, activates.Add(2*time.Hour)))
	ks := byKID(t, s, now)
	k1, k2 := ks["k1"], ks["k2"]
	if !k1.ActivatesAt.Equal(now) || k1.RetiredAt == nil || !k1.RetiredAt.Equal(activates) ||
		k1.NotAfter == nil || !k1.NotAfter.Equal(activates.Add(2*time.Hour)) {
		t.Errorf("k1 = %+v, want retiring at %v, published until %v", k1, activates, activates.Add(2*time.Hour))
	}
	if !k2.ActivatesAt.Equal(activates) || k2.RetiredAt != nil || k2.NotAfter != nil {
		t.Errorf("k2 = %+v, want activating at %v, no retirement", k2, activates)
	}
	for _, tc := range []struct {
		at     time.Time
		states map[string]string
	}{
		{now, map[string]string{"k1": keys.StateActive, "k2": keys.StateNext}},
		{activates.Add(-time.Microsecond), map[string]string{"k1": keys.StateActive, "k2": keys.StateNext}},
		{activates, map[string]string{"k1": keys.StateRetired, "k2": keys.StateActive}},
	} {
		got := map[string]string{"k1": k1.State(tc.at), "k2": k2.State(tc.at)}
		if !reflect.DeepEqual(got, tc.states) {
			t.Errorf("states at %v = %v, want %v", tc.at, got, tc.states)
		}
		activeAt(t, s, keys.RS256, tc.at)
	}
	// The scheduled key is now the one to rotate from; the active one is not.
	if err := s.ReplaceActiveKey(ctx, "k1", scheduledKey("k3", keys.RS256, activates), now, activates); !errors.Is(err, keys.ErrRotationConflict) {
		t.Errorf("rotate from the key a successor is already scheduled for: %v, want keys.ErrRotationConflict", err)
	}
	// Past k1's publication window only k2 is listed.
	if got := kids(mapValues(byKID(t, s, activates.Add(2*time.Hour)))); !reflect.DeepEqual(got, []string{"k2"}) {
		t.Errorf("after k1's NotAfter: %v, want [k2]", got)
	}
}

func testSigningKeysImmediateOvertakesScheduled(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	scheduled := now.Add(time.Hour)
	emergency := now.Add(time.Minute)
	must(t, "k1", s.ReplaceActiveKey(ctx, "", scheduledKey("k1", keys.ES256, now), now, time.Time{}))
	must(t, "schedule k2", s.ReplaceActiveKey(ctx, "k1", scheduledKey("k2", keys.ES256, scheduled), now, scheduled.Add(time.Hour)))
	must(t, "k3 now", s.ReplaceActiveKey(ctx, "k2", scheduledKey("k3", keys.ES256, emergency), emergency, emergency.Add(time.Hour)))
	ks := byKID(t, s, now)
	for _, kid := range []string{"k1", "k2"} {
		if k := ks[kid]; k.RetiredAt == nil || !k.RetiredAt.Equal(emergency) || k.NotAfter == nil || k.NotAfter.Before(emergency.Add(time.Hour)) {
			t.Errorf("%s = %+v, want retired at %v and published at least an hour after", kid, k, emergency)
		}
	}
	// Exactly one key signs at every instant, and k2 never does.
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{now, "k1"}, {emergency.Add(-time.Microsecond), "k1"}, {emergency, "k3"}, {scheduled, "k3"}, {scheduled.Add(time.Minute), "k3"},
	} {
		if got := activeAt(t, s, keys.ES256, tc.at); got != tc.want {
			t.Errorf("active at %v = %s, want %s", tc.at, got, tc.want)
		}
	}
}

func testSigningKeysConcurrentRotation(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	const workers = 40
	now := time.Now().UTC().Truncate(time.Microsecond)
	must(t, "k0", s.ReplaceActiveKey(ctx, "", scheduledKey("k0", keys.RS256, now), now, time.Time{}))
	errs := make([]error, workers)
	runWithDeadline(t, func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			wg.Go(func() {
				<-start
				errs[i] = s.ReplaceActiveKey(ctx, "k0", scheduledKey(fmt.Sprintf("n%d", i), keys.RS256, now.Add(time.Hour)), now, now.Add(2*time.Hour))
			})
		}
		close(start)
		wg.Wait()
	})
	wins, conflicts := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, keys.ErrRotationConflict):
			conflicts++
		default:
			t.Errorf("worker %d: %v", i, err)
		}
	}
	if wins != 1 || conflicts != workers-1 {
		t.Errorf("%d rotations won and %d conflicted, want 1 and %d", wins, conflicts, workers-1)
	}
	if got := len(byKID(t, s, now)); got != 2 {
		t.Errorf("%d keys stored, want 2", got)
	}
}

func mapValues(m map[string]keys.Record) []keys.Record {
	out := make([]keys.Record, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
