// Package handlers is Latchkey's HTTP surface. Each endpoint family is a package of its own, a type holding
// exactly the dependencies it uses, mounted on a gorilla/mux router in one visible list by package app:
//
//	oauth/         protocol endpoints: token, introspection, revocation, PAR, userinfo, discovery, JWKS, device
//	browser/       authorization, sign-in (also through another provider), consent, RP-initiated logout, /device
//	               and account pages
//	accountmail/   the pages a mail links to: email verification and password reset
//	tokenapi/      the first-party JSON token API (/api/v1/auth)
//	admin/         the admin API (/api/v1/admin)
//	registration/  dynamic client registration and its management (RFC 7591, RFC 7592)
//
// They share small packages and never import each other: request (request id, logger, access log, client IP,
// CORS), jsonapi (error codes and the one JSON error writer, fault mapping to 503), page (the HTML pages'
// cookies, CSRF, error page and forms), throttle (sign-in throttle and device tokens) and grant (bearer tokens,
// the identity tokens carry, second factors). This package puts the request
// middleware around the families (NewRouter) and serves health checks.
package handlers

import (
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/telemetry"
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
	TrustedProxies request.TrustedProxies
	// Metrics counts and times requests by route template; nil: none.
	Metrics *telemetry.Metrics
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
	// mux runs middleware only on matched routes, so the two fallbacks are instrumented themselves.
	r.Use(opts.Metrics.Middleware)
	r.NotFoundHandler = opts.Metrics.Instrument(telemetry.RouteNotFound, http.HandlerFunc(notFound))
	r.MethodNotAllowedHandler = opts.Metrics.Instrument(telemetry.RouteMethodNotAllowed, http.HandlerFunc(methodNotAllowed))
	Mount(r, families...)
	return request.Track(opts.Logger, opts.TrustedProxies, recoverPanics(limitBody(opts.MaxBodyBytes, r)))
}

func notFound(w http.ResponseWriter, r *http.Request) {
	jsonapi.Write(w, r, jsonapi.New(http.StatusNotFound, jsonapi.NotFound, "No such endpoint."))
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	jsonapi.Write(w, r, jsonapi.New(http.StatusMethodNotAllowed, jsonapi.InvalidRequest, "HTTP method not allowed on this endpoint."))
}

// recoverPanics turns a panic into a logged 500 so one bad request never takes the process down.
func recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				request.Logger(r.Context()).Error("panic serving request", "panic", v, "stack", string(debug.Stack()))
				jsonapi.New(http.StatusInternalServerError, jsonapi.ServerError, "Internal server error.").Send(w)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody caps request bodies; parsing a larger one fails and the endpoint answers invalid_request.
func limitBody(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			jsonapi.Write(w, r, jsonapi.New(http.StatusRequestEntityTooLarge, jsonapi.InvalidRequest, "Request body too large."))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}
