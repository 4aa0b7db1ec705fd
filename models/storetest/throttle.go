package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// throttleCases: sign-in throttling.
func throttleCases() []testCase {
	return []testCase{
		{"throttle free attempts, then blocks of Base doubling up to Max", testThrottleBackoff},
		{"throttle reservation on several keys is all or nothing and stops at the first refusal", testThrottleKeysInOrder},
		{"throttle attempts older than Window are forgotten", testThrottleWindow},
		{"throttle refund gives an attempt back; reset forgets the key", testThrottleRefundReset},
		{"throttle invalid policy is ErrInvalid; doubling does not overflow", testThrottleInvalidPolicy},
		{"throttle 40 concurrent reservations on one key: exactly Free proceed", testThrottleConcurrent},
		{"throttle rows a day old with their block passed are deleted", testThrottleDeleteExpired},
		{"throttle a refund back to no attempts leaves no row", testThrottleRefundLeavesNoRow},
	}
}

// Sign-in throttling: reservations. Every case injects now; nothing sleeps.

var testPolicy = models.ThrottlePolicy{Free: 2, Base: time.Second, Max: 10 * time.Second, Window: time.Hour}

func reserve(t *testing.T, s *models.Store, now time.Time, keys ...models.ThrottleKey) time.Duration {
	t.Helper()
	d, _ := reserveWhich(t, s, now, keys...)
	return d
}

// reserveWhich is reserve that also returns the index of the refusing key, and checks it agrees with the wait.
func reserveWhich(t *testing.T, s *models.Store, now time.Time, keys ...models.ThrottleKey) (time.Duration, int) {
	t.Helper()
	d, by, err := s.ThrottleReserve(ctxT(t), now, keys...)
	must(t, "ThrottleReserve", err)
	if (d > 0) != (by >= 0) || by >= len(keys) {
		t.Fatalf("ThrottleReserve: wait %v but refused by key %d of %d", d, by, len(keys))
	}
	return d, by
}

func key(k string, p models.ThrottlePolicy) models.ThrottleKey {
	return models.ThrottleKey{Key: k, Policy: p}
}

func testThrottleBackoff(t *testing.T, s *models.Store) {
	k := key("acct:customers:ada@example.com", testPolicy)
	now := baseTime
	for i := range testPolicy.Free {
		if got := reserve(t, s, now, k); got != 0 {
			t.Fatalf("free attempt %d refused: wait %v", i+1, got)
		}
	}
	// From the last free attempt on, each attempt that proceeds blocks the next for Base, 2*Base, ... up to Max;
	// attempts during a block are refused with what remains of it. Each comes the moment the previous block
	// ends, as a patient attacker's would.
	for i, block := range []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		10 * time.Second, 10 * time.Second, 10 * time.Second} {
		if got := reserve(t, s, now, k); got != block {
			t.Fatalf("block %d: an attempt right after the one that set it waits %v, want %v", i+1, got, block)
		}
		if got := reserve(t, s, now.Add(block-time.Millisecond), k); got != time.Millisecond {
			t.Fatalf("block %d: an attempt just before its end waits %v, want 1ms", i+1, got)
		}
		now = now.Add(block)
		if got := reserve(t, s, now, k); got != 0 {
			t.Fatalf("block %d: the attempt when it ended was refused: wait %v", i+1, got)
		}
	}
	if got := reserve(t, s, now, key("acct:customers:other@example.com", testPolicy)); got != 0 {
		t.Errorf("an untouched key was refused: wait %v", got)
	}
	if got := reserve(t, s, now); got != 0 {
		t.Errorf("no keys: wait %v", got)
	}
}

// testThrottleKeysInOrder: a reservation on several keys is all or nothing, and stops at the first key that
// refuses it, touching none after it.
func testThrottleKeysInOrder(t *testing.T, s *models.Store) {
	one := models.ThrottlePolicy{Free: 1, Base: time.Minute, Max: time.Hour, Window: time.Hour}
	ip, acct := key("ip:203.0.113.7", one), key("acct:default:bo@example.com", one)
	t0 := baseTime
	if got := reserve(t, s, t0, ip); got != 0 { // the IP's one free attempt; now blocked for a minute
		t.Fatalf("first attempt on the IP: wait %v", got)
	}
	if got, by := reserveWhich(t, s, t0.Add(time.Second), ip, acct); got != 59*time.Second || by != 0 {
		t.Fatalf("blocked IP: wait %v by key %d, want the IP's (0) remaining 59s", got, by)
	}
	// The refused reservation never reached the account key: its free attempt is still there.
	if got := reserve(t, s, t0.Add(2*time.Second), acct); got != 0 {
		t.Fatalf("account key after a refusal on the IP key: wait %v, want 0 (not counted)", got)
	}
	// Now the account key is blocked; a reservation through a fresh IP is refused and counts nothing on it.
	ip2 := key("ip:198.51.100.1", one)
	if got, by := reserveWhich(t, s, t0.Add(3*time.Second), ip2, acct); got != 59*time.Second || by != 1 {
		t.Fatalf("blocked account: wait %v by key %d, want the account's (1) remaining 59s", got, by)
	}
	if got := reserve(t, s, t0.Add(4*time.Second), ip2); got != 0 {
		t.Fatalf("IP key after a refusal on the account key: wait %v, want 0 (rolled back)", got)
	}
	if got := reserve(t, s, t0.Add(time.Minute+3*time.Second), key("ip:192.0.2.1", one), acct, ip); got != 0 {
		t.Fatalf("every block passed: wait %v", got)
	}
}

