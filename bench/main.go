// Command bench is Latchkey's load harness: it builds the real binary, starts it on a fresh SQLite or
// PostgreSQL database, provisions clients and a user through the CLI, drives each scenario with its own
// closed-loop HTTP load generator at each concurrency, and prints a Markdown report (optionally replacing this
// database's section of docs/PERFORMANCE.md).
//
//	go run ./bench -db sqlite|postgres -duration 15s -c 16,64 [-scenarios a,b,...] [-seed N] [-out docs/PERFORMANCE.md]
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
)

type options struct {
	db             string
	duration       time.Duration
	warmup         time.Duration
	concurrency    []int
	scenarios      []string
	seed           int
	out            string
	pgURL          string
	cleanupTimeout time.Duration
	cleanupBatch   int
	keep           bool
	profileDir     string
	signingAlg     string
	logLevel       string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := bench(ctx, opts, os.Stdout, os.Stderr); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench: interrupted; server stopped and temporary database removed")
		} else {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		stop()
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var conc, scen string
	fs.StringVar(&o.db, "db", "sqlite", "database: sqlite or postgres")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "measured time per scenario and concurrency")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unrecorded load before each measurement")
	fs.StringVar(&conc, "c", "16,64", "concurrencies (closed-loop workers), comma separated")
	fs.StringVar(&scen, "scenarios", "", "scenarios to run, comma separated (default: all); the ceiling always runs")
	fs.IntVar(&o.seed, "seed", 0, "insert this many oauth2_access rows (half expired) before the scenarios, and measure cleanup")
	fs.StringVar(&o.out, "out", "", "write (replace) this database's section of a Markdown file, e.g. docs/PERFORMANCE.md")
	fs.StringVar(&o.pgURL, "pg-url", defaultPGURL(), "PostgreSQL server to create the bench database on (-db postgres)")
	fs.DurationVar(&o.cleanupTimeout, "cleanup-timeout", 3*time.Minute, "with -seed: longest to wait for cleanup to delete the expired rows")
	fs.IntVar(&o.cleanupBatch, "cleanup-batch", 0, "with -seed: LATCHKEY_CLEANUP_BATCH for the cleanup measurement (0 = the server's default)")
	fs.BoolVar(&o.keep, "keep-logs", false, "print the server log path and keep the temp directory")
	fs.StringVar(&o.signingAlg, "signing-alg", "RS256", "LATCHKEY_SIGNING_ALG of the server: RS256 or ES256 (JWT access tokens and ID tokens)")
	fs.StringVar(&o.logLevel, "log-level", "info", "LATCHKEY_LOG_LEVEL of the server (info, the server's default, writes one access-log line per request)")
	fs.StringVar(&o.profileDir, "profile", "", "write a server CPU profile per measured row into this directory (<scenario>-c<N>.pprof)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./bench -db sqlite|postgres -duration 15s -c 16,64 [-scenarios a,b,...] [-seed N] [-out docs/PERFORMANCE.md]")
		fmt.Fprintln(stderr, "\nscenarios: "+strings.Join(scenarioNames(), ", ")+"\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var problems []string
	if o.db != "sqlite" && o.db != "postgres" {
		problems = append(problems, "-db must be sqlite or postgres")
	}
	if o.duration <= 0 {
		problems = append(problems, "-duration must be positive")
	}
	if o.warmup < 0 {
		problems = append(problems, "-warmup must not be negative")
	}
	for _, f := range splitComma(conc) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 4096 {
			problems = append(problems, fmt.Sprintf("-c: %q is not a concurrency between 1 and 4096", f))
			continue
		}
		o.concurrency = append(o.concurrency, n)
	}
	if len(o.concurrency) == 0 {
		problems = append(problems, "-c needs at least one concurrency")
	}
	o.scenarios = []string{"ceiling"}
	names := splitComma(scen)
	if len(names) == 0 {
		names = scenarioNames()
	}
	for _, n := range names {
		switch {
		case scenarioByName(n) == nil:
			problems = append(problems, fmt.Sprintf("-scenarios: unknown scenario %q (known: %s)", n, strings.Join(scenarioNames(), ", ")))
		case !slices.Contains(o.scenarios, n):
			o.scenarios = append(o.scenarios, n)
		}
	}
	if o.seed < 0 {
		problems = append(problems, "-seed must not be negative")
	}
	if o.cleanupBatch < 0 || o.cleanupBatch > 100000 {
		problems = append(problems, "-cleanup-batch must be between 1 and 100000, or 0 for the server's default")
	}
	if o.cleanupBatch > 0 && o.seed == 0 {
		problems = append(problems, "-cleanup-batch needs -seed (cleanup is measured only on a seeded table)")
	}
	if o.signingAlg != "RS256" && o.signingAlg != "ES256" {
		problems = append(problems, "-signing-alg must be RS256 or ES256")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, o.logLevel) {
		problems = append(problems, "-log-level must be debug, info, warn or error")
	}
	if len(problems) > 0 {
		return o, errors.New(strings.Join(problems, "; "))
	}
	return o, nil
}

