package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"
)

// buildBinary compiles ../cmd/latchkey into dir, the way it ships.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the tests that build and run the real latchkey binary")
	}
	bin := filepath.Join(t.TempDir(), "latchkey")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/latchkey")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// processEnv is the environment of a child latchkey: ours without any LATCHKEY_* variable, plus settings.
func processEnv(settings map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCHKEY_") {
			env = append(env, kv)
		}
	}
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	return env
}

// freePort finds a loopback port free for a child process to listen on. It looks below Linux's default ephemeral
// range (32768-60999): a port from that range, once closed, can be handed to any parallel test's outgoing
// connection or listener on ":0" before the child binds it.
func freePort(t *testing.T) string {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+mrand.IntN(12000)))
		if err == nil {
			addr := ln.Addr().String()
			ln.Close()
			return addr
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestBinary(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)

	runBin := func(t *testing.T, settings map[string]string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = processEnv(settings)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run latchkey %s: %v", strings.Join(args, " "), err)
		}
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}

	t.Run("exit codes", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			env  map[string]string
			code int
			out  string
		}{
			{[]string{"version"}, nil, 0, "latchkey dev\n"},
			{[]string{"frobnicate"}, nil, 2, ""},
			{[]string{"clients"}, nil, 2, ""},
			{[]string{"migrate"}, map[string]string{"LATCHKEY_ISSUER": "nope", "LATCHKEY_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "x.db")}, 1, ""},
		} {
			out, errOut, code := runBin(t, tc.env, tc.args...)
			if code != tc.code || out != tc.out {
				t.Errorf("latchkey %v: exit %d stdout %q, want %d %q\nstderr: %s", tc.args, code, out, tc.code, tc.out, errOut)
			}
		}
	})

	for _, db := range databases() {
		t.Run(db.name, func(t *testing.T) {
			addr, debugAddr := freePort(t), freePort(t)
			issuer := "http://" + addr
			const systemSecret = "binary-test-system-secret-0123456789-abcdef"
			settings := map[string]string{
				"LATCHKEY_DATABASE_URL":     db.url(t),
				"LATCHKEY_SECRET":           systemSecret,
				"LATCHKEY_ADDR":             addr,
				"LATCHKEY_ISSUER":           issuer,
				"LATCHKEY_LOG_LEVEL":        "info",
				"LATCHKEY_LOG_FORMAT":       "json",
				"LATCHKEY_CLEANUP_INTERVAL": "0",
				"LATCHKEY_DEBUG_ADDR":       debugAddr,
			}

			create := func(args ...string) createdClient {
				t.Helper()
				out, errOut, code := runBin(t, settings, append([]string{"clients", "create"}, args...)...)
				if code != 0 {
					t.Fatalf("clients create: exit %d\n%s", code, errOut)
				}
				return decodeJSON[createdClient](t, out)
			}
			billing := create("--name", "billing-svc", "--grant-types", "client_credentials", "--scopes", "read write", "--json")
			rs := create("--name", "resource-server", "--json")
			if billing.ClientSecret == "" || rs.ClientSecret == "" {
				t.Fatalf("clients without secrets: %+v %+v", billing, rs)
			}

			serve := exec.Command(bin, "serve")
			serve.Env = processEnv(settings)
			var stdout, stderr bytes.Buffer
			serve.Stdout, serve.Stderr = &stdout, &stderr
			if err := serve.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- serve.Wait() }()
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					_ = serve.Process.Kill()
					<-exited
				}
			})

			// Wait for readiness, polling; give up when the process dies or the deadline passes.
			deadline := time.Now().Add(30 * time.Second)
			for {
				resp, err := http.Get(issuer + "/readyz")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
				select {
				case err := <-exited:
					stopped = true
					t.Fatalf("latchkey serve exited before it was ready: %v\nstderr:\n%s", err, stderr.String())
				case <-time.After(25 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("latchkey serve not ready after 30s\nstderr:\n%s", stderr.String())
				}
			}

			// Profiles are served on the debug listener only, never on the public one.
			for _, probe := range []struct {
				url  string
				want int
			}{{"http://" + debugAddr + "/debug/pprof/", http.StatusOK}, {issuer + "/debug/pprof/", http.StatusNotFound}} {
				resp, err := http.Get(probe.url)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != probe.want {
					t.Errorf("GET %s: %d, want %d", probe.url, resp.StatusCode, probe.want)
				}
			}

			ctx := context.Background()
			cc := clientcredentials.Config{ClientID: billing.ClientID, ClientSecret: billing.ClientSecret,
				TokenURL: issuer + "/oauth2/token", Scopes: []string{"read", "write"}}
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatalf("client credentials grant: %v", err)
			}
			if !strings.HasPrefix(tok.AccessToken, "lk_at_") {
				t.Errorf("access token %q lacks the lk_at_ prefix", tok.AccessToken)
			}

			introspect := func() map[string]any {
				t.Helper()
				code, _, in := postForm(t, issuer+"/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, rs.ClientID, rs.ClientSecret)
				if code != http.StatusOK {
					t.Fatalf("introspect: %d %v", code, in)
				}
				return in
			}
			if in := introspect(); in["active"] != true || in["client_id"] != billing.ClientID || in["scope"] != "read write" {
				t.Errorf("introspection = %v", in)
			}
			if code, _, body := postForm(t, issuer+"/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, billing.ClientID, billing.ClientSecret); code != http.StatusOK {
				t.Fatalf("revoke: %d %v", code, body)
			}
			if in := introspect(); in["active"] != false {
				t.Errorf("revoked token introspects as %v", in)
			}

			if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				stopped = true
				if err != nil {
					t.Errorf("latchkey serve after SIGTERM: %v, want exit 0\nstderr:\n%s", err, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("latchkey serve did not exit within 10s of SIGTERM\nstderr:\n%s", stderr.String())
			}

			logs := stderr.String()
			var requests int
			var msgs []string
			for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Errorf("log line is not JSON: %q", line)
					continue
				}
				msg, _ := rec["msg"].(string)
				msgs = append(msgs, msg)
				if msg == "http request" {
					requests++
					if rec["request_id"] == nil || rec["path"] == nil || rec["status"] == nil {
						t.Errorf("access log line lacks request_id/path/status: %s", line)
					}
				}
			}
			if requests < 4 {
				t.Errorf("%d \"http request\" log lines, want one per request (at least 4)", requests)
			}
			for _, m := range []string{"latchkey listening", "shutting down", "stopped"} {
				if !strings.Contains(strings.Join(msgs, "\n"), m) {
					t.Errorf("no %q log line", m)
				}
			}
			for name, secret := range map[string]string{
				"billing client secret": billing.ClientSecret, "resource server secret": rs.ClientSecret,
				"access token": tok.AccessToken, "access token body": strings.TrimPrefix(tok.AccessToken, "lk_at_"),
				"system secret": systemSecret,
			} {
				if strings.Contains(logs+stdout.String(), secret) {
					t.Errorf("the %s appears in the process output", name)
				}
			}
		})
	}
}
