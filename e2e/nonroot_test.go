package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// nonrootUID is the container image's user (distroless "nonroot").
const nonrootUID = 65532

// What the container image does, without Docker: the static binary (CGO_ENABLED=0, as the Dockerfile builds it)
// run as uid 65532 in a data directory only that user may write, with the SQLite default: it creates the database
// and the secret file there, serves, and `latchkey healthcheck` (the image's HEALTHCHECK) says so, then says
// otherwise once the server is gone.
func TestServeAsTheImageUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the server as uid 65532, the container image's user")
	}
	bin := buildBinary(t)
	// The image user must reach the binary: open the test's directories to others, as /usr/local/bin is.
	for _, d := range []string{filepath.Dir(bin), filepath.Dir(filepath.Dir(bin))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(t.TempDir(), "var-lib-latchkey")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, nonrootUID, nonrootUID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(data), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	settings := map[string]string{"LATCHKEY_ADDR": addr, "LATCHKEY_ISSUER": "http://" + addr, "LATCHKEY_LOG_FORMAT": "json",
		"LATCHKEY_DATABASE_URL": "sqlite://" + filepath.Join(data, "latchkey.db"), "LATCHKEY_CLEANUP_INTERVAL": "0"}
	asImageUser := func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nonrootUID, Gid: nonrootUID}}
	}

	srv := startBinaryAs(t, bin, data, settings, asImageUser, "serve")
	srv.ready(t, "http://"+addr)
	health := func() (int, string) {
		r := startBinaryAs(t, bin, data, map[string]string{"LATCHKEY_ADDR": addr}, asImageUser, "healthcheck", "--timeout", "2s")
		code := r.wait(t)
		return code, r.stdout.String() + r.stderr.String()
	}
	if code, out := health(); code != 0 || !strings.Contains(out, "200") {
		t.Errorf("healthcheck against the running server: exit %d, %s", code, out)
	}
	for _, name := range []string{"latchkey.db", "latchkey.db.secret"} {
		st, err := os.Stat(filepath.Join(data, name))
		if err != nil {
			t.Errorf("%s: %v\n%s", name, err, srv.stderr.String())
			continue
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != nonrootUID || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: owner %d, mode %v; want the image user's, unreadable by others", name, sys.Uid, st.Mode().Perm())
		}
	}
	if logs := srv.stop(t); logs.record(t, firstStartMsg) == nil {
		t.Errorf("no first-start hint:\n%s", srv.stderr.String())
	}
	if code, out := health(); code != 1 || !strings.Contains(out, "unhealthy") {
		t.Errorf("healthcheck with the server stopped: exit %d, %s; want 1", code, out)
	}
}
