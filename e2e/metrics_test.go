package e2e

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/keys"
)

func TestMetricsAddressValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   []string
		ok   bool
	}{
		{"off", nil, true},
		{"any interface", []string{"LATCHKEY_METRICS_ADDR", ":9464"}, true},
		{"a private address", []string{"LATCHKEY_METRICS_ADDR", "10.0.0.5:9464"}, true},
		{"garbage", []string{"LATCHKEY_METRICS_ADDR", "metrics"}, false},
		{"no port", []string{"LATCHKEY_METRICS_ADDR", "127.0.0.1"}, false},
		{"port out of range", []string{"LATCHKEY_METRICS_ADDR", "127.0.0.1:70000"}, false},
		{"the public listener", []string{"LATCHKEY_ADDR", ":8080", "LATCHKEY_METRICS_ADDR", "127.0.0.1:8080"}, false},
		{"the public listener, spelled the same", []string{"LATCHKEY_ADDR", "127.0.0.1:8080", "LATCHKEY_METRICS_ADDR", "127.0.0.1:8080"}, false},
		{"the debug listener", []string{"LATCHKEY_DEBUG_ADDR", "127.0.0.1:6060", "LATCHKEY_METRICS_ADDR", ":6060"}, false},
		{"another host's port of the same number", []string{"LATCHKEY_ADDR", "127.0.0.1:8080", "LATCHKEY_METRICS_ADDR", "10.0.0.5:8080"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbURL, _ := sqliteTestURL(t)
			env := newTestEnv(t, dbURL).with(tc.kv...)
			_, errOut, code := env.cliCode(t, "", "migrate")
			if tc.ok && code != 0 {
				t.Fatalf("refused: exit %d\n%s", code, errOut)
			}
			if !tc.ok && (code != 1 || !strings.Contains(errOut, "LATCHKEY_METRICS_ADDR") || strings.Count(errOut, "\n") != 1) {
				t.Fatalf("exit %d, want 1 with one line naming LATCHKEY_METRICS_ADDR:\n%s", code, errOut)
			}
		})
	}
}

// TestServeExposesMetricsOnItsOwnListener runs `latchkey serve` in-process with LATCHKEY_METRICS_ADDR and
// LATCHKEY_DEBUG_ADDR: /metrics answers on both and never on the public listener, carries the database pools, the
// runtime and the log writer's drops, and the access log reaches stderr while the server runs.
func TestServeExposesMetricsOnItsOwnListener(t *testing.T) {
	dbURL, _ := sqliteTestURL(t)
	addr, metricsAddr, debugAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	env := newTestEnv(t, dbURL).with("LATCHKEY_ADDR", addr, "LATCHKEY_ISSUER", "http://"+addr,
		"LATCHKEY_METRICS_ADDR", metricsAddr, "LATCHKEY_DEBUG_ADDR", debugAddr, "LATCHKEY_LOG_LEVEL", "info")
	stderr := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- app.Run(ctx, []string{"serve"}, strings.NewReader(""), io.Discard, stderr, env.get) }()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d\n%s", code, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop within 20s")
		}
	}()
	waitReady(t, "http://"+addr+"/readyz", done, stderr)

	for i := 0; i < 3; i++ {
		resp, err := http.Get("http://" + addr + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if code, _, _ := get(t, "http://"+addr+"/metrics"); code != http.StatusNotFound {
		t.Errorf("the public listener answers /metrics with %d, want 404", code)
	}

	samples := scrapeMetrics(t, "http://"+metricsAddr+"/metrics")
	for _, name := range []string{
		`latchkey_db_max_open_connections{pool="main"}`,
		`latchkey_db_open_connections{pool="main"}`,
		`latchkey_db_open_connections{pool="read"}`, // SQLite's read-only pool
		`latchkey_db_wait_count_total{pool="main"}`,
		`latchkey_log_records_dropped_total`,
		`latchkey_tokens_issued_total{grant_type="client_credentials"}`,
		`latchkey_throttle_rejections_total{kind="account"}`,
		`go_goroutines`,
	} {
		if _, ok := samples[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if samples[`latchkey_db_max_open_connections{pool="main"}`] != 1 {
		t.Errorf("SQLite's main pool max = %v, want 1", samples[`latchkey_db_max_open_connections{pool="main"}`])
	}
	if samples[`latchkey_log_records_dropped_total`] != 0 {
		t.Errorf("dropped log records at idle: %v", samples[`latchkey_log_records_dropped_total`])
	}
	if code, _, body := get(t, "http://"+debugAddr+"/metrics"); code != http.StatusOK || !strings.Contains(string(body), "latchkey_db_open_connections") {
		t.Errorf("debug listener /metrics: %d", code)
	}

	// The access log reaches stderr while the server runs (the writer flushes at an interval, not only at exit).
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(stderr.String(), `"path":"/.well-known/jwks.json"`) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("access log lines not written within 5s:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKeyRotationIsCounted checks the keys callback is wired: a rotation through the app's key manager moves
// the rotation counter of every algorithm.
func TestKeyRotationIsCounted(t *testing.T) {
	dbURL, _ := sqliteTestURL(t)
	env := newTestEnv(t, dbURL)
	a, err := app.Open(t.Context(), nil, env.get, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Keys().Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	families, err := a.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "latchkey_signing_key_rotations_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var alg, outcome string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "alg":
					alg = l.GetValue()
				case "outcome":
					outcome = l.GetValue()
				}
			}
			got[alg+":"+outcome] = m.GetCounter().GetValue()
		}
	}
	for _, alg := range keys.Algorithms {
		if got[alg+":"+keys.RotationScheduled] != 1 {
			t.Errorf("rotations counted: %v; want %s:scheduled = 1", got, alg)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(t *testing.T, url string, done <-chan int, stderr *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d before it was ready:\n%s", code, stderr.String())
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready after 30s:\n%s", stderr.String())
		}
	}
}

// scrapeMetrics reads a Prometheus text page into "name{labels}" -> value.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("unparsable sample %q", line)
		}
		samples[line[:i]] = v
	}
	return samples
}