func defaultPGURL() string {
	for _, k := range []string{"LATCHKEY_BENCH_POSTGRES_URL", "LATCHKEY_TEST_POSTGRES_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

func splitComma(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

func scenarioNames() []string {
	var n []string
	for _, s := range allScenarios {
		n = append(n, s.name)
	}
	return n
}

// bench is one whole run. Every resource it creates is released by a defer, so errors, panics and Ctrl-C
// (ctx cancelled) all stop the server and remove the temporary database.
func bench(ctx context.Context, o options, stdout, stderr io.Writer) (err error) {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", args...) }
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "latchkey-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if o.keep {
			logf("kept %s", dir)
			return
		}
		os.RemoveAll(dir)
	}()

	logf("building ./cmd/latchkey")
	bin, err := buildBinary(ctx, root, dir)
	if err != nil {
		return err
	}

	db, err := createDB(ctx, o.db, dir, o.pgURL)
	if err != nil {
		return err
	}
	defer func() {
		if derr := db.drop(); derr != nil {
			logf("%v", derr)
			err = errors.Join(err, derr)
		}
	}()

	port, err := freePort()
	if err != nil {
		return err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	vars := map[string]string{
		"LATCHKEY_DATABASE_URL":     db.url,
		"LATCHKEY_SECRET":           "bench-" + randomHex(24),
		"LATCHKEY_LOG_LEVEL":        o.logLevel,
		"LATCHKEY_ADDR":             "127.0.0.1:" + strconv.Itoa(port),
		"LATCHKEY_ISSUER":           base,
		"LATCHKEY_CLEANUP_INTERVAL": "0", // scenarios run on a stable table; cleanup is measured on its own
		"LATCHKEY_SIGNING_ALG":      o.signingAlg,
	}
	debugBase := ""
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return fmt.Errorf("-profile: %w", err)
		}
		dport, err := freePort()
		if err != nil {
			return err
		}
		vars["LATCHKEY_DEBUG_ADDR"] = "127.0.0.1:" + strconv.Itoa(dport)
		debugBase = "http://" + vars["LATCHKEY_DEBUG_ADDR"]
	}
	env := serverEnv(vars)

	logf("migrating and provisioning through the CLI (%s)", o.db)
	if _, err := runCLI(ctx, bin, env, "", "migrate"); err != nil {
		return err
	}
	t, err := provision(ctx, bin, env, base)
	if err != nil {
		return err
	}

	rep := &report{opts: o, args: os.Args[1:], machine: machineInfo(), dbVersion: db.version(ctx), started: time.Now()}
	rep.commit = gitDescribe(root, o.out)
	if v, err := runCLI(ctx, bin, env, "", "version"); err == nil {
		rep.serverVersion = strings.TrimSpace(string(v))
	}

	if o.seed > 0 {
		logf("seeding %d rows into oauth2_access", o.seed)
		t0 := time.Now()
		if err := db.seed(ctx, o.seed, t.cc.id); err != nil {
			return err
		}
		rep.seedTime = time.Since(t0)
		logf("seeded in %s", rep.seedTime.Round(time.Millisecond))
	}

	// The ceiling: a bare handler in this process, driven exactly like the server.
	ceil, err := startCeiling()
	if err != nil {
		return err
	}
	defer ceil.Close()

	logPath := filepath.Join(dir, "server.log")
	var srv *serverProc
	defer func() {
		if serr := srv.stop(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	srv, err = startServer(ctx, bin, env, base, logPath)
	if err != nil {
		return err
	}
	if rss, err := srv.status("VmRSS"); err == nil {
		rep.idleRSS = rss
	}
	logf("server pid %d on %s, idle RSS %.1f MiB", srv.pid, base, mib(rep.idleRSS))

	// The ceiling runs first and again last: other processes on a shared machine can depress one measurement,
	// and the fractions use the better of the two.
	plan := slices.Clone(o.scenarios)
	if len(plan) > 1 {
		plan = append(plan, "ceiling")
	}
	ceilingRPS := map[int]float64{}
	for i, name := range plan {
		sc := scenarioByName(name)
		for _, c := range o.concurrency {
			if err := ctx.Err(); err != nil {
				return err
			}
			logf("%s c=%d", name, c)
			r := runScenario(ctx, sc, t, c, o, srv, db, ceil.URL, debugBase)
			if err := ctx.Err(); err != nil {
				return err
			}
			if name == "ceiling" {
				ceilingRPS[c] = max(ceilingRPS[c], r.rps)
				if i > 0 {
					r.scenario = "ceiling (again, at the end)"
				}
			}
			logf("  %.0f req/s, p99 %s ms, %d errors", r.rps, fmtMS(r.lat.p99), r.errs.total())
			rep.rows = append(rep.rows, r)
			if !srv.alive() {
				return fmt.Errorf("the server exited during %s c=%d (%v):\n%s", name, c, srv.waitErr, srv.logTail(3000))
			}
		}
	}
	for i := range rep.rows {
		if r := &rep.rows[i]; !strings.HasPrefix(r.scenario, "ceiling") && ceilingRPS[r.c] > 0 && r.failed == "" {
			r.pctCeiling = 100 * r.rps / ceilingRPS[r.c]
		}
	}

	if o.seed > 0 {
		if err := srv.stop(); err != nil {
			return err
		}
		vars["LATCHKEY_CLEANUP_INTERVAL"] = "1s"
		if o.cleanupBatch > 0 {
			vars["LATCHKEY_CLEANUP_BATCH"] = strconv.Itoa(o.cleanupBatch)
		}
		c := slices.Max(o.concurrency)
		logf("cleanup: restarting the server with LATCHKEY_CLEANUP_INTERVAL=1s, client_credentials at c=%d meanwhile", c)
		cr, err := measureCleanup(ctx, db, bin, serverEnv(vars), base, logPath, t, c, o, &srv)
		if err != nil {
			return err
		}
		rep.cleanup = cr
	}

	md := rep.markdown()
	fmt.Fprint(stdout, md)
	if o.out != "" {
		if err := writeSection(o.out, rep.sectionKey(), md); err != nil {
			return err
		}
		logf("wrote the %s section of %s", rep.sectionKey(), o.out)
	}
	if o.keep {
		logf("server log: %s", logPath)
	}
	return nil
}

// provision creates, through the CLI, what the scenarios use: two client_credentials clients (opaque and JWT),
// a resource server for introspection, a pool with one user, and a public first-party app in it.
func provision(ctx context.Context, bin string, env []string, base string) (*target, error) {
	t := &target{base: base, redirect: "http://127.0.0.1:5173/callback", email: "bench@example.com", password: "bench-" + randomHex(12)}
	create := func(args ...string) (credentials, error) {
		out, err := runCLI(ctx, bin, env, "", append([]string{"clients", "create", "--json"}, args...)...)
		if err != nil {
			return credentials{}, err
		}
		var c struct {
			ID     string `json:"client_id"`
			Secret string `json:"client_secret"`
		}
		if err := json.Unmarshal(out, &c); err != nil || c.ID == "" {
			return credentials{}, fmt.Errorf("clients create printed no client JSON: %s", out)
		}
		return newCredentials(c.ID, c.Secret), nil
	}
	var err error
	if t.cc, err = create("--name", "bench-cc", "--grant-types", "client_credentials", "--scopes", "read write"); err != nil {
		return nil, err
	}
	if t.ccJWT, err = create("--name", "bench-cc-jwt", "--grant-types", "client_credentials", "--scopes", "read write", "--access-token-format", "jwt"); err != nil {
		return nil, err
	}
	if t.pkjwtKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &t.pkjwtKey.PublicKey, KeyID: "bench", Use: "sig"}}})
	if t.pkjwt, err = create("--name", "bench-cc-pkjwt", "--grant-types", "client_credentials", "--scopes", "read write",
		"--token-endpoint-auth-method", "private_key_jwt", "--jwks", string(set)); err != nil {
		return nil, err
	}
	if t.rs, err = create("--name", "bench-resource-server"); err != nil {
		return nil, err
	}
	if _, err := runCLI(ctx, bin, env, "", "pools", "create", "--name", "bench", "--signup=false"); err != nil {
		return nil, err
	}
	if _, err := runCLI(ctx, bin, env, t.password+"\n", "users", "create", "--pool", "bench", "--email", t.email,
		"--password-stdin", "--name", "Bench User", "--roles", "admin,editor"); err != nil {
		return nil, err
	}
	app, err := create("--name", "bench-app", "--public", "--first-party", "--pool", "bench",
		"--grant-types", "authorization_code,refresh_token", "--redirect-uris", t.redirect,
		"--scopes", "openid offline_access profile email roles")
	if err != nil {
		return nil, err
	}
	t.app = app.id
	return t, nil
}
