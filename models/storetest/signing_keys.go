package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/models"
)

// signingKeyCases: signing key rotation by compare-and-swap and the next -> active -> retired lifecycle.
func signingKeyCases() []testCase {
	return []testCase{
		{"signing keys rotate by compare-and-swap", testSigningKeysCAS},
		{"signing keys concurrent first insert: exactly one wins", testSigningKeysConcurrentFirst},
		{"signing keys retired past NotAfter leave the list", testSigningKeysList},
		{"signing keys scheduled successor is next until its activation, then the old key retires", testSigningKeysScheduled},
		{"signing keys immediate rotation overtaking a scheduled one: one active key at every instant", testSigningKeysImmediateOvertakesScheduled},
		{"signing keys 40 concurrent rotations from one key: exactly one wins", testSigningKeysConcurrentRotation},
	}
}

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

func keyRecord(kid, alg string) keys.Record {
	return keys.Record{
		KID: kid, Alg: alg,
		PublicJWK:     []byte(`{"kid":"` + kid + `"}`),
		SealedPrivate: []byte{0, 1, 2, 0xff, byte(len(kid))},
	}
}

func kids(rs []keys.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.KID)
	}
	sort.Strings(out)
	return out
}

func testSigningKeysCAS(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := time.Now().UTC()
	must(t, "first key", s.ReplaceActiveKey(ctx, "", keyRecord("k1", keys.RS256), now, time.Time{}))
	if err := s.ReplaceActiveKey(ctx, "", keyRecord("k2", keys.RS256), now, now.Add(time.Hour)); !errors.Is(err, keys.ErrRotationConflict) {
		t.Errorf("second first-key: %v, want keys.ErrRotationConflict", err)
	}
	must(t, "other alg is independent", s.ReplaceActiveKey(ctx, "", keyRecord("e1", keys.ES256), now, time.Time{}))
	must(t, "rotate k1 -> k2", s.ReplaceActiveKey(ctx, "k1", keyRecord("k2", keys.RS256), now, now.Add(time.Hour)))
	if err := s.ReplaceActiveKey(ctx, "k1", keyRecord("k3", keys.RS256), now, now.Add(time.Hour)); !errors.Is(err, keys.ErrRotationConflict) {
		t.Errorf("rotate from a retired kid: %v, want keys.ErrRotationConflict", err)
	}
	if err := s.ReplaceActiveKey(ctx, "e1", keyRecord("k3", keys.RS256), now, now.Add(time.Hour)); !errors.Is(err, keys.ErrRotationConflict) {
		t.Errorf("rotate from another alg's kid: %v, want keys.ErrRotationConflict", err)
	}
	ks, err := s.ListSigningKeys(ctx, now)
	must(t, "list", err)
	if got := kids(ks); !reflect.DeepEqual(got, []string{"e1", "k1", "k2"}) {
		t.Fatalf("keys = %v, want [e1 k1 k2]", got)
	}
	for _, k := range ks {
		switch k.KID {
		case "k1":
			if k.RetiredAt == nil || !k.RetiredAt.Equal(now.Truncate(time.Microsecond)) || k.NotAfter == nil ||
				!k.NotAfter.Equal(now.Add(time.Hour).Truncate(time.Microsecond)) {
				t.Errorf("retired k1 = %+v", k)
			}
		case "k2":
			if k.RetiredAt != nil || k.NotAfter != nil || k.Alg != keys.RS256 ||
				string(k.PublicJWK) != `{"kid":"k2"}` || !reflect.DeepEqual(k.SealedPrivate, keyRecord("k2", "").SealedPrivate) {
				t.Errorf("active k2 = %+v", k)
			}
		}
	}
}

func testSigningKeysConcurrentFirst(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	const workers = 6
	errs := make([]error, workers)
	runWithDeadline(t, func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.ReplaceActiveKey(ctx, "", keyRecord(fmt.Sprintf("k%d", i), keys.ES256), time.Now(), time.Time{})
			}()
		}
		close(start)
		wg.Wait()
	})
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, keys.ErrRotationConflict):
		default:
			t.Errorf("worker %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d first inserts succeeded, want 1", wins)
	}
}

func testSigningKeysList(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := time.Now().UTC()
	must(t, "k1", s.ReplaceActiveKey(ctx, "", keyRecord("k1", keys.RS256), now, time.Time{}))
	must(t, "k2", s.ReplaceActiveKey(ctx, "k1", keyRecord("k2", keys.RS256), now, now.Add(time.Hour)))
	ks, err := s.ListSigningKeys(ctx, now.Add(59*time.Minute))
	must(t, "list before NotAfter", err)
	if got := kids(ks); !reflect.DeepEqual(got, []string{"k1", "k2"}) {
		t.Errorf("before NotAfter: %v, want [k1 k2]", got)
	}
	ks, err = s.ListSigningKeys(ctx, now.Add(61*time.Minute))
	must(t, "list after NotAfter", err)
	if got := kids(ks); !reflect.DeepEqual(got, []string{"k2"}) {
		t.Errorf("after NotAfter: %v, want [k2]", got)
	}
}
