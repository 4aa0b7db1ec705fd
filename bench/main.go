// Command bench is Latchkey's load harness: it builds the real binary, starts it on a fresh SQLite or
// PostgreSQL database, provisions clients and a user through the CLI, drives each scenario with its own
// closed-loop HTTP load generator at each concurrency, and prints a Markdown report (optionally replacing this
// database's section of docs/PERFORMANCE.md).
//
//	go run ./bench -db sqlite|postgres -duration 15s -c 16,64 [-scenarios a,b,...] [-seed N] [-out docs/PERFORMANCE.md]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
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

type ceilingServer struct {
	URL string
	srv *http.Server
}

func startCeiling() (*ceilingServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &http.Server{Handler: ceilingHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.Serve(ln) }()
	return &ceilingServer{URL: "http://" + ln.Addr().String(), srv: s}, nil
}

func (c *ceilingServer) Close() { _ = c.srv.Close() }

// row is one line of the table.
type row struct {
	scenario       string
	c              int
	ops            int
	rps            float64
	lat            latencySummary
	errs           errorCounts
	peakRSS        int64   // bytes; 0 when not applicable
	startRSS       int64   // VmRSS when the measurement started
	peakIsLifetime bool    // VmHWM could not be reset: the figure is the process-lifetime peak
	cpuPer1k       float64 // server CPU seconds per 1,000 requests; <0 when not applicable
	dbCPUPer1k     float64 // PostgreSQL backends' CPU seconds per 1,000 requests; <0 when not applicable
	pctCeiling     float64 // <0 when not applicable
	verify         string
	logWarn        int
	logErr         int
	firstLogErr    string
	failed         string
	otherCores     float64 // CPU other processes on the machine took during the row
}

// runScenario measures one scenario at one concurrency. Failures to prepare are reported in the row, not
// returned, so one broken endpoint does not hide the others.
func runScenario(ctx context.Context, sc *scenario, t *target, c int, o options, srv *serverProc, db *benchDB, ceilingURL, debugBase string) row {
	r := row{scenario: sc.name, c: c, cpuPer1k: -1, pctCeiling: -1, dbCPUPer1k: -1}
	base := t.base
	if !sc.server {
		base = ceilingURL
	}
	tr := newTransport(c)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: noFollow}
	workers := make([]*worker, c)
	seed := rand.Uint64()
	for i := range workers {
		workers[i] = &worker{id: i, base: base, client: client, rng: rand.New(rand.NewPCG(seed, uint64(i))), kept: newReservoir(200)}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	// Two at a time: some preparations sign in (argon2, 19 MiB each), and 64 at once would leave the server
	// holding a gigabyte the measured row would then be charged for.
	sem := make(chan struct{}, 2)
	for _, w := range workers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			it, err := sc.prepare(ctx, t, w)
			if err != nil {
				mu.Lock()
				if r.failed == "" {
					r.failed = err.Error()
				}
				mu.Unlock()
				return
			}
			w.run = it
		})
	}
	wg.Wait()
	if r.failed != "" {
		return r
	}
	if o.warmup > 0 {
		runPhase(ctx, workers, time.Now().Add(o.warmup), nil, false)
	}

	var cpu0 procCPU
	var logOff int64
	snap0 := takeCPUSnapshot(ctx, srv, db)
	if sc.server {
		cpu0, _ = srv.cpu()
		r.peakIsLifetime = !srv.resetPeakRSS()
		r.startRSS, _ = srv.status("VmRSS")
		logOff = srv.logSize()
	}
	var profileDone chan error
	if sc.server && debugBase != "" {
		profileDone = make(chan error, 1)
		path := filepath.Join(o.profileDir, fmt.Sprintf("%s-c%d.pprof", sc.name, c))
		go func() { profileDone <- fetchProfile(ctx, debugBase, o.duration, path) }()
	}
	res := runPhase(ctx, workers, time.Now().Add(o.duration), nil, true)
	if profileDone != nil {
		if err := <-profileDone; err != nil {
			fmt.Fprintf(os.Stderr, "bench: profile of %s c=%d: %v\n", sc.name, c, err)
		}
	}
	r.ops, r.lat, r.errs = res.ops, res.lat, res.errs
	r.rps = float64(res.ops) / res.elapsed.Seconds()
	snap1 := takeCPUSnapshot(ctx, srv, db)
	r.otherCores = otherCores(snap0, snap1)
	if db.kind == "postgres" && sc.server && res.ops > 0 {
		r.dbCPUPer1k = float64(dbTicks(snap0, snap1)) / clockTicks / (float64(res.ops) / 1000)
	}
	if sc.server {
		if cpu1, err := srv.cpu(); err == nil && res.ops > 0 {
			r.cpuPer1k = (cpu1.seconds() - cpu0.seconds()) / (float64(res.ops) / 1000)
		}
		r.peakRSS, _ = srv.status("VmHWM")
		r.logWarn, r.logErr, r.firstLogErr = srv.logLevels(logOff)
	}
	if sc.verify != nil && ctx.Err() == nil {
		kept := res.kept
		rand.Shuffle(len(kept), func(i, j int) { kept[i], kept[j] = kept[j], kept[i] })
		kept = kept[:min(200, len(kept))]
		r.verify = sc.verify(ctx, t, workers[0], kept)
	}
	return r
}

// cleanupResult is the cleanup measurement on a seeded database.
type cleanupResult struct {
	initial, remaining int64
	elapsed            time.Duration // server ready → no expired rows left (or the timeout)
	maxRate            float64       // the fastest fall over a window of at least 5 s, rows/s (0: none)
	polls              int
	progress           string // how rows left were read
	batch              string // the cleanup batch, as the report names it
	load               row    // client_credentials meanwhile
	timedOut           bool
}

