package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"
)

type pinger interface {
	Ping(ctx context.Context) error
}

// Health serves /healthz (the process answers) and /readyz (the database answers too).
type Health struct {
	DB pinger
}

func (h *Health) Mount(r *mux.Router) {
	r.HandleFunc("/healthz", h.live).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", h.ready).Methods(http.MethodGet, http.MethodHead)
}

func (h *Health) live(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

func (h *Health) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	if err := h.DB.Ping(ctx); err != nil {
		Logger(ctx).Error("readiness check failed", "error", err)
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "Database unreachable.")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
}
