package e2e

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// privatePostgres is a PostgreSQL server of one test's own: initdb into a temporary directory with the machine's
// PostgreSQL binaries, on a port of its own, so the test may restart or kill it. The shared server at 5432 is
// never touched.
type privatePostgres struct {
	t    *testing.T
	bin  string // directory of initdb, pg_ctl, postgres
	dir  string // holds data/, the socket and the log
	port string
	cred *syscall.Credential // run as this user (PostgreSQL refuses to run as root)
}

// postgresBinDir finds the newest installed PostgreSQL's binaries; "" if there are none.
func postgresBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// startPrivatePostgres creates and starts the server. A private PostgreSQL makes a PostgreSQL test: it runs only
// when LATCHKEY_TEST_POSTGRES_URL is set, like every other one, so `go test ./...` on SQLite stays quick. Without
// that setting or without PostgreSQL binaries the test skips, unless LATCHKEY_REQUIRE_FAULT_TEST is set (CI sets
// it), where it fails.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	if os.Getenv("LATCHKEY_TEST_POSTGRES_URL") == "" {
		if os.Getenv("LATCHKEY_REQUIRE_FAULT_TEST") != "" {
			t.Fatal("LATCHKEY_TEST_POSTGRES_URL is not set, and LATCHKEY_REQUIRE_FAULT_TEST is set")
		}
		t.Skip("LATCHKEY_TEST_POSTGRES_URL not set; skipping the PostgreSQL tests that start a private server")
	}
	bin := postgresBinDir()
	if bin == "" {
		if os.Getenv("LATCHKEY_REQUIRE_FAULT_TEST") != "" {
			t.Fatal("no PostgreSQL binaries (initdb) found, and LATCHKEY_REQUIRE_FAULT_TEST is set")
		}
		t.Skip("no PostgreSQL binaries (initdb) on this machine; skipping the fault test")
	}
	// Not t.TempDir: its parents are private to root, and the server runs as the postgres user.
	dir, err := os.MkdirTemp("", "latchkey-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &privatePostgres{t: t, bin: bin, dir: dir, port: strings.TrimPrefix(freePort(t), "127.0.0.1:")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root and there is no postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		p.killAll()
		_ = os.RemoveAll(dir)
	})
	p.run("initdb", "-D", p.data(), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
	p.start()
	return p
}

func (p *privatePostgres) data() string { return filepath.Join(p.dir, "data") }

// URL is the connection URL of database name on this server.
func (p *privatePostgres) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%s/%s?sslmode=disable", p.port, name)
}

// run runs one of the server's programs as the server's user and fails the test if it fails.
func (p *privatePostgres) run(prog string, args ...string) {
	p.t.Helper()
	cmd := exec.Command(filepath.Join(p.bin, prog), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Setpgid: true}
	cmd.Dir = p.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
		p.t.Fatalf("%s %s: %v\n%s\nserver log:\n%s", prog, strings.Join(args, " "), err, out.String(), log)
	}
}

// start starts the server and waits until it accepts connections.
func (p *privatePostgres) start() {
	p.t.Helper()
	// fsync=off only risks data on an operating system crash; a killed server still has every committed
	// transaction (synchronous_commit stays on), which is what the fault tests check.
	opts := fmt.Sprintf("-p %s -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off "+
		"-c full_page_writes=off -c max_connections=200", p.port, p.dir)
	p.run("pg_ctl", "-D", p.data(), "-o", opts, "-l", filepath.Join(p.dir, "postgres.log"), "-w", "-t", "60", "start")
}

// restart is an operator's fast restart: connections are closed, in-flight transactions rolled back.
func (p *privatePostgres) restart() {
	p.t.Helper()
	p.run("pg_ctl", "-D", p.data(), "-m", "fast", "-w", "-t", "60", "stop")
	p.start()
}

// kill SIGKILLs the postmaster and every backend, the way a crashed machine or the OOM killer would.
func (p *privatePostgres) kill() {
	p.t.Helper()
	if !p.killAll() {
		p.t.Fatal("private PostgreSQL: no postmaster to kill")
	}
}

// killAll SIGKILLs the postmaster and its children; it reports whether there was a postmaster.
func (p *privatePostgres) killAll() bool {
	raw, err := os.ReadFile(filepath.Join(p.data(), "postmaster.pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]))
	if err != nil || pid <= 0 {
		return false
	}
	children := childrenOf(pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false
	}
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	// Wait for them to be gone, so a start does not meet their shared memory.
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range append(children, pid) {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return true
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so read after the last ')'.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 {
			if ppid, _ := strconv.Atoi(fields[1]); ppid == pid {
				out = append(out, n)
			}
		}
	}
	return out
}

// createDatabase creates database name on the server.
func (p *privatePostgres) createDatabase(name string) {
	p.t.Helper()
	db, err := sql.Open("pgx", p.URL("postgres"))
	if err != nil {
		p.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		p.t.Fatalf("create database: %v", err)
	}
}

func TestPrivatePostgresRestartsAndSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	p := startPrivatePostgres(t)
	p.createDatabase("probe")
	ping := func() error {
		db, err := sql.Open("pgx", p.URL("probe"))
		if err != nil {
			return err
		}
		defer db.Close()
		return db.Ping()
	}
	if err := ping(); err != nil {
		t.Fatalf("fresh server: %v", err)
	}
	p.restart()
	if err := ping(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	p.kill()
	if err := ping(); err == nil {
		t.Fatal("the server still answers after SIGKILL")
	}
	p.start()
	if err := ping(); err != nil {
		t.Fatalf("after kill and start: %v", err)
	}
}
