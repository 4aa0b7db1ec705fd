package handlers

import (
	"net/http"
	"strconv"

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
}

// jwksMaxAge is short so verifiers see a rotated-in key within minutes; they refetch on an unknown kid anyway.
const jwksMaxAge = 300

func (h *JWKS) Mount(r *mux.Router) {
	r.Handle(provider.PathJWKS, h).Methods(http.MethodGet, http.MethodHead)
}

func (h *JWKS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, etag := h.Keys.JWKS()
	allowAnyOrigin(w)
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(jwksMaxAge))
	w.Header().Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && match == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}
