package logwriter

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an output that records every write call.
type syncBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// blockedOutput is an output whose writes wait until release is closed, like a pipe nobody reads.
type blockedOutput struct {
	syncBuffer
	release chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (b *blockedOutput) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return b.syncBuffer.Write(p)
}

func TestCloseWritesEveryRecordInOrder(t *testing.T) {
	out := &syncBuffer{}
	w := New(out, Options{FlushInterval: time.Hour}) // only Close flushes
	var want strings.Builder
	for i := range 1000 {
		line := fmt.Sprintf("record %d\n", i)
		want.WriteString(line)
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != want.String() {
		t.Fatalf("after Close the output has %d bytes, want %d", len(got), want.Len())
	}
	if w.Dropped() != 0 || w.Written() != uint64(want.Len()) {
		t.Fatalf("dropped %d, written %d", w.Dropped(), w.Written())
	}
	// After Close, records go straight to the output.
	_, _ = w.Write([]byte("late\n"))
	if !strings.HasSuffix(out.String(), "record 999\nlate\n") {
		t.Fatalf("a record written after Close did not reach the output")
	}
	if err := w.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
}

func TestRecordsAreWrittenWithinTheIntervalInBatches(t *testing.T) {
	out := &syncBuffer{}
	w := New(out, Options{FlushInterval: 20 * time.Millisecond})
	defer w.Close()
	for i := range 100 {
		fmt.Fprintf(w, "record %d\n", i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "record 99\n") {
		if time.Now().After(deadline) {
			t.Fatal("buffered records were not written within 5s without Close")
		}
		time.Sleep(5 * time.Millisecond)
	}
	out.mu.Lock()
	writes := out.writes
	out.mu.Unlock()
	if writes > 10 {
		t.Fatalf("100 records took %d writes to the output; they should be batched", writes)
	}
}

func TestFullBufferIsWrittenWithoutWaitingForTheInterval(t *testing.T) {
	out := &syncBuffer{}
	w := New(out, Options{FlushInterval: time.Hour, FlushBytes: 1024})
	defer w.Close()
	line := strings.Repeat("x", 99) + "\n"
	for range 20 { // 2,000 bytes: past FlushBytes
		_, _ = w.Write([]byte(line))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(out.String()) < 1024 {
		if time.Now().After(deadline) {
			t.Fatalf("a full buffer was not written within 5s (interval 1h); output has %d bytes", len(out.String()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWriteNeverWaitsForABlockedOutputAndCountsDrops(t *testing.T) {
	out := &blockedOutput{release: make(chan struct{}), entered: make(chan struct{})}
	var notified []uint64
	var nmu sync.Mutex
	w := New(out, Options{FlushInterval: time.Millisecond, FlushBytes: 100, MaxPendingBytes: 1000,
		OnDrop: func(n uint64) { nmu.Lock(); notified = append(notified, n); nmu.Unlock() }})

	line := []byte(strings.Repeat("y", 9) + "\n") // 10 bytes
	_, _ = w.Write(line)
	<-out.entered // the writer goroutine is now stuck in the output's Write, holding the first batch

	start := time.Now()
	for range 500 { // 5,000 bytes: far more than MaxPendingBytes
		_, _ = w.Write(line)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("500 writes took %v while the output was blocked", d)
	}
	dropped := w.Dropped()
	if dropped == 0 || dropped >= 500 {
		t.Fatalf("dropped %d of 500 records; want some kept (up to 1000 bytes pending) and the rest dropped", dropped)
	}

	close(out.release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	kept := uint64(strings.Count(out.String(), "\n"))
	if kept+dropped != 501 {
		t.Fatalf("written %d + dropped %d records, want 501", kept, dropped)
	}
	if kept*10 > 1000+10 {
		t.Fatalf("%d records were held while the output was blocked: more than MaxPendingBytes", kept)
	}
	nmu.Lock()
	var told uint64
	for _, n := range notified {
		told += n
	}
	nmu.Unlock()
	if told != dropped {
		t.Fatalf("OnDrop heard of %d dropped records, want %d", told, dropped)
	}
}

func TestOnDropCanLogThroughTheWriter(t *testing.T) {
	out := &blockedOutput{release: make(chan struct{}), entered: make(chan struct{})}
	var w *Writer
	var logger *slog.Logger
	w = New(out, Options{FlushInterval: time.Millisecond, MaxPendingBytes: 200,
		OnDrop: func(n uint64) { logger.Warn("log records dropped", "records", n) }})
	logger = slog.New(slog.NewJSONHandler(w, nil))
	logger.Info("first")
	<-out.entered
	for range 50 {
		logger.Info("while blocked")
	}
	close(out.release)
	w.Close()
	if !strings.Contains(out.String(), `"msg":"log records dropped"`) {
		t.Fatalf("the drop notice was not logged:\n%s", out.String())
	}
}

// TestConcurrentWritersLoseNothing runs under -race: many goroutines log through slog while the writer flushes
// often; every record arrives whole, exactly once.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	out := &syncBuffer{}
	w := New(out, Options{FlushInterval: time.Millisecond, FlushBytes: 512})
	logger := slog.New(slog.NewTextHandler(w, nil))
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				logger.Info("http request", "g", g, "i", i)
			}
		})
	}
	wg.Wait()
	w.Close()
	seen := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSuffix(out.String(), "\n"), "\n") {
		i := strings.Index(line, " g=")
		if i < 0 || !strings.Contains(line, "msg=\"http request\"") {
			t.Fatalf("torn or foreign line %q", line)
		}
		key := line[i:]
		if seen[key] {
			t.Fatalf("record %q written twice", key)
		}
		seen[key] = true
	}
	if len(seen) != goroutines*each || w.Dropped() != 0 {
		t.Fatalf("got %d distinct records, %d dropped; want %d, 0", len(seen), w.Dropped(), goroutines*each)
	}
}

func BenchmarkAccessLogLine(b *testing.B) {
	attrs := func(l *slog.Logger) {
		l.LogAttrs(context.Background(), slog.LevelInfo, "http request", slog.String("request_id", "abcdefghijkl-1z"),
			slog.String("method", "GET"), slog.String("path", "/.well-known/jwks.json"), slog.Int("status", 200),
			slog.Int64("bytes", 1200), slog.Duration("duration", 84*time.Microsecond),
			slog.String("remote", "127.0.0.1:51234"), slog.String("client_ip", "127.0.0.1"))
	}
	b.Run("direct", func(b *testing.B) {
		l := slog.New(slog.NewJSONHandler(io.Discard, nil))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				attrs(l)
			}
		})
	})
	b.Run("buffered", func(b *testing.B) {
		w := New(io.Discard, Options{})
		defer w.Close()
		l := slog.New(slog.NewJSONHandler(w, nil))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				attrs(l)
			}
		})
	})
}

func TestCloseGivesUpOnAnOutputNobodyReads(t *testing.T) {
	out := &blockedOutput{release: make(chan struct{}), entered: make(chan struct{})}
	defer close(out.release)
	w := New(out, Options{FlushInterval: time.Millisecond, CloseTimeout: 50 * time.Millisecond})
	_, _ = w.Write([]byte("stuck\n"))
	<-out.entered
	_, _ = w.Write([]byte("behind it\n"))
	start := time.Now()
	err := w.Close()
	if err == nil {
		t.Fatal("Close reported success although the output never took the records")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v with a 50ms CloseTimeout", d)
	}
	// Later records are dropped, not waited for.
	before := w.Dropped()
	done := make(chan struct{})
	go func() { _, _ = w.Write([]byte("after close\n")); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("a Write after a timed-out Close waited for the stuck output")
	}
	if w.Dropped() != before+1 {
		t.Fatalf("dropped %d, want %d", w.Dropped(), before+1)
	}
}
