package handlers

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type fakePinger struct{ err error }

func (f *fakePinger) Ping(context.Context) error { return f.err }

// An outage is logged once when it starts, with its cause, and once when it ends; probes in between answer 503
// with Retry-After and log nothing more.
func TestReadinessLogsAnOutageOnce(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	db := &fakePinger{}
	h := &Health{DB: db}
	probe := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ready(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec
	}
	for _, step := range []struct {
		err    error
		status int
	}{{nil, 200}, {errors.New("dial tcp: connection refused"), 503}, {errors.New("dial tcp: connection refused"), 503},
		{errors.New("dial tcp: connection refused"), 503}, {nil, 200}, {nil, 200}} {
		db.err = step.err
		rec := probe()
		if rec.Code != step.status {
			t.Fatalf("status %d, want %d", rec.Code, step.status)
		}
		if rec.Code == 503 && rec.Header().Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
	}
	logs := buf.String()
	if n := strings.Count(logs, "database unreachable"); n != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, "connection refused") || !strings.Contains(logs, "level=ERROR") {
		t.Errorf("the outage's cause is not logged at ERROR:\n%s", logs)
	}
	if n := strings.Count(logs, "database reachable again"); n != 1 {
		t.Errorf("recovery logged %d times, want once:\n%s", n, logs)
	}
}
