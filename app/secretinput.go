package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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

// prompted asks on stderr and reads what is typed without echo, twice when confirming. The terminal is in raw
// mode (no echo, no signals) from before the first prompt appears until the answer is read: Ctrl-C and Ctrl-D
// arrive as keys and end the command, and a signal that cancels ctx (SIGTERM) leaves the terminal as it was.
func (in secretInput) prompted(ctx context.Context, c *cli, fd int) (string, error) {
	state, err := term.MakeRaw(fd)
	if err != nil {
		return "", fmt.Errorf("read from the terminal: %w", err)
	}
	defer term.Restore(fd, state)
	// One Terminal for both answers: what it read ahead of the first Enter belongs to the second.
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{c.stdin, c.stderr}, "")
	first, err := readNoEcho(ctx, c, t, in.prompt+": ")
	if err != nil {
		return "", err
	}
	if first == "" {
		return "", fmt.Errorf("no %s typed", strings.ToLower(in.prompt))
	}
	if !in.confirm {
		return first, nil
	}
	again, err := readNoEcho(ctx, c, t, in.prompt+" (again): ")
	if err != nil {
		return "", err
	}
	if again != first {
		return "", fmt.Errorf("the two %ss typed differ; nothing changed", strings.ToLower(in.prompt))
	}
	return first, nil
}

// readNoEcho shows prompt and reads one line without echo; the read goes on in the background so that ctx (the
// command's signal context) can end the wait.
func readNoEcho(ctx context.Context, c *cli, t *term.Terminal, prompt string) (string, error) {
	type line struct {
		s   string
		err error
	}
	got := make(chan line, 1)
	go func() {
		s, err := t.ReadPassword(prompt)
		got <- line{s, err}
	}()
	select {
	case l := <-got:
		if errors.Is(l.err, io.EOF) { // Ctrl-C or Ctrl-D
			fmt.Fprint(c.stderr, "\r\n")
			return "", errors.New("interrupted")
		} else if l.err != nil {
			return "", fmt.Errorf("read from the terminal: %w", l.err)
		}
		return l.s, nil
	case <-ctx.Done():
		fmt.Fprint(c.stderr, "\r\n")
		return "", errors.New("interrupted")
	}
}
