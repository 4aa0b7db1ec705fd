package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentileIsNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1..100 ms
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty gives zero", nil, 99, 0},
		{"one sample is every percentile", ms(7), 50, 7 * time.Millisecond},
		{"one sample at p99", ms(7), 99, 7 * time.Millisecond},
		{"median of 1..100 is 50", hundred, 50, 50 * time.Millisecond},
		{"p90 of 1..100 is 90", hundred, 90, 90 * time.Millisecond},
		{"p99 of 1..100 is 99", hundred, 99, 99 * time.Millisecond},
		{"p100 is the maximum", hundred, 100, 100 * time.Millisecond},
		{"median of four rounds the rank up", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of ten is the largest", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p90 of ten is the ninth", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
		{"tiny p is the minimum", ms(3, 4, 5), 0.0001, 3 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarizeMergesWorkersBeforeSorting(t *testing.T) {
	// One slow worker among fast ones: the merged p99 must see it, a per-worker average would not.
	fast := make([]time.Duration, 0, 99)
	for range 99 {
		fast = append(fast, time.Millisecond)
	}
	s := summarize([][]time.Duration{ms(500), fast[:50], nil, fast[50:]})
	if s.n != 100 {
		t.Fatalf("n = %d, want 100", s.n)
	}
	if s.p50 != time.Millisecond || s.p90 != time.Millisecond {
		t.Errorf("p50, p90 = %v, %v, want 1ms, 1ms", s.p50, s.p90)
	}
	if s.p99 != time.Millisecond {
		t.Errorf("p99 = %v, want 1ms (rank 99 of 100)", s.p99)
	}
	if s.max != 500*time.Millisecond {
		t.Errorf("max = %v, want 500ms", s.max)
	}
	if got := summarize(nil); got.n != 0 || got.p99 != 0 {
		t.Errorf("summarize(nil) = %+v, want zeros", got)
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseProcStat(t *testing.T) {
	// The fixture's command name contains spaces and parentheses, as a process may choose.
	got, err := parseProcStat(readFixture(t, "proc_stat.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got.utime != 1234 || got.stime != 567 {
		t.Errorf("utime, stime = %d, %d, want 1234, 567", got.utime, got.stime)
	}
	if s := got.seconds(); s != 18.01 {
		t.Errorf("seconds = %v, want 18.01 at %d ticks/s", s, clockTicks)
	}
	for _, bad := range []string{"", "1 (x R 1 2", "1 (x) R 1 2 3", "1 (x) R 1 2 3 4 5 6 7 8 9 10 ten 12 13"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) succeeded, want an error", bad)
		}
	}
}

func TestParseProcStatOfThisProcess(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip("no /proc here")
	}
	if _, err := parseProcStat(b); err != nil {
		t.Fatal(err)
	}
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	if rss, err := parseProcStatusKB(st, "VmRSS"); err != nil || rss <= 0 {
		t.Fatalf("VmRSS = %d, %v", rss, err)
	}
}

func TestParseProcStatusKB(t *testing.T) {
	b := readFixture(t, "proc_status.txt")
	tests := []struct {
		key  string
		want int64
	}{
		{"VmHWM", 131072 * 1024},
		{"VmRSS", 40960 * 1024},
		{"VmPeak", 1561288 * 1024},
	}
	for _, tc := range tests {
		got, err := parseProcStatusKB(b, tc.key)
		if err != nil || got != tc.want {
			t.Errorf("%s = %d, %v; want %d", tc.key, got, err, tc.want)
		}
	}
	if _, err := parseProcStatusKB(b, "VmSwap"); err == nil {
		t.Error("a missing key parsed")
	}
	if _, err := parseProcStatusKB(b, "Threads"); err == nil {
		t.Error("a line without kB parsed as a size")
	}
	// "VmRSS" must not match "VmRSSx:" or a key that merely ends the same way.
	if _, err := parseProcStatusKB([]byte("XVmRSS:\t1 kB\n"), "VmRSS"); err == nil {
		t.Error("matched a different key")
	}
}

func TestCPUModel(t *testing.T) {
	if got := cpuModel(readFixture(t, "cpuinfo.txt")); got != "AMD EPYC 7B13" {
		t.Errorf("cpuModel = %q", got)
	}
}

func TestReservoirKeepsAtMostItsSize(t *testing.T) {
	r := newReservoir(3)
	next := 0
	randN := func(n int) int { next = (next + 1) % n; return next }
	for i := range 100 {
		r.add(string(rune('a'+i%26)), randN)
	}
	if len(r.items) != 3 || r.seen != 100 {
		t.Errorf("items %d, seen %d; want 3, 100", len(r.items), r.seen)
	}
}

func TestReplaceSectionKeepsTheOtherDatabase(t *testing.T) {
	doc := "# Performance\n\nintro\n"
	doc = replaceSection(doc, "sqlite", "sqlite v1\n")
	doc = replaceSection(doc, "postgres", "postgres v1")
	doc = replaceSection(doc, "sqlite", "sqlite v2\n")
	want := "# Performance\n\nintro\n\n<!-- bench:sqlite -->\nsqlite v2\n<!-- /bench:sqlite -->\n\n<!-- bench:postgres -->\npostgres v1\n<!-- /bench:postgres -->\n"
	if doc != want {
		t.Errorf("got:\n%s\nwant:\n%s", doc, want)
	}
	if strings.Count(doc, "bench:sqlite -->") != 2 {
		t.Error("sqlite section duplicated")
	}
}

// A marker quoted in prose is not a section: replacing must leave that prose and everything after it.
func TestReplaceSectionIgnoresQuotedMarkers(t *testing.T) {
	doc := "intro: a run writes `<!-- bench:sqlite -->` sections.\n\nnotes\n\n<!-- bench:sqlite -->\nold\n<!-- /bench:sqlite -->\n\ntail\n"
	got := replaceSection(doc, "sqlite", "new")
	want := "intro: a run writes `<!-- bench:sqlite -->` sections.\n\nnotes\n\n<!-- bench:sqlite -->\nnew\n<!-- /bench:sqlite -->\n\ntail\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestErrorCountsClassify(t *testing.T) {
	var e errorCounts
	e.add(&statusError{code: 500, body: "boom"})
	e.add(&statusError{code: 503})
	e.add(&statusError{code: 429})
	e.add(badResponse("no token"))
	e.add(os.ErrDeadlineExceeded)
	if e.total() != 5 || e.server5xx() != 2 || e.bad != 1 || e.transport != 1 {
		t.Errorf("total %d, 5xx %d, bad %d, transport %d", e.total(), e.server5xx(), e.bad, e.transport)
	}
	if !strings.Contains(e.describe(), "1 × HTTP 429, 1 × HTTP 500, 1 × HTTP 503") {
		t.Errorf("describe = %q", e.describe())
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-db", "postgres", "-c", "16,64", "-scenarios", "jwks,discovery", "-duration", "5s"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.scenarios, ",") != "ceiling,jwks,discovery" {
		t.Errorf("scenarios = %v; the ceiling always runs first", o.scenarios)
	}
	if len(o.concurrency) != 2 || o.concurrency[1] != 64 {
		t.Errorf("concurrency = %v", o.concurrency)
	}
	_, err = parseFlags([]string{"-db", "mysql", "-c", "0", "-scenarios", "nope"}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "-db") || !strings.Contains(err.Error(), "-c") || !strings.Contains(err.Error(), "nope") {
		t.Errorf("want every problem reported at once, got %v", err)
	}
}

func TestParseMachineBusy(t *testing.T) {
	got, err := parseMachineBusy(readFixture(t, "proc_stat_machine.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(1000 + 10 + 300 + 5 + 6 + 7); got != want {
		t.Errorf("busy = %d, want %d (user+nice+system+irq+softirq+steal)", got, want)
	}
	if _, err := parseMachineBusy([]byte("intr 1 2 3\n")); err == nil {
		t.Error("parsed a file without the cpu line")
	}
}

// The cleanup measurement on PostgreSQL reads rows left from the table's deleted-row counter instead of COUNT(*);
// this checks the counter sees deletes made on another connection, as the server's cleanup is.
func TestDeletedAccessRowsSeesDeletesFromAnotherConnection(t *testing.T) {
	pgURL := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("LATCHKEY_TEST_POSTGRES_URL is not set; skipping the PostgreSQL deleted-row counter test")
	}
	ctx := t.Context()
	db, err := createDB(ctx, "postgres", t.TempDir(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.drop(); err != nil {
			t.Error(err)
		}
	})
	writer, err := sql.Open("pgx", db.url)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	writer.SetMaxOpenConns(1) // one backend, whose counts the polls below nudge out
	for _, stmt := range []string{
		"CREATE TABLE oauth2_access (signature text PRIMARY KEY, expires_at timestamptz)",
		"INSERT INTO oauth2_access SELECT g::text, now() - interval '1 hour' FROM generate_series(1, 10) AS g",
	} {
		if _, err := writer.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	before, err := db.deletedAccessRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.ExecContext(ctx, "DELETE FROM oauth2_access WHERE signature IN ('1', '2', '3', '4')"); err != nil {
		t.Fatal(err)
	}
	// A backend publishes its counts when a transaction ends at least a second after its last report (an idle
	// one within 10 s): poll, ending a transaction on the writer each time, until they arrive.
	deadline := time.Now().Add(15 * time.Second)
	for {
		after, err := db.deletedAccessRows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := after - before; got == 4 {
			return
		} else if got > 4 || time.Now().After(deadline) {
			t.Fatalf("deleted-row counter moved by %d, want 4", got)
		}
		time.Sleep(100 * time.Millisecond)
		if _, err := writer.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCleanupProgressComparesLikeWithLike(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name     string
		readings []progressReading
		want     float64
	}{
		{"shorter than a window", []progressReading{{at(0), 1000, true}, {at(4), 600, true}}, 0},
		{"counted ends", []progressReading{{at(0), 1000, true}, {at(5), 500, true}}, 100},
		{"the nearest 5 s-old reading of the same kind",
			[]progressReading{{at(0), 1000, true}, {at(1), 990, false}, {at(2), 900, false}, {at(6), 500, false}, {at(7), 300, false}}, 120},
		// A counted end against a lagging counter end would report 700 rows in 5 s; they are not compared.
		{"counter and count are not mixed", []progressReading{{at(0), 1000, false}, {at(5), 300, true}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p cleanupProgress
			for _, r := range tt.readings {
				p.add(r)
			}
			if p.maxRate != tt.want {
				t.Fatalf("maxRate = %v, want %v", p.maxRate, tt.want)
			}
		})
	}
}

func TestGitDescribeIgnoresOnlyTheOutDocument(t *testing.T) {
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		if _, err := gitOutput(dir, append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...); err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
	}
	git("init", "-q")
	for _, f := range []string{"code.go", "docs/PERF.md"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("v1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("add", ".")
	git("commit", "-q", "-m", "one")
	outside := filepath.Join(t.TempDir(), "perf.md")
	dirty := func(out string) bool { return strings.HasSuffix(gitDescribe(dir, out), "-dirty") }

	if dirty("") || dirty(outside) {
		t.Fatal("a clean tree is -dirty")
	}
	if err := os.WriteFile(filepath.Join(dir, "docs/PERF.md"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if dirty(filepath.Join(dir, "docs/PERF.md")) {
		t.Fatal("a changed -out document made the tree -dirty")
	}
	if !dirty("") || !dirty(outside) {
		t.Fatal("a changed tracked file other than -out is not -dirty")
	}
}
