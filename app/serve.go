package app

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey/logwriter"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/telemetry"
)

// newFlagSet returns a flag set carrying every configuration flag.
func (c *cli) newFlagSet(name string) (*flag.FlagSet, *configFlags) {
	fs := flag.NewFlagSet("latchkey "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	cf := registerConfigFlags(fs, c.env)
	fs.Usage = func() { printUsage(fs) }
	return fs, cf
}

// printUsage is a command's --help: its own flags first, then, apart, the server settings every command reads
// (to find the database and the secret).
func printUsage(fs *flag.FlagSet) {
	server := map[string]bool{}
	for _, s := range settings {
		server[s.flag] = true
	}
	var own, shared []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if server[f.Name] {
			shared = append(shared, f)
		} else {
			own = append(own, f)
		}
	})
	w := fs.Output()
	fmt.Fprintf(w, "usage: %s [flags]\n", fs.Name())
	if len(own) > 0 {
		fmt.Fprintln(w, "\nflags:")
		printFlags(w, own)
	}
	fmt.Fprintln(w, "\nserver settings (each also read from the environment variable it names):")
	printFlags(w, shared)
}

func printFlags(w io.Writer, flags []*flag.Flag) {
	for _, f := range flags {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	}
}

// openFromFlags loads configuration and opens the app; the logger writes to stderr.
func (c *cli) openFromFlags(ctx context.Context, cf *configFlags) (*app, error) {
	cfg, err := cf.load()
	if err != nil {
		return nil, err
	}
	return openApp(ctx, cfg, newLogger(cfg, c.stderr))
}

func runServe(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("serve")
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	// The server logs through a buffered writer: a request never waits for stderr (one access-log line each).
	// Closing it, after everything else has stopped, writes what is still buffered.
	out, logger := newServeLogger(cfg, c.stderr)
	defer out.Close()
	tracing, err := telemetry.StartTracing(ctx, c.env, version)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			logger.Warn("traces not exported at shutdown", "err", err)
		}
	}()
	a, err := openApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	a.tracing = tracing
	a.metrics.WatchLogDrops(out.Dropped)
	if tracing.Enabled() {
		logger.Info("exporting traces over OTLP/HTTP (OTEL_EXPORTER_OTLP_*)")
	}

	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (LATCHKEY_ADDR): %w", a.cfg.Addr, err)
	}
	percent, limit := gcSettings(c.env, models.PasswordHashingBytes(), containerMemoryBytes())
	applyGCSettings(a.logger, percent, limit)
	_, onTerminal := terminal(c.stderr)
	a.firstStartHint(ctx, out, onTerminal)
	return a.serve(ctx, ln)
}

// newServeLogger is the server's logger: records go through a logwriter.Writer over w, and records it had to
// drop because w could not keep up are reported through the same logger once w catches up.
func newServeLogger(cfg Config, w io.Writer) (*logwriter.Writer, *slog.Logger) {
	var logger *slog.Logger
	out := logwriter.New(w, logwriter.Options{OnDrop: func(n uint64) {
		logger.Warn("log output could not keep up: records dropped", "records", n)
	}})
	logger = newLogger(cfg, out) // before any record is written, so before OnDrop can run
	return out, logger
}

// privateListeners starts the operator-only listeners: LATCHKEY_DEBUG_ADDR (pprof, and /metrics) and
// LATCHKEY_METRICS_ADDR (/metrics only). Neither is ever served on the public listener. The returned function
// closes them.
func (a *app) privateListeners() (func(), error) {
	var servers []*http.Server
	closeAll := func() {
		for _, s := range servers {
			s.Close()
		}
	}
	for _, l := range []struct {
		addr, setting, what string
		handler             http.Handler
	}{
		{a.cfg.DebugAddr, "LATCHKEY_DEBUG_ADDR", "profiling and metrics endpoints listening", debugHandler(a.metrics.Handler())},
		{a.cfg.MetricsAddr, "LATCHKEY_METRICS_ADDR", "metrics endpoint listening", metricsHandler(a.metrics.Handler())},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen on %s (%s): %w", l.addr, l.setting, err)
		}
		srv := &http.Server{Handler: l.handler, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(ln) }()
		a.logger.Info(l.what, "addr", ln.Addr().String())
	}
	return closeAll, nil
}

// serve runs the HTTP server and background work until ctx ends, then shuts down gracefully.
func (a *app) serve(ctx context.Context, ln net.Listener) error {
	closePrivate, err := a.privateListeners()
	if err != nil {
		ln.Close()
		return err
	}
	defer closePrivate()
	srv := &http.Server{
		// Tracing wraps the whole router only when trace export is configured: idle, otelhttp would cost more
		// than the router itself (docs/PERFORMANCE.md).
		Handler:           a.tracing.Wrap(a.handler()),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          nil,
	}
	bg, cancelBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.keys.Run(bg) })
	wg.Go(func() { a.runCleanup(bg) })
	wg.Go(func() { a.outboxWorker().Run(bg) })

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.logger.Info("latchkey listening", "addr", ln.Addr().String(), "issuer", a.cfg.Issuer, "version", version)

	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		a.logger.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		serveErr = srv.Shutdown(sctx)
		cancel()
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) && serveErr == nil {
			serveErr = err
		}
	}
	cancelBG()
	wg.Wait()
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	a.logger.Info("stopped")
	return nil
}

func runMigrate(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("migrate")
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	cfg.AutoMigrate = true
	a, err := openApp(ctx, cfg, newLogger(cfg, c.stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	v, err := a.store.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "database at schema version %d\n", v)
	return nil
}

// parseArgs parses flags that may come before or after positional arguments (`pools create customers --signup`),
// which the flag package alone stops at. The positionals are left in a fresh flag set's Args via Parse.
//
// A mistake prints one line and a hint, not the whole usage; --help prints the usage.
func parseArgs(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	defer fs.SetOutput(out)
	var positional []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			_, _ = buf.WriteTo(out)
			return err
		} else if err != nil {
			fmt.Fprintf(out, "%s: %v\nrun '%s --help' for its flags\n", fs.Name(), err, fs.Name())
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			positional = append(positional, rest[1:]...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Re-parse only the positionals so fs.Args()/NArg() report them.
	return fs.Parse(append([]string{"--"}, positional...))
}

// withApp is the shape of every management command: parse the flags, open the app from the configuration
// flags, run fn, close the app.
func (c *cli) withApp(ctx context.Context, fs *flag.FlagSet, cf *configFlags, args []string, fn func(a *app) error) error {
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	a, err := c.openFromFlags(ctx, cf)
	if err != nil {
		return err
	}
	defer a.Close()
	return fn(a)
}
