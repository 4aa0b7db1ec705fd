package logwriter

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestJSONHandlerMatchesSlog logs the same records through NewJSONHandler and slog.NewJSONHandler (writing
// durations as strings, as ours does) and requires
// identical bytes: the records the fast path encodes and the ones it hands to slog alike.
func TestJSONHandlerMatchesSlog(t *testing.T) {
	pieces := []string{"", "a", "request_id", "/.well-known/jwks.json", "GET", "127.0.0.1:51234", "<script>&amp;",
		"quote\"d", `back\slash`, "tab\there", "new\nline", "nul\x00", "del\x7f", "é", "日本", "\u2028", "bad\xffutf8",
		"emoji 🙂", "~!@#$%^*()_+{}|:?,./;'[]=-`"}
	rng := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		var sb strings.Builder
		for range rng.IntN(3) + 1 {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return sb.String()
	}
	plainKeys := []string{"request_id", "method", "path", "status", "bytes", "duration", "remote", "client_ip"}
	attr := func() slog.Attr {
		key := plainKeys[rng.IntN(len(plainKeys))]
		if rng.IntN(10) == 0 {
			key = str()
		}
		switch rng.IntN(12) {
		case 0:
			return slog.Int(key, rng.IntN(1000)-500)
		case 1:
			return slog.Int64(key, math.MinInt64+rng.Int64N(10))
		case 2:
			return slog.Uint64(key, math.MaxUint64-rng.Uint64N(10))
		case 3:
			return slog.Bool(key, rng.IntN(2) == 0)
		case 4:
			return slog.Duration(key, time.Duration(rng.Int64N(int64(time.Hour))))
		case 5:
			return slog.Float64(key, rng.Float64()*1e6)
		case 6:
			return slog.Time(key, time.Unix(rng.Int64N(2e9), rng.Int64N(1e9)).UTC())
		case 7:
			return slog.Any(key, errors.New(str()))
		case 8:
			return slog.Group(key, slog.String("inner", str()))
		case 9:
			return slog.Any(key, []string{str()})
		default:
			return slog.String(key, str())
		}
	}
	times := []time.Time{{}, time.Date(2026, 11, 30, 7, 41, 2, 123456789, time.UTC),
		time.Date(2026, 11, 30, 7, 41, 2, 0, time.FixedZone("x", 3600)), time.Now(), time.Date(10001, 1, 1, 0, 0, 0, 0, time.UTC)}
	levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelInfo + 2}

	var fast, slow bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	hf, hs := NewJSONHandler(&fast, opts), slog.NewJSONHandler(&slow, &slog.HandlerOptions{Level: opts.Level, ReplaceAttr: durationAsString})
	fastPath := 0
	for i := range 20000 {
		r := slog.NewRecord(times[rng.IntN(len(times))], levels[rng.IntN(len(levels))], str(), 0)
		if i%3 == 0 { // plain records, like the access log
			r.Message = "http request"
			for _, k := range plainKeys {
				r.AddAttrs(slog.String(k, "v"+k), slog.Int(k, i), slog.Duration(k, time.Duration(i)), slog.Bool(k, i%2 == 0))
			}
		} else {
			for range rng.IntN(10) {
				r.AddAttrs(attr())
			}
		}
		fast.Reset()
		slow.Reset()
		errF, errS := hf.Handle(context.Background(), r), hs.Handle(context.Background(), r)
		if (errF == nil) != (errS == nil) {
			t.Fatalf("record %d: error %v, slog's %v", i, errF, errS)
		}
		if fast.String() != slow.String() {
			t.Fatalf("record %d differs:\n got %q\nwant %q", i, fast.String(), slow.String())
		}
		if _, ok := appendRecord(nil, r); ok {
			fastPath++
		}
	}
	if fastPath < 3000 {
		t.Fatalf("only %d of 20000 records took the fast path; the test does not exercise it", fastPath)
	}
}

func TestJSONHandlerDerivedLoggersAndLevels(t *testing.T) {
	var fast, slow bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelWarn}
	lf, ls := slog.New(NewJSONHandler(&fast, opts)), slog.New(slog.NewJSONHandler(&slow, &slog.HandlerOptions{Level: opts.Level, ReplaceAttr: durationAsString}))
	for _, l := range []*slog.Logger{lf, ls} {
		l.Info("below the level")
		l.Warn("plain", "k", "v")
		l.With("request_id", "abc").Warn("derived", "n", 1)
		l.WithGroup("g").Error("grouped", "k", "v")
	}
	// Times differ between the two calls: compare with them removed.
	strip := func(s string) string {
		var out []string
		for line := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
			_, rest, _ := strings.Cut(line, `","level"`)
			out = append(out, rest)
		}
		return strings.Join(out, "\n")
	}
	if strip(fast.String()) != strip(slow.String()) || strings.Count(fast.String(), "\n") != 3 {
		t.Fatalf("got:\n%s\nwant:\n%s", fast.String(), slow.String())
	}
	if NewJSONHandler(io.Discard, &slog.HandlerOptions{AddSource: true}).(*slog.JSONHandler) == nil {
		t.Fatal("with AddSource it must be slog's handler")
	}
}

func BenchmarkJSONHandler(b *testing.B) {
	for _, tc := range []struct {
		name string
		h    slog.Handler
	}{{"slog", slog.NewJSONHandler(io.Discard, nil)}, {"logwriter", NewJSONHandler(io.Discard, nil)}} {
		l := slog.New(tc.h)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l.LogAttrs(context.Background(), slog.LevelInfo, "http request", slog.String("request_id", "abcdefghijkl-1z"),
					slog.String("method", "GET"), slog.String("path", "/.well-known/jwks.json"), slog.Int("status", 200),
					slog.Int64("bytes", 1200), slog.Duration("duration", 84*time.Microsecond),
					slog.String("remote", "127.0.0.1:51234"), slog.String("client_ip", "127.0.0.1"))
			}
		})
	}
}
