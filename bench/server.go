package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/glebarez/go-sqlite"  // database/sql driver "sqlite": the one the server uses, so stored times match
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// benchDB is the fresh database one run uses.
type benchDB struct {
	kind    string // sqlite | postgres
	url     string // LATCHKEY_DATABASE_URL
	path    string // SQLite file
	name    string // PostgreSQL database
	adminDB *sql.DB
	db      *sql.DB // opened after migration, for seeding and counting
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// createDB makes a fresh database: a file in dir for SQLite, CREATE DATABASE latchkey_bench_<random> for PostgreSQL.
func createDB(ctx context.Context, kind, dir, pgURL string) (*benchDB, error) {
	switch kind {
	case "sqlite":
		p := filepath.Join(dir, "latchkey.db")
		return &benchDB{kind: kind, path: p, url: "sqlite://" + p}, nil
	case "postgres":
		admin, err := sql.Open("pgx", pgURL)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL (-pg-url): %w", err)
		}
		if err := admin.PingContext(ctx); err != nil {
			admin.Close()
			return nil, fmt.Errorf("connect to PostgreSQL (-pg-url): %w", err)
		}
		name := "latchkey_bench_" + randomHex(6)
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			admin.Close()
			return nil, fmt.Errorf("create database %s: %w", name, err)
		}
		u, err := url.Parse(pgURL)
		if err != nil {
			return nil, fmt.Errorf("parse -pg-url: %w", err)
		}
		u.Path = "/" + name
		return &benchDB{kind: kind, name: name, url: u.String(), adminDB: admin}, nil
	}
	return nil, fmt.Errorf("-db must be sqlite or postgres, not %q", kind)
}

// open connects the harness itself to the (migrated) database.
func (d *benchDB) open(ctx context.Context) error {
	if d.db != nil {
		return nil
	}
	var err error
	if d.kind == "sqlite" {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		d.db, err = sql.Open("sqlite", d.path+"?"+q.Encode())
		if err == nil {
			d.db.SetMaxOpenConns(1)
		}
	} else {
		d.db, err = sql.Open("pgx", d.url)
	}
	if err != nil {
		return fmt.Errorf("open the bench database: %w", err)
	}
	return d.db.PingContext(ctx)
}

func (d *benchDB) version(ctx context.Context) string {
	if err := d.open(ctx); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	var v string
	if d.kind == "sqlite" {
		if err := d.db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v); err != nil {
			return "SQLite (version unknown)"
		}
		return "SQLite " + v + " (modernc.org/sqlite, pure Go, WAL, one connection)"
	}
	if err := d.db.QueryRowContext(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "PostgreSQL (version unknown)"
	}
	return "PostgreSQL " + v + " (local, loopback TCP)"
}

// drop removes the database; it runs on every exit path.
func (d *benchDB) drop() error {
	if d.db != nil {
		d.db.Close()
	}
	if d.kind != "postgres" || d.adminDB == nil {
		return nil // the SQLite file goes with the temp dir
	}
	defer d.adminDB.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := d.adminDB.ExecContext(ctx, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", d.name, err)
	}
	return nil
}

// dbTime is how the server writes times (models.dbTime): UTC, microseconds.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// seed inserts n rows into oauth2_access for clientID: every even one expired an hour ago, every odd one live
// for a day, random hex signatures and request ids, session '{}'.
func (d *benchDB) seed(ctx context.Context, n int, clientID string) error {
	if err := d.open(ctx); err != nil {
		return err
	}
	now := time.Now()
	past, future := dbTime(now.Add(-time.Hour)), dbTime(now.Add(24*time.Hour))
	// Inserting millions of random keys into live indexes is slow (tens of minutes); building the indexes once
	// after the rows are in takes a fraction of that, and leaves the same schema.
	rebuild, err := d.dropSecondaryIndexes(ctx)
	if err != nil {
		return err
	}
	if err := d.insertSeed(ctx, n, clientID, now, past, future); err != nil {
		return err
	}
	for _, stmt := range rebuild {
		if _, err := d.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("seed: rebuild index: %w", err)
		}
	}
	_, err = d.db.ExecContext(ctx, "ANALYZE oauth2_access")
	return err
}

// dropSecondaryIndexes drops oauth2_access's indexes other than the primary key and returns the statements that
// recreate them.
func (d *benchDB) dropSecondaryIndexes(ctx context.Context) ([]string, error) {
	q := "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'oauth2_access' AND indexname NOT LIKE '%pkey'"
	if d.kind == "sqlite" {
		q = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'oauth2_access' AND sql IS NOT NULL"
	}
	rows, err := d.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("seed: list indexes: %w", err)
	}
	defer rows.Close()
	var names, defs []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return nil, err
		}
		names, defs = append(names, name), append(defs, def)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, name := range names {
		if _, err := d.db.ExecContext(ctx, "DROP INDEX "+name); err != nil {
			return nil, fmt.Errorf("seed: drop index %s: %w", name, err)
		}
	}
	return defs, nil
}

