package telemetry

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestTracesExportOverOTLPHTTP points the standard OTLP endpoint variable at a fake collector: a request that
// carries a traceparent yields one server span in that trace, named after the route template, with our
// service name, exported over OTLP/HTTP when tracing shuts down.
func TestTracesExportOverOTLPHTTP(t *testing.T) {
	var mu sync.Mutex
	var exports []*coltracepb.ExportTraceServiceRequest
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector got %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("export is not an OTLP trace request: %v", err)
		}
		mu.Lock()
		exports = append(exports, &req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)

	tr, err := StartTracing(context.Background(), os.Getenv, "v-test")
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Enabled() {
		t.Fatal("tracing is off with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	srv := httptest.NewServer(tr.Wrap(testRouter(New(Options{}))))
	defer srv.Close()
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/api/clients/abc", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	var found bool
	for _, e := range exports {
		for _, rs := range e.GetResourceSpans() {
			var service, version string
			for _, a := range rs.GetResource().GetAttributes() {
				switch a.GetKey() {
				case "service.name":
					service = a.GetValue().GetStringValue()
				case "service.version":
					version = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					found = true
					if got := hex.EncodeToString(s.GetTraceId()); got != traceID {
						t.Errorf("span in trace %s, want the caller's %s", got, traceID)
					}
					if s.GetName() != "DELETE /api/clients/{id}" {
						t.Errorf("span name %q", s.GetName())
					}
					if service != "latchkey" || version != "v-test" {
						t.Errorf("resource service.name=%q service.version=%q", service, version)
					}
				}
			}
		}
	}
	if !found {
		t.Fatalf("no span reached the collector (%d exports)", len(exports))
	}
}
