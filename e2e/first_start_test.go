package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const firstStartMsg = "first start: no client registered yet"

// The first start of `latchkey serve` says where the database and the secret are, the discovery URL and the
// command that registers a first client, which works as written; once a client exists, a start says nothing of
// it. On a terminal the same comes in plain words too.
func TestFirstStartHint(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)

	t.Run("sqlite with a generated secret", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		addr := freePort(t)
		settings := map[string]string{"LATCHKEY_ADDR": addr, "LATCHKEY_ISSUER": "http://" + addr, "LATCHKEY_LOG_FORMAT": "json",
			"LATCHKEY_CLEANUP_INTERVAL": "0"} // the default database, sqlite://latchkey.db, in dir; no LATCHKEY_SECRET

		srv := startBinary(t, bin, dir, settings, "serve")
		srv.ready(t, "http://"+addr)
		if code, _, _ := get(t, "http://"+addr+"/.well-known/openid-configuration"); code != http.StatusOK {
			t.Errorf("discovery: %d", code)
		}
		hint := srv.stop(t).record(t, firstStartMsg)
		if hint == nil {
			t.Fatalf("no %q record on the first start:\n%s", firstStartMsg, srv.stderr.String())
		}
		realDir, _ := filepath.EvalSymlinks(dir)
		if db, _ := hint["database"].(string); db != filepath.Join(realDir, "latchkey.db") && db != filepath.Join(dir, "latchkey.db") {
			t.Errorf("database %q, want the file's absolute path in %s", db, dir)
		}
		secret, _ := hint["secret"].(string)
		secretFile, _, _ := strings.Cut(secret, " ")
		if st, err := os.Stat(secretFile); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("secret %q: the file it names: %v %v", secret, st, err)
		}
		if hint["discovery"] != "http://"+addr+"/.well-known/openid-configuration" {
			t.Errorf("discovery %v", hint["discovery"])
		}

		// The command it gives, run as it says (where the server runs, same settings), registers a client.
		next, _ := hint["next"].(string)
		args := strings.Fields(next)
		if len(args) < 3 || args[0] != "latchkey" || args[1] != "clients" || args[2] != "create" {
			t.Fatalf("next %q is not a clients create command", next)
		}
		run := startBinary(t, bin, dir, settings, args[1:]...)
		if code := run.wait(t); code != 0 || !strings.Contains(run.stdout.String(), "client_secret:") {
			t.Fatalf("%s: exit %d\n%s%s", next, code, run.stdout.String(), run.stderr.String())
		}

		srv = startBinary(t, bin, dir, settings, "serve")
		srv.ready(t, "http://"+addr)
		if logs := srv.stop(t); logs.record(t, firstStartMsg) != nil {
			t.Errorf("a start with a client registered repeats the first-start hint:\n%s", srv.stderr.String())
		}
	})

	t.Run("postgres with LATCHKEY_SECRET", func(t *testing.T) {
		t.Parallel()
		u, err := url.Parse(freshPostgresSchema(t))
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(u.User.Username(), "hunter2-in-the-url") // the test server trusts local connections
		addr := freePort(t)
		settings := map[string]string{"LATCHKEY_ADDR": addr, "LATCHKEY_ISSUER": "http://" + addr, "LATCHKEY_LOG_FORMAT": "json",
			"LATCHKEY_CLEANUP_INTERVAL": "0", "LATCHKEY_DATABASE_URL": u.String(), "LATCHKEY_SECRET": "first-start-test-secret-0123456789abcdef"}
		srv := startBinary(t, bin, t.TempDir(), settings, "serve")
		srv.ready(t, "http://"+addr)
		logs := srv.stop(t)
		hint := logs.record(t, firstStartMsg)
		if hint == nil {
			t.Fatalf("no %q record:\n%s", firstStartMsg, srv.stderr.String())
		}
		if db, _ := hint["database"].(string); !strings.HasPrefix(db, "postgres://") || !strings.Contains(db, u.Host) {
			t.Errorf("database %q, want the URL", db)
		}
		if strings.Contains(srv.stderr.String(), "hunter2") {
			t.Error("the log shows the database password")
		}
		if secret, _ := hint["secret"].(string); !strings.HasPrefix(secret, "LATCHKEY_SECRET") || strings.Contains(srv.stderr.String(), settings["LATCHKEY_SECRET"]) {
			t.Errorf("secret %q: want where it is set, never its value", secret)
		}
	})

	t.Run("on a terminal", func(t *testing.T) {
		t.Parallel()
		addr := freePort(t)
		env := testEnv{"LATCHKEY_ADDR": addr, "LATCHKEY_ISSUER": "http://" + addr, "LATCHKEY_CLEANUP_INTERVAL": "0",
			"LATCHKEY_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "lk.db")}
		s := startOnTerminal(t, bin, env, "serve")
		s.expect(t, "First start: no client is registered yet.")
		s.expect(t, "Register a client")
		s.expect(t, "  latchkey clients create --id my-service")
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := s.wait(t); code != 0 {
			t.Errorf("serve after SIGTERM: exit %d", code)
		}
	})
}

// binaryRun is a latchkey process started by a test.
type binaryRun struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer
	exited         chan int // its exit status, once it has exited
}

func startBinary(t *testing.T, bin, dir string, settings map[string]string, args ...string) *binaryRun {
	t.Helper()
	return startBinaryAs(t, bin, dir, settings, nil, args...)
}

// startBinaryAs is startBinary with adjust (nil: none) applied to the command before it starts.
func startBinaryAs(t *testing.T, bin, dir string, settings map[string]string, adjust func(*exec.Cmd), args ...string) *binaryRun {
	t.Helper()
	r := &binaryRun{cmd: exec.Command(bin, args...), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, exited: make(chan int, 1)}
	r.cmd.Dir, r.cmd.Env = dir, processEnv(settings)
	if adjust != nil {
		adjust(r.cmd)
	}
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = r.cmd.Wait()
		r.exited <- r.cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() { _ = r.cmd.Process.Kill() })
	return r
}

// wait waits for the process to exit and returns its status.
func (r *binaryRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.exited:
		return code
	case <-time.After(60 * time.Second):
		t.Fatalf("latchkey %v did not exit\n%s", r.cmd.Args[1:], r.stderr.String())
		return -1
	}
}

// stop ends a server with SIGTERM, as an orchestrator does, and returns its log.
func (r *binaryRun) stop(t *testing.T) jsonLog {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t); code != 0 {
		t.Errorf("serve after SIGTERM: exit %d\n%s", code, r.stderr.String())
	}
	return jsonLog(r.stderr.String())
}

// ready waits until the server's /readyz answers 200, failing when it exits first.
func (r *binaryRun) ready(t *testing.T, base string) {
	t.Helper()
	waitReady(t, base+"/readyz", r.exited, r.stderr)
}

// jsonLog is a JSON log, one record a line.
type jsonLog string

// record is the first record with msg, or nil.
func (l jsonLog) record(t *testing.T, msg string) map[string]any {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(string(l)), "\n") {
		var rec map[string]any
		if err := json.NewDecoder(bytes.NewReader([]byte(line))).Decode(&rec); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if rec["msg"] == msg {
			return rec
		}
	}
	return nil
}
