package app

import (
	"net/http"
	"net/http/pprof"
)

// debugHandler serves Go's runtime profiles and the Prometheus metrics. It is mounted only on
// LATCHKEY_DEBUG_ADDR, which validate keeps on a loopback address, so it is never reachable through the public
// listener.
func debugHandler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("GET /metrics", metrics)
	return mux
}

// metricsHandler serves only the Prometheus metrics, on LATCHKEY_METRICS_ADDR.
func metricsHandler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	return mux
}