func testThrottleWindow(t *testing.T, s *models.Store) {
	k := key("acct:default:cy@example.com", models.ThrottlePolicy{Free: 2, Base: time.Second, Max: time.Minute, Window: 10 * time.Minute})
	t0 := baseTime
	tests := []struct {
		name  string
		after time.Duration // since t0
		want  time.Duration
	}{
		{"first attempt is free", 0, 0},
		{"more than Window after the last attempt, the count starts again", 10*time.Minute + time.Second, 0},
		{"so this is only the second attempt, which sets the first block", 11 * time.Minute, 0},
		{"and the block holds", 11 * time.Minute, time.Second},
		{"exactly Window after the last attempt it still counts", 21 * time.Minute, 0},
		{"so the next block doubled", 21 * time.Minute, 2 * time.Second},
	}
	for _, tc := range tests {
		if got := reserve(t, s, t0.Add(tc.after), k); got != tc.want {
			t.Errorf("%s: wait %v, want %v", tc.name, got, tc.want)
		}
	}
}

func testThrottleRefundReset(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	p := models.ThrottlePolicy{Free: 3, Base: time.Minute, Max: time.Hour, Window: time.Hour}
	ip, acct := key("ip:198.51.100.1", p), key("acct:default:dee@example.com", p)
	for range 3 {
		reserve(t, s, baseTime, ip, acct)
	}
	if got := reserve(t, s, baseTime, ip); got != time.Minute {
		t.Fatalf("after Free attempts: wait %v, want Base", got)
	}
	// Refunding the attempt that set the block lifts it: the count is below Free again.
	must(t, "ThrottleRefund", s.ThrottleRefund(ctx, ip))
	if got := reserve(t, s, baseTime, ip); got != 0 {
		t.Fatalf("after a refund below Free: wait %v, want 0", got)
	}
	if got := reserve(t, s, baseTime, ip); got != time.Minute {
		t.Fatalf("the refunded attempt was taken again: wait %v, want Base", got)
	}
	// Past Free a refund leaves the block: others from the address keep waiting it out.
	reserve(t, s, baseTime.Add(time.Minute), ip) // the 4th attempt: blocked for 2m
	must(t, "ThrottleRefund", s.ThrottleRefund(ctx, ip))
	if got := reserve(t, s, baseTime.Add(time.Minute), ip); got != 2*time.Minute {
		t.Errorf("refund above Free: wait %v, want the block of 2m kept", got)
	}
	must(t, "ThrottleRefund of an unknown key", s.ThrottleRefund(ctx, key("ip:192.0.2.99", p)))

	// Reset forgets the key entirely; other keys are untouched.
	if got := reserve(t, s, baseTime, acct); got != time.Minute {
		t.Fatalf("account before reset: wait %v, want Base", got)
	}
	must(t, "ThrottleReset", s.ThrottleReset(ctx, acct.Key))
	must(t, "ThrottleReset of an unknown key", s.ThrottleReset(ctx, "acct:default:nobody@example.com"))
	for i := range p.Free {
		if got := reserve(t, s, baseTime, acct); got != 0 {
			t.Fatalf("attempt %d after reset: wait %v, want 0 (count restarted)", i+1, got)
		}
	}
	if got := reserve(t, s, baseTime.Add(2*time.Minute), ip); got != time.Minute {
		t.Errorf("IP after the account reset: wait %v, want its own 1m left", got)
	}
}

func testThrottleInvalidPolicy(t *testing.T, s *models.Store) {
	for _, p := range []models.ThrottlePolicy{
		{Free: 0, Base: time.Second, Max: time.Second, Window: time.Hour},
		{Free: 1, Base: 0, Max: time.Second, Window: time.Hour},
		{Free: 1, Base: time.Minute, Max: time.Second, Window: time.Hour},
		{Free: 1, Base: time.Second, Max: time.Minute, Window: 0},
	} {
		if _, _, err := s.ThrottleReserve(ctxT(t), baseTime, key("ok", testPolicy), key("k", p)); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("ThrottleReserve with %+v: %v, want models.ErrInvalid", p, err)
		}
	}
	if got := reserve(t, s, baseTime, key("ok", models.ThrottlePolicy{Free: 1, Base: time.Hour, Max: time.Hour, Window: time.Hour})); got != 0 {
		t.Errorf("a refused invalid reservation counted on its valid key: wait %v", got)
	}
	// Many blocks do not overflow the doubling.
	p := models.ThrottlePolicy{Free: 1, Base: time.Millisecond, Max: 90 * time.Minute, Window: 1000 * time.Hour}
	now := baseTime
	var block time.Duration
	for range 80 {
		now = now.Add(block)
		reserve(t, s, now, key("k", p))
		block = reserve(t, s, now, key("k", p))
	}
	if block != 90*time.Minute {
		t.Errorf("block after 80 attempts = %v, want Max", block)
	}
}

