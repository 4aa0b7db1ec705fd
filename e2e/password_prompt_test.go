package e2e

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// --password-stdin from a pipe reads its first line and asks nothing; the pipe path of users create is in
// TestUsers.
func TestPasswordStdinFromAPipe(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		env.cli(t, "users", "create", "--pool", "customers", "--email", "ada@example.com", "--password", "first-violet-tractor")
		_, errOut, code := env.cliCode(t, "second-violet-tractor\nignored\n", "users", "set-password", "--pool", "customers", "--email", "ada@example.com", "--password-stdin")
		if code != 0 || strings.Contains(errOut, "Password") {
			t.Fatalf("set-password from a pipe: exit %d, stderr %q (want no prompt)", code, errOut)
		}
		if got := apiLogin(t, srv, clientID, "ada@example.com", "second-violet-tractor"); got != 200 {
			t.Errorf("sign-in with the piped password: %d", got)
		}
	})
}

// On a terminal, --password-stdin asks on stderr, twice, and the terminal does not echo what is typed: the
// transcript of a real pseudo-terminal never shows the password. A mismatch changes nothing, and Ctrl-C at the
// prompt leaves the terminal echoing again.
func TestPasswordStdinOnATerminal(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		const pw = "typed-violet-tractor-47"

		s := startOnTerminal(t, bin, env, "users", "create", "--pool", "customers", "--email", "ada@example.com", "--password-stdin")
		s.expect(t, "Password: ")
		s.typeLine(t, pw)
		s.expect(t, "Password (again): ")
		s.typeLine(t, pw)
		if code := s.wait(t); code != 0 {
			t.Fatalf("users create on a terminal: exit %d\n%s", code, s.out)
		}
		s.expect(t, "created user")
		if strings.Contains(s.out.String(), pw) {
			t.Fatalf("the terminal echoed the password:\n%q", s.out)
		}
		if got := apiLogin(t, srv, clientID, "ada@example.com", pw); got != 200 {
			t.Errorf("sign-in with the password typed: %d", got)
		}

		s = startOnTerminal(t, bin, env, "users", "set-password", "--pool", "customers", "--email", "ada@example.com", "--password-stdin")
		s.expect(t, "Password: ")
		s.typeLine(t, "another-violet-tractor")
		s.expect(t, "Password (again): ")
		s.typeLine(t, "another-violet-tractoR")
		if code := s.wait(t); code != 1 {
			t.Fatalf("two different passwords typed: exit %d, want 1\n%s", code, s.out)
		}
		s.expect(t, "differ; nothing changed")
		if got := apiLogin(t, srv, clientID, "ada@example.com", pw); got != 200 {
			t.Errorf("after a mismatch the old password should still work: %d", got)
		}

		s = startOnTerminal(t, bin, env, "users", "set-password", "--pool", "customers", "--email", "ada@example.com", "--password-stdin")
		s.expect(t, "Password: ")
		if s.echoing(t) {
			t.Fatal("echo is on while the password prompt waits")
		}
		if _, err := s.pty.Write([]byte{3}); err != nil { // Ctrl-C
			t.Fatal(err)
		}
		if code := s.wait(t); code == 0 {
			t.Fatalf("Ctrl-C at the prompt: exit 0\n%s", s.out)
		}
		if !s.echoing(t) {
			t.Error("Ctrl-C at the password prompt left the terminal without echo")
		}
	})
}

// terminalSession is a latchkey process whose standard streams are a pseudo-terminal.
type terminalSession struct {
	cmd    *exec.Cmd
	pty    *os.File // the master: what a terminal emulator reads and writes
	tty    *os.File // the process's terminal, kept open to read its settings
	out    *lockedBuffer
	copied chan struct{}
	seen   int // how far expect has read
}

func startOnTerminal(t *testing.T, bin string, env testEnv, args ...string) *terminalSession {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	t.Cleanup(func() { ptmx.Close(); tty.Close() })
	cmd := exec.Command(bin, args...)
	cmd.Env = processEnv(env)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	// Its own session with the terminal as controlling terminal, so Ctrl-C there is a SIGINT to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &terminalSession{cmd: cmd, pty: ptmx, tty: tty, out: &lockedBuffer{}, copied: make(chan struct{})}
	go func() {
		defer close(s.copied)
		_, _ = io.Copy(s.out, ptmx) // ends with EIO once every holder of the terminal closes or exits
	}()
	return s
}

// expect waits until the transcript, past what was already expected, shows want.
func (s *terminalSession) expect(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if i := strings.Index(s.out.String()[s.seen:], want); i >= 0 {
			s.seen += i + len(want)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the terminal never showed %q; transcript:\n%q", want, s.out.String())
}

func (s *terminalSession) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := s.pty.Write([]byte(line + "\r")); err != nil {
		t.Fatal(err)
	}
}

func (s *terminalSession) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Fatalf("latchkey did not exit; transcript:\n%q", s.out.String())
	}
	return s.cmd.ProcessState.ExitCode()
}

// echoing reports whether the terminal echoes what is typed.
func (s *terminalSession) echoing(t *testing.T) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(s.tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// apiLogin signs in through the token API and returns the status.
func apiLogin(t *testing.T, srv *server, clientID, email, password string) int {
	t.Helper()
	code, _, _ := apiCall(t, "POST", srv.URL+"/api/v1/auth/login", map[string]any{"client_id": clientID, "email": email, "password": password}, nil)
	return code
}
