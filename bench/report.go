package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

type machine struct {
	cpus    int
	model   string
	memory  int64 // bytes
	kernel  string
	loadavg string // 1, 5 and 15 minute load averages when the run started
	goVer   string
	goBuild string
}

func machineInfo() machine {
	m := machine{cpus: runtime.NumCPU(), goVer: runtime.Version(), model: "unknown CPU"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.model = cpuModel(b)
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.memory, _ = parseProcStatusKB(b, "MemTotal")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.loadavg = strings.Join(f[:3], " ")
		}
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.goBuild = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	return m
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo []byte) string {
	for line := range bytes.SplitSeq(cpuinfo, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && string(bytes.TrimSpace(k)) == "model name" {
			return string(bytes.TrimSpace(v))
		}
	}
	return "unknown CPU"
}

// gitDescribe names the commit the server was built from, with "-dirty" when tracked files differ from it. The
// -out document does not count: the run before this one may just have written its own section there.
func gitDescribe(root, out string) string {
	rev, err := gitOutput(root, "rev-parse", "--short", "HEAD")
	if err != nil {
		return ""
	}
	args := []string{"status", "--porcelain", "--untracked-files=no", "--", "."}
	if exclude, ok := repoPathspec(root, out); ok {
		args = append(args, ":(top,exclude,literal)"+exclude)
	}
	if st, err := gitOutput(root, args...); err != nil || st != "" {
		return rev + "-dirty"
	}
	return rev
}