// ThrottleConcurrent races 40 reservations on one account key (and an IP key each of their own) across the
// given stores, which share one database: exactly Free may proceed, whatever the interleaving, and the rest
// wait out the block the last free one set.
func ThrottleConcurrent(t *testing.T, stores ...*models.Store) {
	const workers = 40
	ctx := ctxT(t)
	p := models.ThrottlePolicy{Free: 5, Base: time.Minute, Max: time.Hour, Window: time.Hour}
	acct := key("acct:default:eve@example.com", p)
	waits := make([]time.Duration, workers)
	errs := make([]error, workers)
	runWithDeadline(t, func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			wg.Go(func() {
				<-start
				ip := key(fmt.Sprintf("ip:203.0.113.%d", i), p)
				waits[i], _, errs[i] = stores[i%len(stores)].ThrottleReserve(ctx, baseTime, ip, acct)
			})
		}
		close(start)
		wg.Wait()
	})
	proceeded := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
		switch waits[i] {
		case 0:
			proceeded++
		case p.Base:
		default:
			t.Errorf("worker %d: wait %v, want 0 or Base", i, waits[i])
		}
	}
	if proceeded != p.Free {
		t.Errorf("%d of %d concurrent attempts proceeded, want exactly Free = %d", proceeded, workers, p.Free)
	}
	if got := reserve(t, stores[0], baseTime, acct); got != p.Base {
		t.Errorf("after the burst: wait %v, want Base", got)
	}
	// Once the block passes exactly one of another burst proceeds.
	proceeded = 0
	var mu sync.Mutex
	runWithDeadline(t, func() {
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				d, _, err := stores[i%len(stores)].ThrottleReserve(ctx, baseTime.Add(p.Base), acct)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("second burst: %v", err)
				}
				if d == 0 {
					proceeded++
				}
			})
		}
		wg.Wait()
	})
	if proceeded != 1 {
		t.Errorf("%d attempts of a burst proceeded when the block passed, want exactly 1", proceeded)
	}
}

func testThrottleConcurrent(t *testing.T, s *models.Store) { ThrottleConcurrent(t, s) }

func testThrottleDeleteExpired(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	p := models.ThrottlePolicy{Free: 1, Base: time.Second, Max: time.Second, Window: 72 * time.Hour}
	long := models.ThrottlePolicy{Free: 1, Base: 48 * time.Hour, Max: 48 * time.Hour, Window: 72 * time.Hour}
	reserve(t, s, now.Add(-25*time.Hour), key("old", p))            // last attempt 25h ago, block passed: goes
	reserve(t, s, now.Add(-25*time.Hour), key("old-blocked", long)) // blocked for 23h more: kept
	reserve(t, s, now.Add(-23*time.Hour), key("recent", p))         // last attempt 23h ago: kept
	n, err := sweep(ctx, s, now, 100)
	must(t, "sweep", err)
	if n != 1 {
		t.Errorf("sweep deleted %d rows, want 1", n)
	}
	// A kept key counts on from its earlier attempt; a deleted one starts again.
	next := models.ThrottlePolicy{Free: 2, Base: time.Minute, Max: time.Hour, Window: 72 * time.Hour}
	for _, tc := range []struct {
		key  string
		want time.Duration // of a second attempt now
	}{
		{"old", 0},              // deleted: the first attempt now is the first again, so the second proceeds
		{"recent", time.Minute}, // kept: the first attempt now is its second, which set a block
	} {
		reserve(t, s, now, key(tc.key, next))
		if got := reserve(t, s, now, key(tc.key, next)); got != tc.want {
			t.Errorf("%s: wait after sweep %v, want %v", tc.key, got, tc.want)
		}
	}
	if got := reserve(t, s, now, key("old-blocked", long)); got != 23*time.Hour {
		t.Errorf("blocked key after sweep: wait %v, want 23h", got)
	}
}

// A refund that takes a key back to no attempts (and no block) deletes its row: refunded attempts, e.g. every
// successful sign-in's IP reservation, leave nothing behind for a day.
func testThrottleRefundLeavesNoRow(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	p := models.ThrottlePolicy{Free: 3, Base: time.Minute, Max: time.Hour, Window: time.Hour}
	once, twice := key("ip:198.51.100.7", p), key("acct:default:wes@example.com", p)
	reserve(t, s, baseTime, once, twice)
	reserve(t, s, baseTime, twice)
	must(t, "refund", s.ThrottleRefund(ctx, once))
	must(t, "refund", s.ThrottleRefund(ctx, twice))
	n, err := sweep(ctx, s, baseTime.Add(48*time.Hour), 100)
	must(t, "sweep", err)
	if n != 1 { // only the key with an attempt still counted
		t.Errorf("sweep found %d throttle rows, want 1", n)
	}
}
