package request

import (
	"context"
	"net/http"
	"strings"
)

type originChecker interface {
	OriginAllowed(ctx context.Context, origin string) (bool, error)
}

// CORS lets browser apps call the token, userinfo and revocation endpoints from the origins registered for some
// client (its redirect URIs' origins and its allowed origins). Credentials (cookies) are never allowed: these
// endpoints authenticate with tokens and client credentials, not cookies.
type CORS struct {
	Origins originChecker
}

// Wrap adds CORS handling in front of next; a nil CORS is a no-op.
func (c *CORS) Wrap(next http.Handler) http.Handler {
	if c == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		ok, err := c.Origins.OriginAllowed(r.Context(), strings.ToLower(origin))
		if err != nil {
			Logger(r.Context()).Error("check CORS origin", "error", err)
			ok = false
		}
		if !ok {
			if preflight {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r) // the browser withholds the response without our header
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Expose-Headers", "WWW-Authenticate, X-Request-Id")
		if preflight {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
