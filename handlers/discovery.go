package handlers

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/provider"
)

// Discovery serves the OpenID Connect discovery document and its RFC 8414 twin, encoded once at start.
type Discovery struct {
	Metadata provider.Metadata
}

func (h *Discovery) Mount(r *mux.Router) {
	body, err := json.Marshal(h.Metadata)
	if err != nil {
		panic("encode discovery metadata: " + err.Error()) // a programming error, caught by every test
	}
	serve := staticJSON(body, "public, max-age=3600")
	r.Handle(provider.PathOpenIDConfig, serve).Methods(http.MethodGet, http.MethodHead)
	r.Handle(provider.PathOAuthServerMeta, serve).Methods(http.MethodGet, http.MethodHead)
}

// staticJSON serves fixed bytes to any origin.
func staticJSON(body []byte, cacheControl string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allowAnyOrigin(w)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", cacheControl)
		_, _ = w.Write(body)
	})
}
