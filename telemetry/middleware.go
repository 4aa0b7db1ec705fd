package telemetry

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Route labels for requests the router matched to no route (Instrument them on the router's NotFoundHandler
// and MethodNotAllowedHandler, which mux middleware never sees).
const (
	RouteNotFound         = "not_found"
	RouteMethodNotAllowed = "method_not_allowed"
)

// Middleware is a gorilla/mux middleware (router.Use(metrics.Middleware)): it counts every request the router
// matched by route template (never the raw path, whose values are unbounded), method and status, records its
// latency, and names the request's trace span after the route when tracing is on.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := "unknown"
		if cr := mux.CurrentRoute(r); cr != nil {
			if t, err := cr.GetPathTemplate(); err == nil {
				route = t
			}
		}
		m.serve(route, next, w, r)
	})
}

// Instrument counts and times every request to next under the fixed route label route.
func (m *Metrics) Instrument(route string, next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(route, next, w, r) })
}

func (m *Metrics) serve(route string, next http.Handler, w http.ResponseWriter, r *http.Request) {
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetName(r.Method + " " + route)
		span.SetAttributes(attribute.String("http.route", route))
	}
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	next.ServeHTTP(sw, r)
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	m.observe(route, r.Method, status, time.Since(start))
}

// statusWriter remembers the first status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush, deadlines).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
