// Package logwriter is the server's log output: an io.Writer that takes each record into memory and writes the
// gathered records to the real output (stderr) from one goroutine, so a request never waits on that output.
//
// With one access-log line per request, writing each record to stderr as it is made costs a system call per
// request, and a slow reader of stderr (a full pipe to a log shipper, a paused terminal) would stall every request
// behind slog's handler lock. Here a record is copied into a buffer under a short lock; the writer goroutine swaps
// the buffer out and writes it in one call, at most FlushInterval after its first record or as soon as it holds
// FlushBytes. If the output falls so far behind that MaxPendingBytes are waiting, further records are dropped and
// counted rather than queued without bound or waited for; OnDrop hears how many, once the output catches up.
// Close writes everything still buffered; records written after Close go straight to the output.
package logwriter

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a Writer; zero values pick the defaults.
type Options struct {
	// FlushInterval is the longest a record waits in memory before it is written (default 100ms).
	FlushInterval time.Duration
	// FlushBytes is how much buffered output makes the writer write at once, without waiting for the interval
	// (default 64 KiB).
	FlushBytes int
	// MaxPendingBytes bounds the memory held for output that has not been written yet, counting the batch being
	// written; a record that does not fit is dropped (default 4 MiB).
	MaxPendingBytes int
	// CloseTimeout bounds how long Close waits for the last records to be written (default 5s), so an output
	// nobody reads cannot keep the process from exiting.
	CloseTimeout time.Duration
	// OnDrop, if set, is called from the writer goroutine after a write, with the number of records dropped since
	// its last call. It may log through this Writer.
	OnDrop func(records uint64)
}

// Writer is an io.Writer for log records; each Write must be one whole record, as slog handlers write them.
type Writer struct {
	out  io.Writer
	opts Options

	mu        sync.Mutex
	buf       []byte // records waiting for the writer goroutine
	spare     []byte // the last written batch, reused
	inFlight  int    // bytes of the batch being written now
	dropSince uint64 // records dropped since OnDrop was last told
	closed    bool
	abandoned bool // Close gave up waiting for the output

	outMu sync.Mutex // serialises writes to out: the goroutine's batches, then writes after Close

	dropped atomic.Uint64
	written atomic.Uint64
	errors  atomic.Uint64

	wake      chan struct{} // capacity 1: the buffer became non-empty or reached FlushBytes
	done      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// New starts a Writer over out. Call Close to write what is buffered and stop its goroutine.
func New(out io.Writer, opts Options) *Writer {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 100 * time.Millisecond
	}
	if opts.FlushBytes <= 0 {
		opts.FlushBytes = 64 << 10
	}
	if opts.MaxPendingBytes <= 0 {
		opts.MaxPendingBytes = 4 << 20
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = 5 * time.Second
	}
	w := &Writer{
		out: out, opts: opts,
		buf:   make([]byte, 0, 2*opts.FlushBytes),
		spare: make([]byte, 0, 2*opts.FlushBytes),
		wake:  make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{}),
	}
	go w.run()
	return w
}

// Write takes one record. It never waits for the output: it copies p, or drops it when MaxPendingBytes are
// already waiting. It reports success either way, because a logger can do nothing useful with the error.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		abandoned := w.abandoned
		w.mu.Unlock()
		if abandoned { // the output is stuck (Close timed out): waiting for it would hang the caller
			w.dropped.Add(1)
			return len(p), nil
		}
		w.outMu.Lock()
		defer w.outMu.Unlock()
		return w.write(p)
	}
	if len(w.buf)+w.inFlight+len(p) > w.opts.MaxPendingBytes {
		w.dropSince++
		w.mu.Unlock()
		w.dropped.Add(1)
		return len(p), nil
	}
	wasEmpty := len(w.buf) == 0
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= w.opts.FlushBytes
	w.mu.Unlock()
	if wasEmpty || full {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Close writes every buffered record, stops the writer goroutine and sends later writes straight to the output.
// It does not close the output. If the output does not take the last records within CloseTimeout, Close gives
// up on them and says so.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true // from here on Write goes to the output itself, after the final batch (outMu)
		w.mu.Unlock()
		close(w.done)
		t := time.NewTimer(w.opts.CloseTimeout)
		defer t.Stop()
		select {
		case <-w.stopped:
		case <-t.C:
			w.mu.Lock()
			w.abandoned = true
			w.mu.Unlock()
			w.closeErr = fmt.Errorf("logwriter: the log output did not take the last records within %v", w.opts.CloseTimeout)
		}
	})
	return w.closeErr
}

// Dropped is how many records were dropped because the output could not keep up.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Written is how many bytes reached the output.
func (w *Writer) Written() uint64 { return w.written.Load() }

// WriteErrors is how many writes to the output failed.
func (w *Writer) WriteErrors() uint64 { return w.errors.Load() }

func (w *Writer) run() {
	defer close(w.stopped)
	timer := time.NewTimer(w.opts.FlushInterval)
	timer.Stop()
	for {
		select {
		case <-w.wake:
		case <-w.done:
			w.flush()
			return
		}
		// Gather records for up to FlushInterval, unless the buffer fills first.
		if !w.full() {
			timer.Reset(w.opts.FlushInterval)
		gather:
			for {
				select {
				case <-timer.C:
					break gather
				case <-w.wake:
					if w.full() {
						timer.Stop()
						break gather
					}
				case <-w.done:
					timer.Stop()
					w.flush()
					return
				}
			}
		}
		w.flush()
	}
}

func (w *Writer) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.buf) >= w.opts.FlushBytes
}

// flush writes the buffered records in one call. Only the writer goroutine calls it.
func (w *Writer) flush() {
	w.outMu.Lock()
	w.mu.Lock()
	batch := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.inFlight = len(batch)
	dropped := w.dropSince
	w.dropSince = 0
	w.mu.Unlock()

	if len(batch) > 0 {
		_, _ = w.write(batch)
	}
	w.outMu.Unlock()

	w.mu.Lock()
	w.inFlight = 0
	if cap(batch) <= max(4*w.opts.FlushBytes, 1<<20) { // reuse it for the next swap, unless a burst grew it
		w.spare = batch[:0]
	}
	w.mu.Unlock()
	if dropped > 0 && w.opts.OnDrop != nil {
		w.opts.OnDrop(dropped)
	}
}

// write sends p to the output; the caller holds outMu.
func (w *Writer) write(p []byte) (int, error) {
	n, err := w.out.Write(p)
	w.written.Add(uint64(n))
	if err != nil {
		w.errors.Add(1)
	}
	return n, err
}
