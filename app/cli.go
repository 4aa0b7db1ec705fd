// Package app is the Latchkey application: configuration, wiring and the operator commands. cmd/latchkey is
// its executable; Run is the whole program.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/latchkey/latchkey/reqmeta"
)

// version is set at build time with -ldflags "-X github.com/latchkey/latchkey/app.version=...".
var version = "dev"

// cli carries the streams and environment a command runs with, so tests can run commands in-process.
type cli struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	env    func(string) string
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, c *cli, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the authorization server", runServe},
		{"migrate", "apply database migrations and exit", runMigrate},
		{"clients", "manage OAuth clients: create, list, get, delete, rotate-secret, registration-token", runClients},
		{"users", "manage users: create, list, get, delete, set-password, set-roles, set-claims, set-name, disable, enable", runUsers},
		{"sessions", "list and end users' sessions", runSessions},
		{"pools", "manage user pools: create, list, update", runPools},
		{"providers", "manage the other providers users may sign in with: create, list, update, delete", runProviders},
		{"webhooks", "manage webhooks: create, list, update, rotate-secret, delete, deliveries, redeliver", runWebhooks},
		{"keys", "manage signing keys: list, rotate", runKeys},
		{"audit", "read the audit log: list", runAudit},
		{"backup", "copy a SQLite database while the server runs: backup --to FILE", runBackup},
		{"healthcheck", "exit 0 when a running server answers on /healthz (the container's health check)", runHealthcheck},
		{"version", "print the version", runVersion},
	}
}

// errUsage means the command printed its own usage; exit 2 without another message.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, env: env}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		c.usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, cmd := range commands() {
		if cmd.name == args[0] {
			if cmd.name != "serve" {
				ctx = reqmeta.With(ctx, reqmeta.Meta{Actor: "cli"}) // what a command changes, the audit log credits to "cli"
			}
			err := cmd.run(ctx, c, args[1:])
			switch {
			case err == nil:
				return 0
			case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
				return 2
			default:
				fmt.Fprintln(stderr, "latchkey "+cmd.name+": "+err.Error())
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "latchkey: unknown command %q\n", args[0])
	c.usage()
	return 2
}

func (c *cli) usage() {
	fmt.Fprintln(c.stderr, "usage: latchkey <command> [flags]\n\ncommands:")
	for _, cmd := range commands() {
		fmt.Fprintf(c.stderr, "  %-11s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintln(c.stderr, "\nEvery command accepts the configuration flags (see `latchkey serve -h`); LATCHKEY_* variables set their defaults.")
}

func runVersion(_ context.Context, c *cli, args []string) error {
	fmt.Fprintln(c.stdout, "latchkey", version)
	return nil
}
