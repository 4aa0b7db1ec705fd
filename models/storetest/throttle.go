package storetest

import (
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// Sign-in throttling. Every case injects now; nothing sleeps.

var testPolicy = models.ThrottlePolicy{Free: 2, Base: time.Second, Max: 10 * time.Second, Window: time.Hour}

func throttleFailure(t *testing.T, s *models.Store, key string, now time.Time, p models.ThrottlePolicy) time.Duration {
	t.Helper()
	d, err := s.ThrottleFailure(ctxT(t), key, now, p)
	must(t, "ThrottleFailure", err)
	return d
}

func throttleCheck(t *testing.T, s *models.Store, keys []string, now time.Time) time.Duration {
	t.Helper()
	d, err := s.ThrottleCheck(ctxT(t), keys, now)
	must(t, "ThrottleCheck", err)
	return d
}

func testThrottleBackoff(t *testing.T, s *models.Store) {
	const key = "acct:customers:ada@example.com"
	now := baseTime
	// Each failure comes the moment the previous block ends, as a patient attacker's would.
	for i, want := range []time.Duration{0, 0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		10 * time.Second, 10 * time.Second, 10 * time.Second} {
		got := throttleFailure(t, s, key, now, testPolicy)
		if got != want {
			t.Fatalf("failure %d: wait %v, want %v", i+1, got, want)
		}
		if c := throttleCheck(t, s, []string{key}, now); c != want {
			t.Errorf("failure %d: ThrottleCheck = %v, want %v", i+1, c, want)
		}
		now = now.Add(want)
	}
	if c := throttleCheck(t, s, []string{key}, now); c != 0 {
		t.Errorf("ThrottleCheck when the last block ended = %v, want 0", c)
	}
	if c := throttleCheck(t, s, []string{"acct:customers:other@example.com"}, now); c != 0 {
		t.Errorf("ThrottleCheck of an untouched key = %v, want 0", c)
	}
	if c := throttleCheck(t, s, nil, now); c != 0 {
		t.Errorf("ThrottleCheck of no keys = %v, want 0", c)
	}
}

func testThrottleCheckRemaining(t *testing.T, s *models.Store) {
	const acct, ip = "acct:default:bo@example.com", "ip:203.0.113.7"
	p := models.ThrottlePolicy{Free: 0, Base: 10 * time.Second, Max: time.Minute, Window: time.Hour}
	t0 := baseTime
	throttleFailure(t, s, acct, t0, p) // blocked until t0+10s
	throttleFailure(t, s, ip, t0, p)
	throttleFailure(t, s, ip, t0.Add(2*time.Second), p) // blocked until t0+22s
	tests := []struct {
		name  string
		keys  []string
		after time.Duration
		want  time.Duration
	}{
		{"account key at once", []string{acct}, 0, 10 * time.Second},
		{"account key later", []string{acct}, 4 * time.Second, 6 * time.Second},
		{"account key just before the end", []string{acct}, 10*time.Second - time.Millisecond, time.Millisecond},
		{"account key at the end", []string{acct}, 10 * time.Second, 0},
		{"account key after the end", []string{acct}, time.Hour, 0},
		{"both keys: the larger wait", []string{acct, ip}, 4 * time.Second, 18 * time.Second},
		{"both keys in the other order", []string{ip, acct}, 4 * time.Second, 18 * time.Second},
		{"the same key twice", []string{acct, acct}, 4 * time.Second, 6 * time.Second},
		{"one key blocked, one passed", []string{acct, ip}, 15 * time.Second, 7 * time.Second},
		{"both passed", []string{acct, ip}, 22 * time.Second, 0},
	}
	for _, tc := range tests {
		if got := throttleCheck(t, s, tc.keys, t0.Add(tc.after)); got != tc.want {
			t.Errorf("%s: ThrottleCheck = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A failure within Free never shortens a block already in place.
	loose := models.ThrottlePolicy{Free: 100, Base: time.Second, Max: time.Second, Window: time.Hour}
	if got := throttleFailure(t, s, ip, t0.Add(5*time.Second), loose); got != 17*time.Second {
		t.Errorf("failure within a looser policy's Free during a block: wait %v, want the remaining 17s", got)
	}
}

func testThrottleWindow(t *testing.T, s *models.Store) {
	const key = "acct:default:cy@example.com"
	p := models.ThrottlePolicy{Free: 1, Base: time.Second, Max: time.Minute, Window: 10 * time.Minute}
	t0 := baseTime
	tests := []struct {
		name  string
		after time.Duration // since t0
		want  time.Duration
	}{
		{"first failure is free", 0, 0},
		{"second failure", time.Minute, time.Second},
		{"exactly Window after the last failure still counts", 11 * time.Minute, 2 * time.Second},
		{"more than Window after the last failure is forgotten", 21*time.Minute + time.Second, 0},
		{"and counting starts again", 22 * time.Minute, time.Second},
	}
	for _, tc := range tests {
		if got := throttleFailure(t, s, key, t0.Add(tc.after), p); got != tc.want {
			t.Errorf("%s: wait %v, want %v", tc.name, got, tc.want)
		}
	}
}

func testThrottleReset(t *testing.T, s *models.Store) {
	const key, other = "acct:default:dee@example.com", "ip:198.51.100.1"
	p := models.ThrottlePolicy{Free: 0, Base: time.Minute, Max: time.Hour, Window: time.Hour}
	for range 3 {
		throttleFailure(t, s, key, baseTime, p)
		throttleFailure(t, s, other, baseTime, p)
	}
	if c := throttleCheck(t, s, []string{key}, baseTime); c != 4*time.Minute {
		t.Fatalf("ThrottleCheck before reset = %v, want 4m", c)
	}
	must(t, "ThrottleReset", s.ThrottleReset(ctxT(t), key))
	must(t, "ThrottleReset of an unknown key", s.ThrottleReset(ctxT(t), "acct:default:nobody@example.com"))
	if c := throttleCheck(t, s, []string{key}, baseTime); c != 0 {
		t.Errorf("ThrottleCheck after reset = %v, want 0", c)
	}
	if got := throttleFailure(t, s, key, baseTime, p); got != time.Minute {
		t.Errorf("first failure after reset: wait %v, want Base (count restarted)", got)
	}
	if c := throttleCheck(t, s, []string{other}, baseTime); c != 4*time.Minute {
		t.Errorf("other key after reset = %v, want 4m (untouched)", c)
	}
}

func testThrottleInvalidPolicy(t *testing.T, s *models.Store) {
	for _, p := range []models.ThrottlePolicy{
		{Free: -1, Base: time.Second, Max: time.Second, Window: time.Hour},
		{Free: 0, Base: 0, Max: time.Second, Window: time.Hour},
		{Free: 0, Base: time.Minute, Max: time.Second, Window: time.Hour},
		{Free: 0, Base: time.Second, Max: time.Minute, Window: 0},
	} {
		if _, err := s.ThrottleFailure(ctxT(t), "k", baseTime, p); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("ThrottleFailure with %+v: %v, want models.ErrInvalid", p, err)
		}
	}
	// Many failures do not overflow the doubling.
	p := models.ThrottlePolicy{Free: 0, Base: time.Nanosecond, Max: 90 * time.Minute, Window: time.Hour}
	var last time.Duration
	for range 80 {
		last = throttleFailure(t, s, "k", baseTime, p)
	}
	if last != 90*time.Minute {
		t.Errorf("wait after 80 failures = %v, want Max", last)
	}
}

// testThrottleConcurrent races failures for one key from many goroutines: each must be counted, so the
// waits are exactly Base, 2*Base, ..., 2^7*Base in some order.
func testThrottleConcurrent(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	const key, workers = "acct:default:eve@example.com", 8
	p := models.ThrottlePolicy{Free: 0, Base: time.Second, Max: 24 * time.Hour, Window: time.Hour}
	waits := make([]time.Duration, workers)
	errs := make([]error, workers)
	runWithDeadline(t, func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				waits[i], errs[i] = s.ThrottleFailure(ctx, key, baseTime, p)
			}()
		}
		close(start)
		wg.Wait()
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	slices.Sort(waits)
	var want []time.Duration
	for i := range workers {
		want = append(want, time.Second<<i)
	}
	if !reflect.DeepEqual(waits, want) {
		t.Errorf("waits = %v, want %v (a lost update repeats a wait)", waits, want)
	}
	if c := throttleCheck(t, s, []string{key}, baseTime); c != 128*time.Second {
		t.Errorf("ThrottleCheck = %v, want 128s", c)
	}
}

func testThrottleDeleteExpired(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	p := models.ThrottlePolicy{Free: 0, Base: time.Second, Max: time.Second, Window: 72 * time.Hour}
	long := models.ThrottlePolicy{Free: 0, Base: 48 * time.Hour, Max: 48 * time.Hour, Window: 72 * time.Hour}
	throttleFailure(t, s, "old", now.Add(-25*time.Hour), p)            // last failure 25h ago, block passed: goes
	throttleFailure(t, s, "old-blocked", now.Add(-25*time.Hour), long) // blocked for 23h more: kept
	throttleFailure(t, s, "recent", now.Add(-23*time.Hour), p)         // last failure 23h ago: kept
	n, err := s.DeleteExpired(ctx, now, 100)
	must(t, "DeleteExpired", err)
	if n != 1 {
		t.Errorf("DeleteExpired deleted %d rows, want 1", n)
	}
	// A kept key counts on from its earlier failure; a deleted one starts again.
	next := models.ThrottlePolicy{Free: 0, Base: time.Second, Max: time.Minute, Window: 72 * time.Hour}
	for _, tc := range []struct {
		key  string
		want time.Duration
	}{
		{"old", time.Second},        // deleted: first failure again
		{"recent", 2 * time.Second}, // kept: second failure
	} {
		if got := throttleFailure(t, s, tc.key, now, next); got != tc.want {
			t.Errorf("%s: wait after DeleteExpired %v, want %v", tc.key, got, tc.want)
		}
	}
	if c := throttleCheck(t, s, []string{"old-blocked"}, now); c != 23*time.Hour {
		t.Errorf("blocked key after DeleteExpired: ThrottleCheck = %v, want 23h", c)
	}
}
