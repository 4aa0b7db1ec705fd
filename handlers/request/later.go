package request

import (
	"context"
	"sync"
	"time"
)

// Later runs work a request starts but does not wait for (the mail of a forgotten password, looked up after an
// answer that must take the same time for every address), off the request and bounded: at most Max at once,
// each within Timeout. When Max are running, more work is dropped rather than queued or given a goroutine of
// its own, so a flood of requests cannot pile up goroutines; the caller learns it and logs it. The zero value
// runs 64 at once, 30 s each.
type Later struct {
	Max     int
	Timeout time.Duration

	once  sync.Once
	slots chan struct{}
}

// Go runs fn in the background and reports whether it was started (false: too much running already).
func (l *Later) Go(fn func(ctx context.Context)) bool {
	l.once.Do(func() {
		n := l.Max
		if n <= 0 {
			n = 64
		}
		l.slots = make(chan struct{}, n)
	})
	select {
	case l.slots <- struct{}{}:
	default:
		return false
	}
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	go func() {
		defer func() { <-l.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		fn(ctx)
	}()
	return true
}
