package app

import (
	"context"
	"io"
)

// Run runs the latchkey command named by args[0] (serve, migrate, clients, users, ...) with the given streams and
// environment lookup, and returns the process exit status: 0 success, 1 failure, 2 usage.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	return run(ctx, args, stdin, stdout, stderr, getenv)
}