func (d *benchDB) insertSeed(ctx context.Context, n int, clientID string, now, past, future time.Time) error {
	if d.kind == "postgres" {
		_, err := d.db.ExecContext(ctx, `INSERT INTO oauth2_access
	(signature, request_id, requested_at, client_id, session, active, expires_at)
SELECT md5(random()::text || g::text) || md5(random()::text), md5(random()::text || g::text), $1, $2, '{}', TRUE,
	CASE WHEN g % 2 = 0 THEN $3::timestamptz ELSE $4::timestamptz END
FROM generate_series(1, $5::bigint) AS g`, dbTime(now), clientID, past, future, n)
		if err != nil {
			return fmt.Errorf("seed oauth2_access: %w", err)
		}
		return nil
	}
	const batch = 250_000
	for done := 0; done < n; done += batch {
		k := min(batch, n-done)
		_, err := d.db.ExecContext(ctx, `WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < ?)
INSERT INTO oauth2_access (signature, request_id, requested_at, client_id, session, active, expires_at)
SELECT lower(hex(randomblob(32))), lower(hex(randomblob(16))), ?, ?, '{}', 1,
	CASE WHEN (g + ?) % 2 = 0 THEN ? ELSE ? END
FROM s`, k, dbTime(now), clientID, done, past, future)
		if err != nil {
			return fmt.Errorf("seed oauth2_access (rows %d..%d): %w", done+1, done+k, err)
		}
	}
	return nil
}

// countExpired counts the access-token rows that expired before now.
func (d *benchDB) countExpired(ctx context.Context) (int64, error) {
	if err := d.open(ctx); err != nil {
		return 0, err
	}
	var n int64
	q := "SELECT COUNT(*) FROM oauth2_access WHERE expires_at < ?"
	if d.kind == "postgres" {
		q = "SELECT COUNT(*) FROM oauth2_access WHERE expires_at < $1"
	}
	err := d.db.QueryRowContext(ctx, q, dbTime(time.Now())).Scan(&n)
	return n, err
}

// deletedAccessRows is PostgreSQL's running count of rows deleted from oauth2_access (pg_stat_user_tables,
// which backends update at most once a second). Polling it costs nothing, where COUNT(*) over millions of
// expired rows costs the database tens of milliseconds of CPU per poll, taken from the load being measured.
func (d *benchDB) deletedAccessRows(ctx context.Context) (int64, error) {
	if err := d.open(ctx); err != nil {
		return 0, err
	}
	if d.kind != "postgres" {
		return 0, errors.New("deleted-row counter: PostgreSQL only")
	}
	var n int64
	err := d.db.QueryRowContext(ctx, "SELECT n_tup_del FROM pg_stat_user_tables WHERE relname = 'oauth2_access' AND schemaname = current_schema()").Scan(&n)
	return n, err
}

// settledDeletedAccessRows reads the deleted-row counter until two reads a publishing interval apart agree, so
// deletes the previous server's backends made (revocations, refresh rotation) are in the baseline, not taken
// for cleanup's.
func (d *benchDB) settledDeletedAccessRows(ctx context.Context) (int64, error) {
	prev, err := d.deletedAccessRows(ctx)
	for range 5 {
		if err != nil {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(1100 * time.Millisecond):
		}
		var n int64
		if n, err = d.deletedAccessRows(ctx); err == nil && n == prev {
			return n, nil
		}
		prev = n
	}
	return prev, err
}

// buildBinary builds ./cmd/latchkey from the module root into dir.
func buildBinary(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "latchkey")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/latchkey")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/latchkey: %w\n%s", err, stderr.String())
	}
	return bin, nil
}

// moduleRoot is the directory holding the go.mod of the package being run.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the harness from inside the latchkey module (go run ./bench)")
	}
	return filepath.Dir(gomod), nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// serverEnv is the environment of the server and of every CLI call: the caller's, minus any LATCHKEY_*, plus ours.
