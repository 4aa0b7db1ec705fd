package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"
)

// runHealthcheck asks a running server's /healthz and succeeds when it answers 200. It is the container image's
// HEALTHCHECK: the distroless image has no shell and no curl, only this binary.
func runHealthcheck(ctx context.Context, c *cli, args []string) error {
	fs := flag.NewFlagSet("latchkey healthcheck", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	target := fs.String("url", "", "the URL to ask (default: /healthz at LATCHKEY_ADDR on this host's loopback)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: latchkey healthcheck [flags]\n\nExits 0 when the server answers 200, 1 otherwise.\n\nflags:")
		var all []*flag.Flag
		fs.VisitAll(func(f *flag.Flag) { all = append(all, f) })
		printFlags(fs.Output(), all)
	}
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	u := *target
	if u == "" {
		var err error
		if u, err = localHealthURL(c.env("LATCHKEY_ADDR")); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: %s answered %s", u, resp.Status)
	}
	fmt.Fprintf(c.stdout, "healthy: %s answered %s\n", u, resp.Status)
	return nil
}

// localHealthURL is /healthz at the address the server listens on (LATCHKEY_ADDR, default :8080), reached over
// loopback when it listens on every interface.
func localHealthURL(addr string) (string, error) {
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", errors.New("LATCHKEY_ADDR is not host:port; give --url")
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
