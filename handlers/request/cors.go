package request

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

type originChecker interface {
	OriginAllowed(ctx context.Context, origin string) (bool, error)
}

// CORS lets browser apps call the token, userinfo, revocation and token API endpoints from the origins registered
// for some client (its redirect URIs' origins and its allowed origins). Credentials (cookies) are never allowed:
// these endpoints authenticate with tokens and client credentials, not cookies.
//
// A preflight from an allowed origin is answered with the methods the route serves and, of the request headers
// the browser asks for, those in CORSHeaders or the route's own (the token API's custom token header); the
// browser then refuses anything else by itself. A preflight from any other origin is 403 with no CORS header
// (a failed CORS check, Fetch §4.8), so a page there learns nothing.
//
// When the origin cannot be checked (the database is down), the request is answered by Unavailable and the route
// never runs, preflight and actual request alike: running it would spend what it spends (a refresh token at
// /refresh) and leave the browser app unable to read the answer, and refusing the preflight with 403 would tell
// the app the origin is not allowed.
type CORS struct {
	Origins originChecker
	// Unavailable answers a request whose origin could not be checked: 503 temporarily_unavailable with
	// Retry-After, logged at Error with its cause and the request id. The wiring sets it to jsonapi's writer (this
	// package writes no bodies of its own, and jsonapi imports it). When nil, the answer is a bare 503 with
	// Retry-After and the cause is logged here.
	Unavailable func(w http.ResponseWriter, r *http.Request, err error)
}

// corsRetryAfter is the Retry-After of the bare 503 answered when Unavailable is nil (jsonapi.OutageRetryAfter).
const corsRetryAfter = "5"

// CORSHeaders are the request headers every CORS route allows. Each is harmless here because nothing reads
// cookies on these routes and none of them changes what a request may do:
//   - Authorization: the access token (Bearer, or WeWeb's "Basic <token>") or client credentials;
//   - Content-Type: the JSON and form bodies (application/json is not CORS-safelisted);
//   - Accept, Accept-Language, Content-Language: safelisted already, but browsers still ask for them when their
//     values are not (e.g. an Accept longer than 128 bytes);
//   - X-Requested-With: set by jQuery-style and some axios setups; we ignore it;
//   - ww-retry: WeWeb's Token-Based Auth plugin marks the call it repeats after a refresh with it; we ignore it.
var CORSHeaders = []string{"Authorization", "Content-Type", "Accept", "Accept-Language", "Content-Language", "X-Requested-With", "ww-retry"}

// CORSMaxAge is how long, in seconds, a browser may cache a preflight answer (browsers cap it: Chromium at 2 h).
const CORSMaxAge = "600"

// CORSRoute describes what a route accepts from other origins.
type CORSRoute struct {
	Methods []string // the methods the route serves; GET and POST when empty
	Headers []string // request headers allowed beyond CORSHeaders, e.g. the token API's custom token header
}

// Wrap adds CORS handling for a GET and POST route in front of next; a nil CORS is a no-op.
func (c *CORS) Wrap(next http.Handler) http.Handler {
	return c.WrapRoute(next, CORSRoute{})
}

// WrapRoute adds CORS handling for route in front of next; a nil CORS is a no-op.
func (c *CORS) WrapRoute(next http.Handler, route CORSRoute) http.Handler {
	if c == nil {
		return next
	}
	methods := route.Methods
	if len(methods) == 0 {
		methods = []string{http.MethodGet, http.MethodPost}
	}
	allowMethods := strings.Join(methods, ", ")
	allowed := make(map[string]bool, len(CORSHeaders)+len(route.Headers))
	for _, h := range append(slices.Clone(CORSHeaders), route.Headers...) {
		if h = strings.TrimSpace(h); h != "" {
			allowed[strings.ToLower(h)] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		w.Header().Add("Vary", "Origin")
		if preflight {
			// The answer depends on what is asked, so a cache must not reuse it for another question.
			w.Header().Add("Vary", "Access-Control-Request-Method")
			w.Header().Add("Vary", "Access-Control-Request-Headers")
		}
		ok, err := c.Origins.OriginAllowed(r.Context(), strings.ToLower(origin))
		if err != nil {
			c.unavailable(w, r, origin, err)
			return
		}
		if !ok {
			if preflight {
				Logger(r.Context()).Info("CORS preflight refused", "origin", truncateOrigin(origin))
				w.WriteHeader(http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r) // the browser withholds the response without our header
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After, X-Request-Id")
		if preflight {
			w.Header().Set("Access-Control-Allow-Methods", allowMethods)
			if h := allowedHeaders(r.Header.Values("Access-Control-Request-Headers"), allowed); h != "" {
				w.Header().Set("Access-Control-Allow-Headers", h)
			}
			w.Header().Set("Access-Control-Max-Age", CORSMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// unavailable answers a request whose origin could not be checked, without running the route.
//
// The answer carries Access-Control-Allow-Origin for the request's origin although that origin could not be
// checked, so that a browser app can read the 503 and its Retry-After and retry, instead of seeing a network
// error it may take for a sign-out. This is safe: the answer is the same generic error for every origin, carries
// no secret and no data of any user, credentials are never allowed (no Access-Control-Allow-Credentials), and
// nothing was executed. A preflight answered 503 fails in the browser anyway (a preflight needs an ok status), so
// no allowed methods or headers are given and the actual request is never sent.
func (c *CORS) unavailable(w http.ResponseWriter, r *http.Request, origin string, err error) {
	err = fmt.Errorf("check CORS origin %q: %w", truncateOrigin(origin), err)
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After, X-Request-Id")
	if c.Unavailable != nil {
		c.Unavailable(w, r, err)
		return
	}
	Logger(r.Context()).Error("request failed", "status", http.StatusServiceUnavailable, "cause", err.Error())
	w.Header().Set("Retry-After", corsRetryAfter)
	w.WriteHeader(http.StatusServiceUnavailable)
}

// allowedHeaders is the comma-separated list of the requested headers (Access-Control-Request-Headers, which
// browsers send lower-cased) that are allowed; a header not allowed is left out, and the browser then refuses
// the request.
func allowedHeaders(requested []string, allowed map[string]bool) string {
	var out []string
	for _, line := range requested {
		for h := range strings.SplitSeq(line, ",") {
			h = strings.ToLower(strings.TrimSpace(h))
			if allowed[h] && !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	return strings.Join(out, ", ")
}

// truncateOrigin bounds what a refused origin can put in the log.
func truncateOrigin(s string) string {
	if len(s) > 100 {
		return s[:100]
	}
	return s
}
