package models

import (
	"context"
	"sync"
)

// A request's database faults, remembered for the handler that answers it. fosite turns a storage error into
// whatever its check was about — an invalid client, an inactive token, "unable to find a suitable validation
// strategy" — and some of its paths keep only the error's text. Recording the fault where it happens, under the
// request's context, lets the endpoint answer 503 whatever fosite made of it.

type faultsKey struct{}

type faultRecorder struct {
	mu  sync.Mutex
	err error
}

// WithFaultRecorder returns ctx with a recorder for database faults met while serving it.
func WithFaultRecorder(ctx context.Context) context.Context {
	return context.WithValue(ctx, faultsKey{}, &faultRecorder{})
}

// RecordedFault is the first database fault (see IsUnavailable) met under ctx, or nil.
func RecordedFault(ctx context.Context) error {
	if r, ok := ctx.Value(faultsKey{}).(*faultRecorder); ok {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.err
	}
	return nil
}

// noteFault records err under ctx if it is a database fault, and returns it.
func noteFault(ctx context.Context, err error) error {
	if err == nil || !IsUnavailable(err) {
		return err
	}
	if r, ok := ctx.Value(faultsKey{}).(*faultRecorder); ok {
		r.mu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
	}
	return err
}
