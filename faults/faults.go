// Package faults remembers the infrastructure faults met while serving one request. fosite turns a storage error
// into whatever its check was about — an invalid client, an inactive token, "unable to find a suitable validation
// strategy" — and some of its paths keep only the error's text. Whoever meets a fault (the database pool, the key
// manager's adapter) notes it under the request's context, and the endpoint answers 503 whatever fosite made of
// it. It imports nothing of ours.
package faults

import (
	"context"
	"sync"
)

type key struct{}

type recorder struct {
	mu  sync.Mutex
	err error
}

// WithRecorder returns ctx with a recorder for the faults met while serving it.
func WithRecorder(ctx context.Context) context.Context {
	return context.WithValue(ctx, key{}, &recorder{})
}

// Note records err, the first fault under ctx; it does nothing without a recorder or error. Only note errors
// that mean "could not serve right now" (the database or the keys could not be reached), never a caller's
// mistake.
func Note(ctx context.Context, err error) {
	if err == nil {
		return
	}
	if r, ok := ctx.Value(key{}).(*recorder); ok {
		r.mu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
	}
}

// Recorded is the first fault noted under ctx, or nil.
func Recorded(ctx context.Context) error {
	if r, ok := ctx.Value(key{}).(*recorder); ok {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.err
	}
	return nil
}
