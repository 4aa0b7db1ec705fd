// Package handlers is Latchkey's HTTP surface: one type per endpoint family, each holding exactly the
// dependencies it uses, mounted on a gorilla/mux router in one visible list by cmd/latchkey.
package handlers

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"
)

// Routes is an endpoint family that knows its paths.
type Routes interface {
	Mount(r *mux.Router)
}

// Mount adds every family's routes to r.
func Mount(r *mux.Router, families ...Routes) {
	for _, f := range families {
		f.Mount(r)
	}
}

// RouterOptions configure the middleware every request passes through.
type RouterOptions struct {
	Logger       *slog.Logger
	MaxBodyBytes int64 // default 64 KiB: OAuth requests are small forms
	// TrustedProxies are the load balancers whose X-Forwarded-For names the client (sign-in throttling by IP,
	// the IP on the sessions page, the access log); none by default.
	TrustedProxies TrustedProxies
}

// NewRouter returns the full handler: request ids, recovery, body limits and access logs around the routes.
func NewRouter(opts RouterOptions, families ...Routes) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 64 << 10
	}
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(methodNotAllowed)
	Mount(r, families...)
	return withRequestContext(opts.Logger, opts.TrustedProxies, recoverPanics(limitBody(opts.MaxBodyBytes, r)))
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeJSONError(w, http.StatusNotFound, "not_found", "No such endpoint.")
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "HTTP method not allowed on this endpoint.")
}
