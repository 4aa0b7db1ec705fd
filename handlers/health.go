package handlers

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
)

type pinger interface {
	Ping(ctx context.Context) error
}

// Health serves /healthz (the process answers) and /readyz (the database answers too).
type Health struct {
	DB pinger
	// down is this node's last readiness answer: the cause of an outage is logged when it starts and its end
	// when it ends, not once per probe (a load balancer probes every few seconds).
	down atomic.Bool
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
		if h.down.CompareAndSwap(false, true) {
			request.Logger(ctx).Error("database unreachable: not ready until it answers", "error", err)
		}
		// Sent, not jsonapi.Write: the outage was logged once above, and a probe retries in a second.
		jsonapi.New(http.StatusServiceUnavailable, jsonapi.TemporarilyUnavailable, "Database unreachable.").WithHeader("Retry-After", "1").Send(w)
		return
	}
	if h.down.CompareAndSwap(true, false) {
		request.Logger(ctx).Info("database reachable again: ready")
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
}