// cleanupProgress turns readings of the expired rows left into the fastest rate of fall.
type cleanupProgress struct {
	hist    []progressReading
	maxRate float64 // rows/s; 0 until two comparable readings are 5 s apart
}

type progressReading struct {
	at    time.Time
	left  int64
	exact bool // counted, rather than derived from PostgreSQL's deleted-row counter
}

// add records a reading. The rate is taken over windows of at least 5 s, which the counter's once-a-second steps
// barely move, and only between readings taken the same way: a counted end against a counter end would add
// the counter's publishing lag to the fall.
func (p *cleanupProgress) add(r progressReading) {
	for i := len(p.hist) - 1; i >= 0; i-- {
		h := p.hist[i]
		if span := r.at.Sub(h.at); span >= 5*time.Second && h.exact == r.exact {
			p.maxRate = max(p.maxRate, float64(h.left-r.left)/span.Seconds())
			break
		}
	}
	p.hist = append(p.hist, r)
}

// measureCleanup restarts the server with a 1s cleanup interval and reads the number of expired access-token
// rows every second until it reaches zero, while client_credentials load runs against the server.
func measureCleanup(ctx context.Context, db *benchDB, bin string, env []string, base, logPath string, t *target, c int, o options, srvp **serverProc) (*cleanupResult, error) {
	cr := &cleanupResult{batch: "the server's default batch for this database"}
	if o.cleanupBatch > 0 {
		cr.batch = fmt.Sprintf("`LATCHKEY_CLEANUP_BATCH=%d`", o.cleanupBatch)
	}
	var err error
	if cr.initial, err = db.countExpired(ctx); err != nil {
		return nil, fmt.Errorf("count expired rows: %w", err)
	}
	// Expired rows left: on PostgreSQL from the table's deleted-row counter (the load only inserts, so every
	// delete is cleanup's), counted only to confirm the end; on SQLite counted each time.
	remaining := func(ctx context.Context) (int64, bool, error) {
		n, err := db.countExpired(ctx)
		return n, true, err
	}
	cr.progress = "expired rows counted every second"
	if db.kind == "postgres" {
		cr.progress = "rows left read every second from PostgreSQL's deleted-row counter, `pg_stat_user_tables.n_tup_del`, and counted with `COUNT(*)` only when that counter stalls or reaches zero"
		base0, err := db.settledDeletedAccessRows(ctx)
		if err != nil {
			return nil, fmt.Errorf("read deleted-row counter: %w", err)
		}
		last, stalls := base0, 0
		remaining = func(ctx context.Context) (int64, bool, error) {
			n, err := db.deletedAccessRows(ctx)
			if err != nil {
				return 0, false, err
			}
			if n == last {
				stalls++
			} else {
				last, stalls = n, 0
			}
			// Backends publish the counter about once a second, so one poll without movement is normal; two
			// mean cleanup is done or idle (an idle backend may hold its last counts for up to 10 s). Count then,
			// and when the counter says nothing is left.
			if left := cr.initial - (n - base0); left > 0 && stalls < 2 {
				return left, false, nil
			}
			n, err = db.countExpired(ctx)
			return n, true, err
		}
	}
	srv, err := startServer(ctx, bin, env, base, logPath)
	if err != nil {
		return nil, err
	}
	*srvp = srv
	ready := time.Now()

	sc := scenarioByName("client_credentials")
	tr := newTransport(c)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: noFollow}
	workers := make([]*worker, c)
	for i := range workers {
		workers[i] = &worker{id: i, base: base, client: client, rng: rand.New(rand.NewPCG(uint64(i), 7)), kept: newReservoir(1)}
		workers[i].run, _ = sc.prepare(ctx, t, workers[i])
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		progress := cleanupProgress{}
		progress.add(progressReading{ready, cr.initial, true})
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				stop.Store(true)
				return
			case <-tick.C:
			}
			n, exact, err := remaining(ctx)
			if err != nil {
				continue
			}
			now := time.Now()
			cr.polls++
			progress.add(progressReading{now, n, exact})
			cr.maxRate = progress.maxRate
			cr.remaining, cr.elapsed = n, now.Sub(ready)
			if n == 0 {
				stop.Store(true)
				return
			}
			if now.Sub(ready) > o.cleanupTimeout {
				cr.timedOut = true
				if n, err := db.countExpired(ctx); err == nil { // the counter may lag; the report needs the rows left
					cr.remaining = n
				}
				stop.Store(true)
				return
			}
		}
	}()
	cpu0, _ := srv.cpu()
	srv.resetPeakRSS()
	logOff := srv.logSize()
	snap0 := takeCPUSnapshot(ctx, srv, db)
	res := runPhase(ctx, workers, ready.Add(o.cleanupTimeout+5*time.Second), &stop, true)
	other := otherCores(snap0, takeCPUSnapshot(ctx, srv, db))
	<-done
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := row{scenario: "client_credentials during cleanup", c: c, ops: res.ops, lat: res.lat, errs: res.errs, cpuPer1k: -1, pctCeiling: -1, dbCPUPer1k: -1, otherCores: other}
	r.rps = float64(res.ops) / res.elapsed.Seconds()
	if cpu1, err := srv.cpu(); err == nil && res.ops > 0 {
		r.cpuPer1k = (cpu1.seconds() - cpu0.seconds()) / (float64(res.ops) / 1000)
	}
	r.peakRSS, _ = srv.status("VmHWM")
	r.logWarn, r.logErr, r.firstLogErr = srv.logLevels(logOff)
	cr.load = r
	return cr, nil
}

// fetchProfile asks the server's debug listener for a CPU profile covering d and writes it to path.
func fetchProfile(ctx context.Context, debugBase string, d time.Duration, path string) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", debugBase, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("debug listener answered %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
