package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/term"
)

// secretInput is how a command takes a secret (a password, a client secret): from --NAME, or with --NAME-stdin
// from standard input, typed without echo when that is a terminal, else the first line of a pipe.
type secretInput struct {
	flag    string // the flag's name: "password", "client-secret"
	prompt  string // what a terminal shows: "Password"
	confirm bool   // a typed value is asked twice: a typo in a new password would lock its owner out
}

var (
	newPasswordInput  = secretInput{flag: "password", prompt: "Password", confirm: true}
	clientSecretInput = secretInput{flag: "client-secret", prompt: "Client secret"}
)

// read returns the secret from the flag's value or, fromStdin, from standard input.
func (in secretInput) read(ctx context.Context, c *cli, flagValue string, fromStdin bool) (string, error) {
	if !fromStdin {
		if flagValue == "" {
			return "", fmt.Errorf("a %s is required (--%[1]s or --%[1]s-stdin)", in.flag)
		}
		return flagValue, nil
	}
	if flagValue != "" {
		return "", fmt.Errorf("give --%[1]s or --%[1]s-stdin, not both", in.flag)
	}
	if fd, ok := terminal(c.stdin); ok {
		return in.prompted(ctx, c, fd)
	}
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("--%s-stdin: no %[1]s on standard input", in.flag)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// terminal is the descriptor of stream (stdin, stderr) when it is a terminal.
func terminal(stream any) (int, bool) {
	f, ok := stream.(interface{ Fd() uintptr })
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// prompted asks on stderr and reads what is typed without echo, twice when confirming.
func (in secretInput) prompted(ctx context.Context, c *cli, fd int) (string, error) {
	first, err := readNoEcho(ctx, c, fd, in.prompt+": ")
	if err != nil {
		return "", err
	}
	if first == "" {
		return "", fmt.Errorf("no %s typed", strings.ToLower(in.prompt))
	}
	if !in.confirm {
		return first, nil
	}
	again, err := readNoEcho(ctx, c, fd, in.prompt+" (again): ")
	if err != nil {
		return "", err
	}
	if again != first {
		return "", fmt.Errorf("the two %ss typed differ; nothing changed", strings.ToLower(in.prompt))
	}
	return first, nil
}

// readNoEcho reads one line from the terminal with echo off. Ctrl-C cancels ctx (the command's signal context)
// while the read blocks: the terminal gets its echo back before the command ends, not left silent.
func readNoEcho(ctx context.Context, c *cli, fd int, prompt string) (string, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("read from the terminal: %w", err)
	}
	fmt.Fprint(c.stderr, prompt)
	type line struct {
		b   []byte
		err error
	}
	got := make(chan line, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		got <- line{b, err}
	}()
	select {
	case l := <-got:
		fmt.Fprintln(c.stderr) // the Enter that was not echoed
		if l.err != nil {
			return "", fmt.Errorf("read from the terminal: %w", l.err)
		}
		return strings.TrimRight(string(l.b), "\r"), nil
	case <-ctx.Done():
		_ = term.Restore(fd, state)
		fmt.Fprintln(c.stderr)
		return "", errors.New("interrupted")
	}
}
