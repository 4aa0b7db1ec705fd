package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/logwriter"
	"github.com/latchkey/latchkey/provider"
)

// BenchmarkStaticDocumentLogging serves the JWKS and the discovery document through the real router with the
// access log off (warn), written by slog's JSON handler straight to stderr as before (info-direct), the same
// through the buffered log writer (info-buffered), and as `serve` now logs: logwriter.NewJSONHandler through the
// buffered writer (info-buffered-fast). stderr is a pipe drained by another goroutine, as under a container
// runtime or systemd. Compare the three in the same run: this machine's neighbours move the absolute figures.
//
//	go test -run '^$' -bench StaticDocumentLogging -benchtime 2s -count 3 ./app
func BenchmarkStaticDocumentLogging(b *testing.B) {
	env := map[string]string{
		"LATCHKEY_DATABASE_URL":     "sqlite://" + filepath.Join(b.TempDir(), "latchkey.db"),
		"LATCHKEY_SECRET":           "bench-system-secret-0123456789abcdef-xyz",
		"LATCHKEY_CLEANUP_INTERVAL": "0",
	}
	fs, cf := (&cli{stderr: io.Discard, env: func(k string) string { return env[k] }}).newFlagSet("serve")
	if err := fs.Parse(nil); err != nil {
		b.Fatal(err)
	}
	cfg, err := cf.load()
	if err != nil {
		b.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	drained := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, pr); close(drained) }()
	defer func() { pw.Close(); <-drained; pr.Close() }()

	for _, mode := range []string{"warn", "info-direct", "info-buffered", "info-buffered-fast"} {
		cfg := cfg
		var out io.Writer = pw
		var lw *logwriter.Writer
		switch mode {
		case "warn":
			cfg.LogLevel = "warn"
		case "info-buffered", "info-buffered-fast":
			lw = logwriter.New(pw, logwriter.Options{})
			out = lw
		}
		logger := newLogger(cfg, out) // logwriter.NewJSONHandler
		if mode == "info-direct" || mode == "info-buffered" {
			logger = slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: logLevels[cfg.LogLevel]})) // as before
		}
		a, err := openApp(context.Background(), cfg, logger)
		if err != nil {
			b.Fatal(err)
		}
		h := a.handler()
		for _, path := range []string{provider.PathJWKS, provider.PathOpenIDConfig} {
			b.Run(mode+filepath.Clean(path), func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				b.ReportAllocs()
				cpu := processCPU()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, req)
						if rec.Code != http.StatusOK {
							b.Fatalf("GET %s: %d", path, rec.Code)
						}
					}
				})
				// CPU time, not wall time, is what neighbours on a shared machine leave alone; it counts the
				// log writer's goroutine and the pipe's reader too.
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
		if lw != nil {
			lw.Close()
		}
		a.Close()
	}
}

// processCPU is this process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
