package keys

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func (s *fakeStore) listCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists
}

// A node that has not reloaded since another rotated with --now still verifies the new key's tokens: it looks
// in the store before calling the kid unknown.
func TestUnknownKIDReloadsFromStore(t *testing.T) {
	ctx := t.Context()
	store, clk := &fakeStore{}, newClock()
	a := loadedManager(t, store, clk)
	b := loadedManager(t, store, clk)
	infos, err := a.RotateNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := store.listCount()
	for _, info := range infos {
		if _, ok := b.PublicKey(info.KID); !ok {
			t.Fatalf("node b calls the new %s key unknown", info.Alg)
		}
	}
	if got := store.listCount() - before; got != 1 {
		t.Fatalf("node b reloaded %d times for two new kids, want 1 (the second was in the reloaded snapshot)", got)
	}
	// Its signing follows too: the reload brought the new active keys.
	for _, info := range infos {
		if k, _ := b.SigningKey(info.Alg); k.KeyID != info.KID {
			t.Fatalf("node b signs %s with %s after the reload, want %s", info.Alg, k.KeyID, info.KID)
		}
	}
}

func TestUnknownKIDReloadsAreBounded(t *testing.T) {
	store, clk := &fakeStore{}, newClock()
	m := loadedManager(t, store, clk)
	kids := signingKIDs(t, m)
	before := store.listCount()
	for i := range 100 {
		if _, ok := m.PublicKey(fmt.Sprintf("made-up-%d", i)); ok {
			t.Fatal("a made-up kid was found")
		}
	}
	if got := store.listCount() - before; got != 1 {
		t.Fatalf("100 made-up kids within %v caused %d reloads, want 1", UnknownKIDReloadGap, got)
	}
	if _, ok := m.PublicKey(kids[RS256]); !ok {
		t.Fatal("a known kid was refused")
	}
	if _, ok := m.PublicKey(""); ok {
		t.Fatal("an empty kid was found")
	}
	clk.Advance(UnknownKIDReloadGap - time.Millisecond)
	m.PublicKey("made-up-again")
	if got := store.listCount() - before; got != 1 {
		t.Fatalf("a made-up kid just inside the gap reloaded (%d reloads)", got)
	}
	clk.Advance(time.Millisecond)
	m.PublicKey("made-up-later")
	if got := store.listCount() - before; got != 2 {
		t.Fatalf("a made-up kid after the gap: %d reloads in all, want 2", got)
	}
}

// A retired key past its publication window is known to the node: no reload for it.
func TestExpiredKIDDoesNotReload(t *testing.T) {
	ctx := t.Context()
	store, clk := &fakeStore{}, newClock()
	m := loadedManager(t, store, clk)
	old := signingKIDs(t, m)
	if _, err := m.RotateNow(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(testRetain + testRefresh)
	before := store.listCount()
	if _, ok := m.PublicKey(old[RS256]); ok {
		t.Fatal("a key past its NotAfter was found")
	}
	if got := store.listCount() - before; got != 0 {
		t.Fatalf("a kid past its NotAfter caused %d reloads", got)
	}
}

// 40 requests meeting the same new kid at once share one reload and all find the key.
func TestConcurrentUnknownKIDShareOneReload(t *testing.T) {
	const workers = 40
	ctx := t.Context()
	store, clk := &fakeStore{}, newClock()
	a := loadedManager(t, store, clk)
	b := loadedManager(t, store, clk)
	infos, err := a.RotateNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kid := infos[0].KID
	before := store.listCount()

	var started sync.WaitGroup
	started.Add(workers)
	store.mu.Lock()
	store.onList = func(int) { started.Wait() } // hold the reload until every worker is on its way
	store.mu.Unlock()
	var found atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			started.Done()
			if _, ok := b.PublicKey(kid); ok {
				found.Add(1)
			}
		})
	}
	wg.Wait()
	if got := found.Load(); got != workers {
		t.Fatalf("%d of %d requests found the new kid", got, workers)
	}
	if got := store.listCount() - before; got != 1 {
		t.Fatalf("%d concurrent requests caused %d reloads, want 1", workers, got)
	}
}

func TestUnknownKIDReloadFailureIsLoggedAndKeepsSnapshot(t *testing.T) {
	store, clk := &fakeStore{}, newClock()
	logs := &syncBuffer{}
	m := newTestManager(t, store, clk, logs)
	if err := m.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	kids := signingKIDs(t, m)
	store.mu.Lock()
	store.listErr = errors.New("database is down")
	store.mu.Unlock()
	if _, ok := m.PublicKey("someone-elses"); ok {
		t.Fatal("found a kid while the store was down")
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "database is down") {
		t.Fatalf("the failed reload was not logged at ERROR with its cause:\n%s", logs)
	}
	if _, ok := m.PublicKey(kids[ES256]); !ok {
		t.Fatal("a known kid was refused after a failed reload")
	}
	// Not "not ours" but "could not check", so a verifier answers 503 rather than calling the token invalid; the
	// answer stands until the next reload is allowed, and a reload that works clears it.
	if k, err := m.LookupPublicKey("someone-elses"); k != nil || !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("LookupPublicKey while the store is down = %v, %v; want ErrKeysUnavailable", k, err)
	}
	store.mu.Lock()
	store.listErr = nil
	store.mu.Unlock()
	clk.Advance(UnknownKIDReloadGap)
	if k, err := m.LookupPublicKey("someone-elses"); k != nil || err != nil {
		t.Fatalf("LookupPublicKey once the store is back = %v, %v; want nil, nil (not ours)", k, err)
	}
}
