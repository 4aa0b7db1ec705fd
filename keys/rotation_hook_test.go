package keys

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

// rotationLog records what Options.OnRotation heard.
type rotationLog struct {
	mu     sync.Mutex
	events []string
}

func (l *rotationLog) hook(alg, outcome string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, alg+":"+outcome)
}

func (l *rotationLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	slices.Sort(e)
	return e
}

func eachAlg(outcome string) []string {
	var want []string
	for _, alg := range Algorithms {
		want = append(want, alg+":"+outcome)
	}
	slices.Sort(want)
	return want
}

func TestOnRotationHearsEveryOutcome(t *testing.T) {
	store, clk := &fakeStore{}, newClock()
	var heard, otherHeard rotationLog
	m := newTestManager(t, store, clk, nil, func(o *Options) { o.OnRotation = heard.hook })
	other := newTestManager(t, store, clk, nil, func(o *Options) { o.OnRotation = otherHeard.hook })
	if err := m.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := other.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := heard.take(); len(got) != 0 {
		t.Fatalf("loading (first keys, not a rotation) reported %v", got)
	}

	if _, err := m.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := heard.take(), eachAlg(RotationScheduled); !slices.Equal(got, want) {
		t.Fatalf("Rotate reported %v, want %v", got, want)
	}

	// other has not reloaded: its rotation compares against keys that are no longer the newest.
	if _, err := other.Rotate(t.Context()); !errors.Is(err, ErrRotationConflict) {
		t.Fatalf("stale Rotate: %v, want ErrRotationConflict", err)
	}
	if got, want := otherHeard.take(), eachAlg(RotationConflict); !slices.Equal(got, want) {
		t.Fatalf("a lost rotation reported %v, want %v", got, want)
	}

	if _, err := m.RotateNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := heard.take(), eachAlg(RotationImmediate); !slices.Equal(got, want) {
		t.Fatalf("RotateNow reported %v, want %v", got, want)
	}
}