// repoPathspec is out (relative to the working directory, as the user gave it) relative to the top of root's
// repository, if it lies inside it.
func repoPathspec(root, out string) (string, bool) {
	if out == "" {
		return "", false
	}
	top, err := gitOutput(root, "rev-parse", "--show-toplevel")
	if err != nil {
		return "", false
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return "", false
	}
	rel, err := filepath.Rel(top, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

func gitOutput(root string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

type report struct {
	opts          options
	args          []string
	machine       machine
	dbVersion     string
	serverVersion string
	commit        string
	started       time.Time
	idleRSS       int64
	seedTime      time.Duration
	rows          []row
	cleanup       *cleanupResult
}

// sectionKey names this run's section of the output file: one per database, and a separate one per database
// when seeded so the seeded figures sit next to the empty ones instead of replacing them.
func (r *report) sectionKey() string {
	key := r.opts.db
	if r.opts.seed > 0 {
		key += "-seeded"
	}
	if r.opts.signingAlg != "" && r.opts.signingAlg != "RS256" {
		key += "-" + strings.ToLower(r.opts.signingAlg)
	}
	return key
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func fmtMS(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms >= 100:
		return strconv.FormatFloat(ms, 'f', 0, 64)
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 1, 64)
	}
	return strconv.FormatFloat(ms, 'f', 2, 64)
}

func fmtRate(v float64) string {
	if v >= 100 {
		return groupThousands(int64(v + 0.5))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}

// shellQuote quotes an argument only when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (r *report) command() string {
	parts := []string{"go", "run", "./bench"}
	for _, a := range r.args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func (r *report) title() string {
	name := map[string]string{"sqlite": "SQLite", "postgres": "PostgreSQL"}[r.opts.db]
	if r.opts.seed > 0 {
		return fmt.Sprintf("%s, with %s rows seeded in oauth2_access", name, groupThousands(int64(r.opts.seed)))
	}
	return name + ", empty database"
}

func (r *report) markdown() string {
	var b strings.Builder
	m := r.machine
	fmt.Fprintf(&b, "### %s\n\n", r.title())
	fmt.Fprintf(&b, "`%s`, %s\n\n", r.command(), r.started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- Machine: %s, %d cores (nproc), %.1f GiB memory, Linux %s, load average %s at start; the load generator shares the cores with the server.\n",
		m.model, m.cpus, float64(m.memory)/(1<<30), m.kernel, m.loadavg)
	build := m.goBuild
	if build == "" {
		build = m.goVer
	}
	fmt.Fprintf(&b, "- Go %s. Database: %s.\n", build, r.dbVersion)
	srv := r.serverVersion
	if r.commit != "" {
		srv += " at " + r.commit
	}
	fmt.Fprintf(&b, "- Server: %s; idle RSS right after start %.1f MiB. Argon2id for passwords: m=19456 KiB, t=2, p=1. JWTs signed with %s. LATCHKEY_LOG_LEVEL=%s (the server's stderr goes to a file).\n", srv, mib(r.idleRSS), r.opts.signingAlg, r.opts.logLevel)
	fmt.Fprintf(&b, "- Each row: %s warm-up, then %s measured with c closed-loop workers on keep-alive connections.", r.opts.warmup, r.opts.duration)
	fmt.Fprintf(&b, " req/s counts successful iterations; latencies are of successful ones (exact percentiles of every sample).\n")
	if r.opts.seed > 0 {
		fmt.Fprintf(&b, "- Seeded %s oauth2_access rows (half expired an hour ago, half live for a day) in %s, before the server started; cleanup was off during the scenarios.\n",
			groupThousands(int64(r.opts.seed)), r.seedTime.Round(100*time.Millisecond))
	}
	b.WriteString("\n| scenario | c | req/s | p50 ms | p90 ms | p99 ms | errors | peak RSS MiB | CPU s/1k req | % of ceiling | DB CPU s/1k req | other procs, cores |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	lifetime := false
	for _, row := range r.rows {
		b.WriteString(row.markdown())
		lifetime = lifetime || row.peakIsLifetime
	}
	b.WriteString("\n")
	if lifetime {
		b.WriteString("Peak RSS is the server's process-lifetime VmHWM (this kernel did not allow resetting it per row).\n\n")
	} else {
		b.WriteString("Peak RSS is the server's VmHWM during the row (reset through /proc/PID/clear_refs before each measurement, so it starts from the RSS left by the rows before). CPU is the server's utime+stime; DB CPU (PostgreSQL only; SQLite runs inside the server) is that of the backends connected to the bench database. % of ceiling uses the better of the two ceiling measurements at the same c. The last column is the CPU that processes other than the harness, the server and its database backends took during the row (from /proc/stat); anything above 0.2 makes that row pessimistic.\n\n")
	}
	if r.cleanup != nil {
		b.WriteString(r.cleanup.markdown(r.rows))
	}
	b.WriteString(r.notes())
	return b.String()
}

func (row row) markdown() string {
	if row.failed != "" {
		return fmt.Sprintf("| %s | %d | failed: %s | | | | | | | | | |\n", row.scenario, row.c, strings.ReplaceAll(row.failed, "|", "\\|"))
	}
	rss, cpu, pct, dbCPU := "—", "—", "—", "—"
	if row.dbCPUPer1k >= 0 {
		dbCPU = strconv.FormatFloat(row.dbCPUPer1k, 'f', 3, 64)
	}
	if row.peakRSS > 0 {
		rss = strconv.FormatFloat(mib(row.peakRSS), 'f', 1, 64)
	}
	if row.cpuPer1k >= 0 {
		cpu = strconv.FormatFloat(row.cpuPer1k, 'f', 3, 64)
	}
	if row.pctCeiling >= 0 {
		pct = strconv.FormatFloat(row.pctCeiling, 'f', 1, 64) + "%"
	}
	errs := strconv.Itoa(row.errs.total())
	if n := row.errs.total(); n > 0 {
		errs = "**" + errs + "**"
	}
	return fmt.Sprintf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f |\n", row.scenario, row.c, fmtRate(row.rps),
		fmtMS(row.lat.p50), fmtMS(row.lat.p90), fmtMS(row.lat.p99), errs, rss, cpu, pct, dbCPU, row.otherCores)
}

func (cr *cleanupResult) markdown(rows []row) string {
	var b strings.Builder
	deleted := cr.initial - cr.remaining
	avg := 0.0
	if cr.elapsed > 0 {
		avg = float64(deleted) / cr.elapsed.Seconds()
	}
	fmt.Fprintf(&b, "**Cleanup** (server restarted with `LATCHKEY_CLEANUP_INTERVAL=1s`, %s; %s):\n\n", cr.batch, cr.progress)
	fmt.Fprintf(&b, "- %s expired access-token rows at start; %s deleted in %s", groupThousands(cr.initial), groupThousands(deleted), cr.elapsed.Round(100*time.Millisecond))
	if cr.timedOut {
		fmt.Fprintf(&b, " (stopped waiting: %s still expired)", groupThousands(cr.remaining))
	}
	fastest := "n/a (the run was shorter than a window)"
	if cr.maxRate > 0 {
		fastest = fmtRate(cr.maxRate) + " rows/s"
	}
	fmt.Fprintf(&b, ": %s rows/s on average from server start (including the first 1 s tick), fastest 5 s window %s.\n",
		fmtRate(avg), fastest)
	l := cr.load
	fmt.Fprintf(&b, "- client_credentials at c=%d meanwhile: %s req/s, p50 %s ms, p90 %s ms, p99 %s ms, %d errors, peak RSS %.1f MiB",
		l.c, fmtRate(l.rps), fmtMS(l.lat.p50), fmtMS(l.lat.p90), fmtMS(l.lat.p99), l.errs.total(), mib(l.peakRSS))
	for _, r := range rows {
		if r.scenario == "client_credentials" && r.c == l.c && r.failed == "" {
			fmt.Fprintf(&b, " (without cleanup: %s req/s, p99 %s ms)", fmtRate(r.rps), fmtMS(r.lat.p99))
		}
	}
	b.WriteString(".\n")
	if l.errs.total() > 0 {
		fmt.Fprintf(&b, "- Errors during cleanup: %s.\n", l.errs.describe())
	}
	if l.otherCores >= noisyCores {
		fmt.Fprintf(&b, "- Other processes on the machine used %.1f cores meanwhile.\n", l.otherCores)
	}
	if l.logErr > 0 {
		fmt.Fprintf(&b, "- The server logged %d errors during cleanup, e.g. `%s`.\n", l.logErr, truncateLine(l.firstLogErr, 200))
	}
	b.WriteString("\n")
	return b.String()
}

func (e *errorCounts) describe() string {
	var parts []string
	codes := make([]int, 0, len(e.status))
	for k := range e.status {
		codes = append(codes, k)
	}
	slices.Sort(codes)
	for _, k := range codes {
		parts = append(parts, fmt.Sprintf("%d × HTTP %d", e.status[k], k))
	}
	if e.bad > 0 {
		parts = append(parts, fmt.Sprintf("%d unusable responses", e.bad))
	}
	if e.transport > 0 {
		parts = append(parts, fmt.Sprintf("%d transport errors", e.transport))
	}
	s := strings.Join(parts, ", ")
	if e.first != "" {
		s += "; first: `" + truncateLine(e.first, 200) + "`"
	}
	return s
}

func truncateLine(s string, n int) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
	s = strings.ReplaceAll(s, "`", "'")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// notes explains what each scenario's request is, then lists verifications and anything odd.
func (r *report) notes() string {
	var b strings.Builder
	b.WriteString("Scenarios:\n\n")
	seen := map[string]bool{}
	for _, row := range r.rows {
		if seen[row.scenario] {
			continue
		}
		seen[row.scenario] = true
		if sc := scenarioByName(row.scenario); sc != nil && !seen[sc.name+"/note"] {
			seen[sc.name+"/note"] = true
			fmt.Fprintf(&b, "- `%s`: %s.\n", sc.name, sc.note)
		}
	}
	var checks, odd []string
	for _, row := range r.rows {
		label := fmt.Sprintf("`%s` c=%d", row.scenario, row.c)
		if row.verify != "" {
			checks = append(checks, fmt.Sprintf("- %s: %s.", label, row.verify))
		}
		if row.failed != "" {
			odd = append(odd, fmt.Sprintf("- %s did not run: %s", label, truncateLine(row.failed, 300)))
		}
		if row.errs.total() > 0 {
			odd = append(odd, fmt.Sprintf("- %s: %s.", label, row.errs.describe()))
		}
		if row.peakRSS > 150<<20 && row.startRSS > 0 {
			odd = append(odd, fmt.Sprintf("- %s: peak RSS %.0f MiB; the row started at %.0f MiB resident.", label, mib(row.peakRSS), mib(row.startRSS)))
		}
		if row.logErr > 0 {
			odd = append(odd, fmt.Sprintf("- %s: the server logged %d errors (and %d warnings), e.g. `%s`.", label, row.logErr, row.logWarn, truncateLine(row.firstLogErr, 200)))
		}
	}
	if len(checks) > 0 {
		b.WriteString("\nVerification:\n\n" + strings.Join(checks, "\n") + "\n")
	}
	b.WriteString("\nErrors, server-logged errors, large memory:\n\n")
	if len(odd) == 0 {
		b.WriteString("- none.\n")
	} else {
		b.WriteString(strings.Join(odd, "\n") + "\n")
	}
	return b.String()
}

// noisyCores is how much CPU other processes may take during a row before the notes say so.
const noisyCores = 0.2

func sectionMarkers(key string) (begin, end string) {
	return "<!-- bench:" + key + " -->", "<!-- /bench:" + key + " -->"
}

// replaceSection puts body between key's markers in doc, replacing what was there, or appends a new marked
// section at the end. Other sections are left as they are.
func replaceSection(doc, key, body string) string {
	begin, end := sectionMarkers(key)
	section := begin + "\n" + strings.TrimRight(body, "\n") + "\n" + end
	if i := lineIndex(doc, begin); i >= 0 {
		if j := lineIndex(doc[i:], end); j >= 0 {
			return doc[:i] + section + doc[i+j+len(end):]
		}
	}
	if doc != "" && !strings.HasSuffix(doc, "\n") {
		doc += "\n"
	}
	if doc != "" {
		doc += "\n"
	}
	return doc + section + "\n"
}

// lineIndex is the index of the first occurrence of marker that is a whole line of doc, or -1. Prose that quotes
// a marker (the document explains them) must not be taken for one: that replaced everything from the quote on.
func lineIndex(doc, marker string) int {
	for off := 0; ; {
		i := strings.Index(doc[off:], marker)
		if i < 0 {
			return -1
		}
		i += off
		startOK := i == 0 || doc[i-1] == '\n'
		after := i + len(marker)
		if startOK && (after == len(doc) || doc[after] == '\n') {
			return i
		}
		off = after
	}
}

func writeSection(path, key, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(replaceSection(string(old), key, body)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
