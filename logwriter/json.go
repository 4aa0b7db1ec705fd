package logwriter

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// NewJSONHandler is slog.NewJSONHandler(w, opts) with a cheaper path for the commonest record: one logged
// through the root logger whose message, keys and values are plain printable ASCII strings, integers, booleans
// and durations — every access-log line. Those it encodes itself, byte for byte as slog's JSON handler would
// (TestJSONHandlerMatchesSlog holds it to that); every other record, and every logger derived with With or
// WithGroup, goes through slog's own handler. With AddSource or ReplaceAttr set it is slog's handler.
func NewJSONHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	if opts.AddSource || opts.ReplaceAttr != nil {
		return slog.NewJSONHandler(w, opts)
	}
	out := &lockedWriter{w: w}
	var level slog.Leveler = slog.LevelInfo
	if opts.Level != nil {
		level = opts.Level
	}
	slowOpts := *opts
	slowOpts.ReplaceAttr = durationAsString
	return &jsonHandler{slow: slog.NewJSONHandler(out, &slowOpts), level: level, out: out}
}

// durationAsString writes a duration as Go writes it ("1.5s", "720h0m0s"), not as slog's JSON handler does (a
// count of nanoseconds nobody reads right): the fast path does the same.
func durationAsString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

type jsonHandler struct {
	slow  slog.Handler // slog's handler over the same writer, for everything the fast path does not cover
	level slog.Leveler
	out   *lockedWriter
}

// lockedWriter serialises the fast path's writes with slog's, so records never interleave on any writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *jsonHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *jsonHandler) WithAttrs(attrs []slog.Attr) slog.Handler { return h.slow.WithAttrs(attrs) }

func (h *jsonHandler) WithGroup(name string) slog.Handler { return h.slow.WithGroup(name) }

var recordBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (h *jsonHandler) Handle(ctx context.Context, r slog.Record) error {
	bp := recordBuffers.Get().(*[]byte)
	b, ok := appendRecord((*bp)[:0], r)
	if !ok {
		recordBuffers.Put(bp)
		return h.slow.Handle(ctx, r)
	}
	_, err := h.out.Write(b)
	if cap(b) <= 16<<10 {
		*bp = b
		recordBuffers.Put(bp)
	}
	return err
}

// appendRecord encodes r as slog's JSON handler does, or reports false when r holds anything but plain
// printable-ASCII strings, integers, booleans and durations.
func appendRecord(b []byte, r slog.Record) ([]byte, bool) {
	b = append(b, '{')
	if !r.Time.IsZero() {
		t := r.Time.Round(0)
		if y := t.Year(); y < 0 || y >= 10000 {
			return b, false
		}
		b = append(b, `"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":`...)
	var ok bool
	if b, ok = appendPlainString(b, r.Level.String()); !ok {
		return b, false
	}
	b = append(b, `,"msg":`...)
	if b, ok = appendPlainString(b, r.Message); !ok {
		return b, false
	}
	ok = true
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "" {
			ok = false // slog elides some of these and writes others
			return false
		}
		b = append(b, ',')
		if b, ok = appendPlainString(b, a.Key); !ok {
			return false
		}
		b = append(b, ':')
		switch v := a.Value; v.Kind() {
		case slog.KindString:
			b, ok = appendPlainString(b, v.String())
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindUint64:
			b = strconv.AppendUint(b, v.Uint64(), 10)
		case slog.KindBool:
			b = strconv.AppendBool(b, v.Bool())
		case slog.KindDuration: // digits, '.', '-' and units (µ is valid UTF-8, which JSON takes as it is)
			b = append(append(append(b, '"'), v.Duration().String()...), '"')
		default: // floats, times, groups, errors, LogValuers, any: slog's handler
			ok = false
		}
		return ok
	})
	if !ok {
		return b, false
	}
	return append(b, '}', '\n'), true
}

// appendPlainString appends s quoted when no byte of it needs a JSON escape (printable ASCII other than '"'
// and '\\', and DEL, which slog leaves as it is); otherwise it reports false.
func appendPlainString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}
