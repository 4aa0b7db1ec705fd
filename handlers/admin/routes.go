package admin

import (
	_ "embed"
	"net/http"

	"github.com/gorilla/mux"
)

// OpenAPI is the admin API's OpenAPI 3.1 document, served as it is at Prefix+"/openapi.json". openapi_test.go
// holds it to the routes mounted: every route documented, every documented route mounted, every example valid.
//
//go:embed openapi.json
var OpenAPI []byte

// mountMore adds the routes beyond the first users routes (Mount): clients, the rest of users, pools, keys and
// the document itself.
func (h *API) mountMore(s *mux.Router) {
	s.Handle("/openapi.json", http.HandlerFunc(serveOpenAPI)).Methods(http.MethodGet)
	s.Handle("/clients", handler(h.listClients)).Methods(http.MethodGet)
	s.Handle("/clients", handler(h.createClient)).Methods(http.MethodPost)
	s.Handle("/clients/{id}", handler(h.getClient)).Methods(http.MethodGet)
	s.Handle("/clients/{id}", handler(h.patchClient)).Methods(http.MethodPatch)
	s.Handle("/clients/{id}", handler(h.deleteClient)).Methods(http.MethodDelete)
	s.Handle("/clients/{id}/secret", handler(h.rotateSecret)).Methods(http.MethodPost)
	s.Handle("/users", handler(h.createUser)).Methods(http.MethodPost)
	s.Handle("/users/{id}", handler(h.deleteUser)).Methods(http.MethodDelete)
	s.Handle("/users/{id}/password", handler(h.setPassword)).Methods(http.MethodPut)
	s.Handle("/users/{id}/factors", handler(h.factors)).Methods(http.MethodGet)
	s.Handle("/users/{id}/sessions", handler(h.endSessions)).Methods(http.MethodDelete)
	s.Handle("/pools", handler(h.listPools)).Methods(http.MethodGet)
	s.Handle("/pools", handler(h.createPool)).Methods(http.MethodPost)
	s.Handle("/pools/{name}", handler(h.getPool)).Methods(http.MethodGet)
	s.Handle("/pools/{name}", handler(h.patchPool)).Methods(http.MethodPatch)
	s.Handle("/keys", handler(h.listKeys)).Methods(http.MethodGet)
	s.Handle("/keys/rotation", handler(h.rotateKeys)).Methods(http.MethodPost)
}

// serveOpenAPI serves the document to anyone: it describes the API, and holds nothing an admin token guards.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(OpenAPI)
}
