package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/latchkey/latchkey/app"
)

// testDB is one fresh database for one test: a SQLite file, or a PostgreSQL schema of its own.
type testDB struct {
	name string
	url  func(t *testing.T) string
}

// databases lists the backends end-to-end tests run on. PostgreSQL is skipped, with a message, when
// LATCHKEY_TEST_POSTGRES_URL is unset; CI always sets it.
func databases() []testDB {
	return []testDB{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "latchkey.db") }},
		{"postgres", freshPostgresSchema},
	}
}

func freshPostgresSchema(t *testing.T) string {
	t.Helper()
	base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("LATCHKEY_TEST_POSTGRES_URL not set; skipping PostgreSQL end-to-end tests")
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "lk_e2e_" + hex.EncodeToString(b)
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse LATCHKEY_TEST_POSTGRES_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// testEnv is the environment the CLI and server of one test see.
type testEnv map[string]string

func newTestEnv(t *testing.T, dbURL string) testEnv {
	return testEnv{
		"LATCHKEY_DATABASE_URL":     dbURL,
		"LATCHKEY_SECRET":           "test-system-secret-0123456789abcdef-xyz",
		"LATCHKEY_LOG_LEVEL":        "warn",
		"LATCHKEY_CLEANUP_INTERVAL": "0",
	}
}

func (e testEnv) get(k string) string { return e[k] }

// cli runs a latchkey command in-process and returns its standard output; it fails the test on a non-zero exit.
func (e testEnv) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := e.cliCode(t, "", args...)
	if code != 0 {
		t.Fatalf("latchkey %s: exit %d\nstderr: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func (e testEnv) cliCode(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := app.Run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr, e.get)
	return stdout.String(), stderr.String(), code
}

type createdClient struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

func (e testEnv) createClient(t *testing.T, args ...string) createdClient {
	t.Helper()
	out := e.cli(t, append([]string{"clients", "create", "--json"}, args...)...)
	var c createdClient
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("clients create output is not JSON: %v\n%s", err, out)
	}
	return c
}

// server is a running in-process Latchkey over real HTTP.
type server struct {
	URL  string
	app  *app.Server
	stop func(t *testing.T)
}

// startServer runs the server the way `latchkey serve` does, on a free loopback port, until the test ends.
func (e testEnv) startServer(t *testing.T) *server {
	t.Helper()
	return e.startServerLoggingTo(t, &testLogWriter{t: t})
}

// startServerLoggingTo is startServer with the server's log sent to w at the configured level.
func (e testEnv) startServerLoggingTo(t *testing.T, w io.Writer) *server {
	t.Helper()
	return e.startServerWith(t, w, nil)
}

// startServerWith is startServerLoggingTo with adjust applied to the app before it serves (e.g. to set a test
// clock); adjust may be nil.
func (e testEnv) startServerWith(t *testing.T, w io.Writer, adjust func(*app.Server)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	if h := e["test.hostname"]; h != "" { // e.g. "localhost": WebAuthn wants a domain, not an IP address
		base = "http://" + net.JoinHostPort(h, fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	}
	env := testEnv{}
	for k, v := range e {
		env[k] = v
	}
	env["LATCHKEY_ISSUER"] = base
	env["LATCHKEY_ADDR"] = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, nil, env.get, w)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if adjust != nil {
		adjust(a)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	var once sync.Once
	stop := func(t *testing.T) {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("server did not shut down within 20s")
			}
			a.Close()
		})
	}
	t.Cleanup(func() { stop(t) })
	s := &server{URL: base, app: a, stop: stop}
	return s
}

type testLogWriter struct{ t *testing.T }

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// postForm sends a form with optional basic auth and decodes a JSON answer.
func postForm(t *testing.T, endpoint string, form url.Values, user, pass string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			m = map[string]any{"_raw": string(body)}
		}
	}
	return resp.StatusCode, resp.Header, m
}

func get(t *testing.T, endpoint string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func mustJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return m
}

// rawDB opens the test's database beside the server, for what no public surface does: moving a session's
// expiry into the past instead of waiting for it, breaking a table to see a storage failure.
func rawDB(t *testing.T, env testEnv) (*sql.DB, func(string) string) {
	t.Helper()
	u := env["LATCHKEY_DATABASE_URL"]
	var (
		db  *sql.DB
		err error
		q   = func(s string) string { return s }
	)
	if path, ok := strings.CutPrefix(u, "sqlite://"); ok {
		db, err = sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	} else {
		db, err = sql.Open("pgx", u)
		q = func(s string) string {
			for i := 1; strings.Contains(s, "?"); i++ {
				s = strings.Replace(s, "?", fmt.Sprintf("$%d", i), 1)
			}
			return s
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, q
}

// execSQL runs one statement (? placeholders) on the test's database behind the server's back.
func execSQL(t *testing.T, env testEnv, stmt string, args ...any) {
	t.Helper()
	db, q := rawDB(t, env)
	if _, err := db.Exec(q(stmt), args...); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// countRows counts a table's rows in the test's database.
func countRows(t *testing.T, env testEnv, table string) int {
	t.Helper()
	db, _ := rawDB(t, env)
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// lockedBuffer collects a server's log while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// forEachDB runs fn once per backend, each with a fresh database.
func forEachDB(t *testing.T, fn func(t *testing.T, env testEnv)) {
	for _, db := range databases() {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			fn(t, newTestEnv(t, db.url(t)))
		})
	}
}
