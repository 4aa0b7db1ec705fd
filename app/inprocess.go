package app

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/telemetry"
)

// Server is one Latchkey opened in-process from the flags and LATCHKEY_* settings `latchkey serve` reads: what
// the end-to-end tests (package e2e) drive through the real router.
type Server struct{ a *app }

// Open loads the configuration from args and getenv as `latchkey serve` does and opens the database (migrating
// unless told not to), the signing keys and the provider; the log goes to logOut at the configured level. The
// caller closes the Server.
func Open(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer) (*Server, error) {
	fs, cf := (&cli{stderr: io.Discard, env: getenv}).newFlagSet("serve")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	cfg, err := cf.load()
	if err != nil {
		return nil, err
	}
	a, err := openApp(ctx, cfg, newLogger(cfg, logOut))
	if err != nil {
		return nil, err
	}
	return &Server{a: a}, nil
}

// Handler is the whole HTTP surface, every middleware included.
func (s *Server) Handler() http.Handler { return s.a.handler() }

// Routes lists every route the server mounts as "METHOD /path/template", sorted: what a test holds documentation
// (the admin API's OpenAPI document) to.
func (s *Server) Routes() []string {
	r := mux.NewRouter()
	handlers.Mount(r, s.a.families()...)
	var out []string
	_ = r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, errT := route.GetPathTemplate()
		methods, errM := route.GetMethods()
		if errT != nil || errM != nil {
			return nil // a subrouter's prefix, or a route for every method: nothing to document per method
		}
		for _, m := range methods {
			out = append(out, m+" "+tpl)
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// Serve serves on ln, with the key reloads and cleanup `latchkey serve` runs, until ctx ends; then it shuts down
// gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error { return s.a.serve(ctx, ln) }

// Close closes the database.
func (s *Server) Close() error { return s.a.Close() }

// SetThrottleClock sets the sign-in throttle's clock (nil: time.Now). Call it before Handler or Serve.
func (s *Server) SetThrottleClock(now func() time.Time) { s.a.throttleNow = now }

// Store is the server's store, for reading what no HTTP surface shows.
func (s *Server) Store() *models.Store { return s.a.store }

// Metrics is the server's Prometheus registry and counters, for reading them without a metrics listener.
func (s *Server) Metrics() *telemetry.Metrics { return s.a.metrics }

// Keys is the server's key manager, for reloading the keys now rather than on the timer.
func (s *Server) Keys() *keys.Manager { return s.a.keys }

// CleanupOnce deletes every row that expired before now, as the periodic cleanup does, and returns how many.
func (s *Server) CleanupOnce(ctx context.Context, now time.Time) int64 {
	return s.a.cleanupOnce(ctx, now)
}
