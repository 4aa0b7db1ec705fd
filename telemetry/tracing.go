package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Tracing is the server's OpenTelemetry tracing: on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT is set (spans then go by OTLP/HTTP to that collector; the exporter reads the
// other standard OTEL_EXPORTER_OTLP_* variables, and the SDK OTEL_TRACES_SAMPLER and OTEL_SERVICE_NAME), off
// otherwise. Off, it costs nothing: Wrap returns the handler unchanged.
type Tracing struct {
	provider *sdktrace.TracerProvider // nil: off
}

// TracingEnabled reports whether env asks for trace export. OTEL_SDK_DISABLED=true and
// OTEL_TRACES_EXPORTER=none turn it off, as the specification says.
func TracingEnabled(env func(string) string) bool {
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(env("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || env("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// StartTracing starts the OTLP/HTTP exporter and installs the tracer provider and the W3C trace-context and
// baggage propagators globally (fosite's own spans use the global provider), when TracingEnabled(env). It
// connects lazily: a collector that is down loses spans, never requests. Call Shutdown on the way out.
func StartTracing(ctx context.Context, env func(string) string, version string) (*Tracing, error) {
	if !TracingEnabled(env) {
		return &Tracing{}, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter (OTEL_EXPORTER_OTLP_*): %w", err)
	}
	// Our name and version first; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override them.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "latchkey"), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("trace resource (OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return &Tracing{provider: tp}, nil
}

// Enabled reports whether spans are exported.
func (t *Tracing) Enabled() bool { return t != nil && t.provider != nil }

// Wrap wraps the whole HTTP handler with otelhttp when tracing is on: one server span per request, continuing
// the caller's trace from its traceparent header. The span starts named after the method; Metrics.Middleware
// renames it after the route template once the router has matched.
func (t *Tracing) Wrap(h http.Handler) http.Handler {
	if !t.Enabled() {
		return h
	}
	return otelhttp.NewHandler(h, "latchkey",
		otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(otel.GetTextMapPropagator()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "HTTP " + r.Method }),
	)
}

// Shutdown exports the spans still buffered, within ctx.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}