func serverEnv(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCHKEY_") {
			env = append(env, kv)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// runCLI runs one latchkey command with the run's environment and returns its standard output.
func runCLI(ctx context.Context, bin string, env []string, stdin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("latchkey %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// serverProc is a running `latchkey serve`.
type serverProc struct {
	cmd     *exec.Cmd
	pid     int
	logPath string
	logFile *os.File
	exited  chan struct{}
	waitErr error
}

// startServer runs `latchkey serve` and waits until /readyz answers 200.
func startServer(ctx context.Context, bin string, env []string, base, logPath string) (*serverProc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = lf, lf
	// Its own process group, so a Ctrl-C reaches only the harness, which then stops the server in order; and
	// SIGTERM if the harness dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start latchkey serve: %w", err)
	}
	s := &serverProc{cmd: cmd, pid: cmd.Process.Pid, logPath: logPath, logFile: lf, exited: make(chan struct{})}
	go func() { s.waitErr = cmd.Wait(); close(s.exited) }()

	deadline := time.Now().Add(60 * time.Second)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	for {
		if resp, err := hc.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("latchkey serve exited at start (%v):\n%s", s.waitErr, s.logTail(2000))
		case <-ctx.Done():
			_ = s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.stop()
			return nil, fmt.Errorf("latchkey serve not ready after 60s:\n%s", s.logTail(2000))
		}
	}
}

// alive reports whether the server is still running.
func (s *serverProc) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for a graceful exit, then SIGKILL. Safe to call twice.
func (s *serverProc) stop() error {
	if s == nil {
		return nil
	}
	defer s.logFile.Close()
	if !s.alive() {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New("latchkey serve did not stop within 20s of SIGTERM; killed")
	}
}

func (s *serverProc) logTail(n int) string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// logSize is the current length of the server log, to attribute later lines to a run.
func (s *serverProc) logSize() int64 {
	fi, err := os.Stat(s.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logLevels counts the WARN and ERROR records the server logged from offset on. It streams the file from the
// offset: at the default info level every request adds an access-log line, and a row can add a gigabyte.
func (s *serverProc) logLevels(offset int64) (warn, errs int, firstErr string) {
	f, err := os.Open(s.logPath)
	if err != nil {
		return 0, 0, ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, 0, ""
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.Contains(line, []byte(`"level":"ERROR"`)) || bytes.Contains(line, []byte("level=ERROR")):
			errs++
			if firstErr == "" {
				firstErr = string(line)
			}
		case bytes.Contains(line, []byte(`"level":"WARN"`)) || bytes.Contains(line, []byte("level=WARN")):
			warn++
		}
	}
	return warn, errs, firstErr
}

func (s *serverProc) cpu() (procCPU, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.pid) + "/stat")
	if err != nil {
		return procCPU{}, err
	}
	return parseProcStat(b)
}

func (s *serverProc) status(key string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.pid) + "/status")
	if err != nil {
		return 0, err
	}
	return parseProcStatusKB(b, key)
}

// resetPeakRSS resets VmHWM to the current RSS (writing 5 to clear_refs, Linux ≥ 4.0), so each run's peak is
// its own. It reports false when the kernel does not allow it; the peak is then the process-lifetime peak.
func (s *serverProc) resetPeakRSS() bool {
	return os.WriteFile("/proc/"+strconv.Itoa(s.pid)+"/clear_refs", []byte("5"), 0) == nil
}

// cpuSnapshot is the machine's busy time and this process's and the server's CPU time, in clock ticks, so a
// row can tell how much CPU other processes on the machine took while it was measured.
type cpuSnapshot struct {
	machine, self, server uint64
	db                    map[int]uint64 // PostgreSQL backends serving the bench database, by pid
	at                    time.Time
}

// backendCPU reads the CPU ticks of the PostgreSQL backends connected to the bench database (the server's
// pool), so their work is charged to the database rather than to "other processes".
func (d *benchDB) backendCPU(ctx context.Context) map[int]uint64 {
	if d == nil || d.kind != "postgres" || d.db == nil {
		return nil
	}
	rows, err := d.db.QueryContext(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	if err != nil {
		return nil
	}
	defer rows.Close()
	out := map[int]uint64{}
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			if c, err := parseProcStat(b); err == nil {
				out[pid] = c.utime + c.stime
			}
		}
	}
	return out
}

// dbTicks is the CPU the bench database's backends used between two snapshots (a backend that appeared in
// between counts from zero).
func dbTicks(a, b cpuSnapshot) uint64 {
	var n uint64
	for pid, t := range b.db {
		if t >= a.db[pid] {
			n += t - a.db[pid]
		}
	}
	return n
}

func takeCPUSnapshot(ctx context.Context, srv *serverProc, db *benchDB) cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), db: db.backendCPU(ctx)}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		s.machine, _ = parseMachineBusy(b)
	}
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		if c, err := parseProcStat(b); err == nil {
			s.self = c.utime + c.stime
		}
	}
	if srv != nil {
		if c, err := srv.cpu(); err == nil {
			s.server = c.utime + c.stime
		}
	}
	return s
}

// otherCores is the average number of cores that processes other than the harness, the server and its
// database backends kept busy between two snapshots.
func otherCores(a, b cpuSnapshot) float64 {
	other := int64(b.machine-a.machine) - int64(b.self-a.self) - int64(b.server-a.server) - int64(dbTicks(a, b))
	secs := b.at.Sub(a.at).Seconds()
	if other <= 0 || secs <= 0 {
		return 0
	}
	return float64(other) / clockTicks / secs
}
