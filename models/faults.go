package models

import (
	"context"

	"github.com/latchkey/latchkey/faults"
)

// noteFault records err under ctx (see package faults) if it says the database could not serve, and returns it.
func noteFault(ctx context.Context, err error) error {
	if IsUnavailable(err) {
		faults.Note(ctx, err)
	}
	return err
}
