package telemetry

import (
	"bufio"
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/latchkey/latchkey/keys"
)

// scrape fetches a /metrics page and returns its samples: "name{labels}" -> value, labels as exposed.
func scrape(t *testing.T, url string) map[string]float64 {
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

// testRouter is a router shaped like ours: a mux middleware, a route with a path variable, instrumented
// not-found and method-not-allowed handlers.
func testRouter(m *Metrics) http.Handler {
	r := mux.NewRouter()
	r.Use(m.Middleware)
	r.HandleFunc("/.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"keys":[]}`)
	}).Methods(http.MethodGet)
	r.HandleFunc("/api/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		if mux.Vars(r)["id"] == "missing" {
			http.Error(w, "no such client", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}).Methods(http.MethodDelete)
	r.NotFoundHandler = m.Instrument(RouteNotFound, http.NotFoundHandler())
	r.MethodNotAllowedHandler = m.Instrument(RouteMethodNotAllowed, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusMethodNotAllowed)
	}))
	return r
}

func TestMetricsThroughARealServer(t *testing.T) {
	m := New(Options{GrantTypes: []string{"client_credentials", "authorization_code"}})
	m.WatchDBPools(func() map[string]sql.DBStats {
		return map[string]sql.DBStats{"main": {MaxOpenConnections: 20, OpenConnections: 3, InUse: 1, Idle: 2, WaitCount: 7,
			WaitDuration: 1500 * time.Millisecond}}
	})
	var dropped uint64 = 4
	m.WatchLogDrops(func() uint64 { return dropped })
	app := httptest.NewServer(testRouter(m))
	defer app.Close()
	metrics := httptest.NewServer(m.Handler())
	defer metrics.Close()

	before := scrape(t, metrics.URL)
	if v, ok := before[`latchkey_tokens_issued_total{grant_type="client_credentials"}`]; !ok || v != 0 {
		t.Fatalf("token counter for a known grant type does not start at 0: %v %v", v, ok)
	}
	if v, ok := before[`latchkey_throttle_rejections_total{kind="ip"}`]; !ok || v != 0 {
		t.Fatalf("throttle counter does not start at 0: %v %v", v, ok)
	}

	for _, req := range []struct{ method, path string }{
		{"GET", "/.well-known/jwks.json"}, {"GET", "/.well-known/jwks.json"}, {"GET", "/.well-known/jwks.json"},
		{"DELETE", "/api/clients/abc"}, {"DELETE", "/api/clients/def"}, {"DELETE", "/api/clients/missing"},
		{"POST", "/.well-known/jwks.json"}, {"GET", "/no/such/path"}, {"BREW", "/.well-known/jwks.json"},
	} {
		r, _ := http.NewRequest(req.method, app.URL+req.path, nil)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	m.TokenIssued("client_credentials")
	m.TokenIssued("client_credentials")
	m.TokenIssued("urn:made-up")
	m.ThrottleRejected(ThrottleAccount)
	m.ThrottleRejected("weird")
	m.KeyRotation("RS256", keys.RotationScheduled)
	m.KeyRotation("ES256", keys.RotationConflict)

	after := scrape(t, metrics.URL)
	want := map[string]float64{
		`latchkey_http_requests_total{method="GET",route="/.well-known/jwks.json",status="200"}`:    3,
		`latchkey_http_requests_total{method="DELETE",route="/api/clients/{id}",status="204"}`:      2,
		`latchkey_http_requests_total{method="DELETE",route="/api/clients/{id}",status="404"}`:      1,
		`latchkey_http_requests_total{method="POST",route="method_not_allowed",status="405"}`:       1,
		`latchkey_http_requests_total{method="other",route="method_not_allowed",status="405"}`:      1,
		`latchkey_http_requests_total{method="GET",route="not_found",status="404"}`:                 1,
		`latchkey_http_request_duration_seconds_count{method="GET",route="/.well-known/jwks.json"}`: 3,
		`latchkey_http_request_duration_seconds_count{method="DELETE",route="/api/clients/{id}"}`:   3,
		`latchkey_tokens_issued_total{grant_type="client_credentials"}`:                             2,
		`latchkey_tokens_issued_total{grant_type="authorization_code"}`:                             0,
		`latchkey_tokens_issued_total{grant_type="other"}`:                                          1,
		`latchkey_throttle_rejections_total{kind="account"}`:                                        1,
		`latchkey_throttle_rejections_total{kind="other"}`:                                          1,
		`latchkey_signing_key_rotations_total{alg="RS256",outcome="scheduled"}`:                     1,
		`latchkey_signing_key_rotations_total{alg="ES256",outcome="conflict"}`:                      1,
		`latchkey_db_max_open_connections{pool="main"}`:                                             20,
		`latchkey_db_in_use_connections{pool="main"}`:                                               1,
		`latchkey_db_wait_count_total{pool="main"}`:                                                 7,
		`latchkey_db_wait_duration_seconds_total{pool="main"}`:                                      1.5,
		`latchkey_log_records_dropped_total`:                                                        4,
	}
	for k, v := range want {
		if got, ok := after[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for k := range after {
		if strings.Contains(k, "abc") || strings.Contains(k, "def") || strings.Contains(k, "/no/such/path") ||
			strings.Contains(k, "BREW") || strings.Contains(k, "urn:made-up") || strings.Contains(k, "weird") {
			t.Errorf("a raw request value became a label: %s", k)
		}
	}
	if after[`go_goroutines`] == 0 || after[`process_resident_memory_bytes`] == 0 {
		t.Errorf("Go runtime and process collectors missing")
	}
}

func TestNilMetricsDoNothing(t *testing.T) {
	var m *Metrics
	m.TokenIssued("client_credentials")
	m.ThrottleRejected(ThrottleIP)
	m.KeyRotation("RS256", keys.RotationScheduled)
	m.WatchDBPools(func() map[string]sql.DBStats { return nil })
	m.WatchLogDrops(func() uint64 { return 0 })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	rec := httptest.NewRecorder()
	m.Middleware(h).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusTeapot {
		t.Fatalf("nil Metrics' middleware changed the answer: %d", rec.Code)
	}
	if m.Registry() != nil {
		t.Fatal("nil Metrics has a registry")
	}
}

func TestStatusText(t *testing.T) {
	for _, code := range []int{100, 200, 201, 204, 226, 302, 303, 400, 401, 403, 404, 405, 418, 429, 500, 503, 599} {
		if got := statusText(code); got != strconv.Itoa(code) {
			t.Errorf("statusText(%d) = %q", code, got)
		}
	}
	if statusText(1000) != "other" || statusText(0) != "other" {
		t.Error("out-of-range status codes must not become labels")
	}
}

func TestTracingOffUnlessAnEndpointIsSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"general endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := func(k string) string { return tc.env[k] }
			if got := TracingEnabled(env); got != tc.want {
				t.Fatalf("TracingEnabled = %v, want %v", got, tc.want)
			}
		})
	}
	tr, err := StartTracing(context.Background(), func(string) string { return "" }, "test")
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = markerHandler{}
	if tr.Enabled() || tr.Shutdown(context.Background()) != nil {
		t.Fatal("tracing without an endpoint is not off")
	}
	if tr.Wrap(h) != h {
		t.Fatal("Wrap wrapped the handler although tracing is off")
	}
	var none *Tracing
	if none.Wrap(h) != h || none.Enabled() {
		t.Fatal("a nil *Tracing wrapped the handler")
	}
}

