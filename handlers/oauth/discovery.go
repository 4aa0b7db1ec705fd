package oauth

import (
	"encoding/json"
	"net/http"
	"strconv"

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
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allowAnyOrigin(w)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", cacheControl)
		h.Set("Content-Length", length) // one write, no chunked encoding
		_, _ = w.Write(body)
	})
}

// allowAnyOrigin marks public documents (discovery, JWKS) as readable from any web origin.
func allowAnyOrigin(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
}
