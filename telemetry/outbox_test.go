package telemetry

import (
	"context"
	"errors"
	"testing"
)

func TestWatchOutbox(t *testing.T) {
	var fail bool
	m := New(Options{})
	m.WatchOutbox(func(context.Context) (int64, int64, error) {
		if fail {
			return 0, 0, errors.New("database down")
		}
		return 3, 1, nil
	})
	read := func() map[string]float64 {
		t.Helper()
		families, err := m.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, f := range families {
			for _, metric := range f.GetMetric() {
				if g := metric.GetGauge(); g != nil {
					out[f.GetName()] = g.GetValue()
				}
			}
		}
		return out
	}
	got := read()
	if got["latchkey_outbox_pending_messages"] != 3 || got["latchkey_outbox_dead_messages"] != 1 {
		t.Fatalf("outbox gauges = pending %v, dead %v; want 3 and 1", got["latchkey_outbox_pending_messages"], got["latchkey_outbox_dead_messages"])
	}
	fail = true
	got = read()
	if _, ok := got["latchkey_outbox_pending_messages"]; ok {
		t.Fatal("a series reported while the database could not answer")
	}
}
