package handlers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey/faults"
	"github.com/latchkey/latchkey/templates"
)

type ctxKey int

const requestKey ctxKey = iota

// requestInfo is what withRequestContext attaches to a request. The logger carrying the request id is built on
// first use: most requests never log beyond the access line, and slog's With encodes its attributes eagerly.
type requestInfo struct {
	id       string
	base     *slog.Logger
	logger   *slog.Logger
	proxies  TrustedProxies
	clientIP string // resolved on first use by clientIP
}

// Logger returns the request-scoped logger (carrying the request id), or the default logger.
func Logger(ctx context.Context) *slog.Logger {
	info, ok := ctx.Value(requestKey).(*requestInfo)
	if !ok {
		return slog.Default()
	}
	if info.logger == nil {
		info.logger = info.base.With("request_id", info.id)
	}
	return info.logger
}

// statusRecorder remembers the status code for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// withRequestContext gives each request an id (echoed in X-Request-Id), a logger carrying it, and one access log
// line. The log has the path but never the query string or body: those carry codes, tokens and secrets.
func withRequestContext(base *slog.Logger, proxies TrustedProxies, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{id: newRequestID(), base: base, proxies: proxies}
		w.Header()["X-Request-Id"] = []string{info.id}
		rec := &statusRecorder{ResponseWriter: w}
		ctx := faults.WithRecorder(context.WithValue(r.Context(), requestKey, info))
		next.ServeHTTP(rec, r.WithContext(ctx))
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		if !base.Enabled(r.Context(), level) {
			return
		}
		base.LogAttrs(r.Context(), level, "http request",
			slog.String("request_id", info.id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
			slog.String("client_ip", info.client(r)),
		)
	})
}

// requestIDPrefix makes ids unique across processes; the counter makes them unique within one. Request ids only
// correlate log lines, so they need not be unpredictable, and a counter costs no system call per request.
var (
	requestIDPrefix = func() string {
		b := make([]byte, 9)
		_, _ = rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}()
	requestIDCounter atomic.Uint64
)

func newRequestID() string {
	return requestIDPrefix + "-" + strconv.FormatUint(requestIDCounter.Add(1), 36)
}

// recoverPanics turns a panic into a logged 500 so one bad request never takes the process down.
func recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				Logger(r.Context()).Error("panic serving request", "panic", v, "stack", string(debug.Stack()))
				writeJSONError(w, http.StatusInternalServerError, "server_error", "Internal server error.")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// logRender logs what a page render method returned: a page that could not be rendered (the renderer has already
// answered 500) at Error, a client that went away before the page was sent at Debug. Every render call site
// passes its result here: `logRender(r, h.Pages.Sessions(w, ...))`.
func logRender(r *http.Request, err error) {
	switch {
	case err == nil:
	case errors.Is(err, templates.ErrWrite):
		Logger(r.Context()).Debug("page not sent", "error", err)
	default:
		Logger(r.Context()).Error("render page", "path", r.URL.Path, "error", err)
	}
}

// limitBody caps request bodies; parsing a larger one fails and the endpoint answers invalid_request.
func limitBody(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			writeJSONError(w, http.StatusRequestEntityTooLarge, "invalid_request", "Request body too large.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// writeJSONError writes an OAuth-shaped error for responses fosite does not own.
func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

// allowAnyOrigin marks public documents (discovery, JWKS) as readable from any web origin.
func allowAnyOrigin(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
}
