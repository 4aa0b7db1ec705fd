// Package request is what every handler knows about the request it serves: its id and the logger carrying it
// (one access line each), the client's address behind trusted proxies, the device it comes from, and whether its
// web origin may call us (CORS). It hands the id, address and user agent on to the audit log (package reqmeta).
// It writes no response bodies of its own and imports nothing of ours but faults and reqmeta.
package request

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey/faults"
	"github.com/latchkey/latchkey/reqmeta"
)

type ctxKey int

const requestKey ctxKey = iota

// requestInfo is what Track attaches to a request. The logger carrying the request id is built on
// first use: most requests never log beyond the access line, and slog's With encodes its attributes eagerly.
type requestInfo struct {
	id       string
	base     *slog.Logger
	logger   *slog.Logger
	proxies  TrustedProxies
	clientIP string // resolved on first use by ClientIP
	req      *http.Request
}

// RequestMeta is what the request's audit events record (package reqmeta), resolved on first use.
func (info *requestInfo) RequestMeta() reqmeta.Meta {
	return reqmeta.Meta{RequestID: info.id, IP: info.client(info.req), UserAgent: info.req.UserAgent()}
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

// Track gives each request an id (echoed in X-Request-Id), a logger carrying it, and one access log
// line. The log has the path but never the query string or body: those carry codes, tokens and secrets.
func Track(base *slog.Logger, proxies TrustedProxies, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{id: newRequestID(), base: base, proxies: proxies, req: r}
		w.Header()["X-Request-Id"] = []string{info.id}
		rec := &statusRecorder{ResponseWriter: w}
		ctx := reqmeta.Attach(faults.WithRecorder(context.WithValue(r.Context(), requestKey, info)), info)
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

// Detached is r on a context the client cannot cancel. The calls that take a password use it from the start:
// once sent, an attempt runs to its end, so whether a guess was checked and counted never depends on when the
// client hung up.
func Detached(r *http.Request) *http.Request {
	return r.WithContext(context.WithoutCancel(r.Context()))
}