type markerHandler struct{}

func (markerHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

// TestSpanNamedAfterRouteTemplate drives the router inside otelhttp with an in-memory exporter: the server span
// carries the route template, not the raw path.
func TestSpanNamedAfterRouteTemplate(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	tr := &Tracing{provider: tp}
	srv := httptest.NewServer(tr.Wrap(testRouter(New(Options{}))))
	defer srv.Close()
	r, _ := http.NewRequest(http.MethodDelete, srv.URL+"/api/clients/abc", nil)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	if spans[0].Name != "DELETE /api/clients/{id}" {
		t.Fatalf("span name %q, want the route template", spans[0].Name)
	}
	var route string
	for _, a := range spans[0].Attributes {
		if a.Key == "http.route" {
			route = a.Value.AsString()
		}
	}
	if route != "/api/clients/{id}" {
		t.Fatalf("http.route = %q", route)
	}
}

// Benchmarks: what each layer costs per request, on a JWKS-like route through httptest.ResponseRecorder.
func BenchmarkRouter(b *testing.B) {
	req := httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil)
	run := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		cpu := processCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
		// CPU time, which a busy shared machine disturbs less than wall time.
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	}
	b.Run("mux", func(b *testing.B) { run(b, testRouter(nil)) })
	b.Run("mux+metrics", func(b *testing.B) { run(b, testRouter(New(Options{}))) })
	// otelhttp with the global (no-op) tracer and meter providers: what wrapping always would cost with
	// tracing off. Tracing.Wrap does not wrap then.
	b.Run("otelhttp-idle+mux+metrics", func(b *testing.B) {
		run(b, otelhttp.NewHandler(testRouter(New(Options{})), "latchkey"))
	})
	b.Run("otelhttp-recording+mux+metrics", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		defer tp.Shutdown(context.Background())
		run(b, (&Tracing{provider: tp}).Wrap(testRouter(New(Options{}))))
	})
}

// processCPU is this process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
