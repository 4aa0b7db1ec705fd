package app

import (
	"net/http"
	"net/http/pprof"
)

// debugHandler serves Go's runtime profiles. It is mounted only on LATCHKEY_DEBUG_ADDR, which validate keeps on
// a loopback address, so it is never reachable through the public listener.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
