package oauth

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/provider"
)

// jwksSource hands out the current JSON Web Key Set, already encoded.
type jwksSource interface {
	JWKS() (body []byte, etag string)
}

// JWKS serves the public signing keys. The bytes are encoded by the key manager when keys change, never per request.
type JWKS struct {
	Keys jwksSource
	// MaxAge is how long verifiers may cache the set (Cache-Control max-age). The key manager publishes a new key
	// for longer than this before signing with it, so a cached copy never lacks the key a token names.
	// Zero means 5 minutes.
	MaxAge time.Duration
}

const defaultJWKSMaxAge = 5 * time.Minute

func (h *JWKS) Mount(r *mux.Router) {
	r.Handle(provider.PathJWKS, h).Methods(http.MethodGet, http.MethodHead)
}

func (h *JWKS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, etag := h.Keys.JWKS()
	allowAnyOrigin(w)
	maxAge := h.MaxAge
	if maxAge <= 0 {
		maxAge = defaultJWKSMaxAge
	}
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
	w.Header().Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && match == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}
