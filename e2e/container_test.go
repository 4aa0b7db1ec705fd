package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"
)

// The container image runs: built from ../Dockerfile, started with a named volume on its data directory, it turns
// healthy by its own HEALTHCHECK (latchkey healthcheck), serves discovery, takes a client registered with the
// binary inside it, and keeps that client, its keys and the generated secret across a restart and in a new
// container on the same volume. Then docker-compose.yml with PostgreSQL, where Compose and the images are at hand.
//
// Without a Docker daemon it skips, saying why; LATCHKEY_REQUIRE_DOCKER=1 makes that a failure. The outcome is
// also written to LATCHKEY_CONTAINER_TEST_REPORT when set, for .ci/run to print.
func TestContainerImage(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: skipping the container image test")
	}
	if why := dockerUnavailable(t); why != "" {
		skipContainer(t, why)
	}
	tag := "latchkey-e2e:" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", tag, "..").CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	if user := docker(t, "image", "inspect", "-f", "{{.Config.User}} {{json .Config.Volumes}} {{json .Config.Healthcheck.Test}}", tag); !strings.HasPrefix(user, "65532") ||
		!strings.Contains(user, `"/var/lib/latchkey"`) || !strings.Contains(user, "healthcheck") {
		t.Errorf("image user, volumes, health check: %s; want the non-root user, a volume on /var/lib/latchkey, latchkey healthcheck", user)
	}

	volume := "latchkey-e2e-" + randomHex(6)
	docker(t, "volume", "create", volume)
	t.Cleanup(func() { _ = exec.Command("docker", "volume", "rm", "-f", volume).Run() })
	addr := freePort(t)
	issuer := "http://" + addr
	run := func(name string) {
		t.Helper()
		docker(t, "run", "-d", "--name", name, "-p", addr+":8080", "-e", "LATCHKEY_ISSUER="+issuer,
			"--health-interval", "1s", "-v", volume+":/var/lib/latchkey", tag)
		t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
		waitHealthy(t, name)
	}

	first := "latchkey-e2e-" + randomHex(6)
	run(first)
	if code, _, body := get(t, issuer+"/.well-known/openid-configuration"); code != 200 || mustJSON(t, body)["issuer"] != issuer {
		t.Fatalf("discovery: %d %s", code, body)
	}
	if logs := docker(t, "logs", first); !strings.Contains(logs, firstStartMsg) || !strings.Contains(logs, "/var/lib/latchkey/latchkey.db.secret") {
		t.Errorf("the first start does not say where the database and secret are:\n%s", logs)
	}
	client := decodeJSON[createdClient](t, docker(t, "exec", first, "latchkey", "clients", "create", "--id", "billing", "--scopes", "read", "--json"))
	token := func(when string) {
		t.Helper()
		cc := clientcredentials.Config{ClientID: client.ClientID, ClientSecret: client.ClientSecret, TokenURL: issuer + "/oauth2/token", Scopes: []string{"read"}}
		if _, err := cc.Token(context.Background()); err != nil {
			t.Fatalf("%s: client credentials grant: %v", when, err)
		}
	}
	token("first start")

	docker(t, "restart", first)
	waitHealthy(t, first)
	token("after a restart")

	docker(t, "rm", "-f", first)
	second := "latchkey-e2e-" + randomHex(6)
	run(second)
	token("in a new container on the same volume")
	if logs := docker(t, "logs", second); strings.Contains(logs, firstStartMsg) || strings.Contains(logs, "generated a system secret") {
		t.Errorf("a new container on the volume started afresh:\n%s", logs)
	}

	t.Run("compose with PostgreSQL", func(t *testing.T) { testCompose(t, ctx) })
	reportContainer(t, "ran: image built, healthy by its HEALTHCHECK, discovery served, data kept on the volume across a restart and a new container")
}

// testCompose brings docker-compose.yml up (Latchkey + PostgreSQL, each with its health check, Latchkey
// waiting for PostgreSQL to be healthy), registers a client inside it and gets a token, restarts Latchkey and
// gets one again.
func testCompose(t *testing.T, ctx context.Context) {
	compose := []string{"docker", "compose"}
	if exec.Command("docker", "compose", "version").Run() != nil {
		if _, err := exec.LookPath("docker-compose"); err != nil {
			t.Skip("neither `docker compose` nor docker-compose is installed")
		}
		compose = []string{"docker-compose"}
	}
	if out, err := exec.CommandContext(ctx, "docker", "pull", "postgres:16").CombinedOutput(); err != nil {
		if exec.Command("docker", "image", "inspect", "postgres:16").Run() != nil {
			t.Skipf("postgres:16 cannot be pulled here: %s", strings.TrimSpace(string(out)))
		}
	}
	addr := freePort(t)
	_, port, _ := strings.Cut(addr, ":")
	project := "lke2e" + randomHex(4)
	composeCmd := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, compose[0], append(append(compose[1:], "-p", project, "-f", "../docker-compose.yml"), args...)...)
		cmd.Env = append(os.Environ(), "LATCHKEY_SECRET=compose-test-secret-0123456789abcdefghij", "LATCHKEY_PORT="+port,
			"LATCHKEY_ISSUER=http://127.0.0.1:"+port)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { _, _ = composeCmd("down", "-v", "--rmi", "local") })
	if out, err := composeCmd("up", "-d", "--build"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	waitHealthy(t, project+"-latchkey-1", project+"_latchkey_1")
	out, err := composeCmd("exec", "-T", "latchkey", "latchkey", "clients", "create", "--id", "billing", "--scopes", "read", "--json")
	if err != nil {
		t.Fatalf("clients create in compose: %v\n%s", err, out)
	}
	client := decodeJSON[createdClient](t, out[strings.Index(out, "{"):])
	token := func(when string) {
		t.Helper()
		cc := clientcredentials.Config{ClientID: client.ClientID, ClientSecret: client.ClientSecret,
			TokenURL: "http://127.0.0.1:" + port + "/oauth2/token", Scopes: []string{"read"}}
		if _, err := cc.Token(context.Background()); err != nil {
			t.Fatalf("%s: client credentials grant: %v", when, err)
		}
	}
	token("compose up")
	if out, err := composeCmd("restart", "latchkey"); err != nil {
		t.Fatalf("compose restart: %v\n%s", err, out)
	}
	waitHealthy(t, project+"-latchkey-1", project+"_latchkey_1")
	token("after restarting latchkey")
}

// dockerUnavailable says why no image can be built and run here, or "" when one can.
func dockerUnavailable(t *testing.T) string {
	if _, err := exec.LookPath("docker"); err != nil {
		return "no docker command"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return "no Docker daemon reachable (" + firstLine(string(out)) + ")"
	}
	for _, image := range dockerfileBases(t) {
		if exec.Command("docker", "image", "inspect", image).Run() == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		out, err := exec.CommandContext(ctx, "docker", "pull", image).CombinedOutput()
		cancel()
		if err != nil {
			return "base image " + image + " cannot be pulled (" + firstLine(string(out)) + ")"
		}
	}
	return ""
}

// dockerfileBases are the images ../Dockerfile builds FROM.
func dockerfileBases(t *testing.T) []string {
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var images []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && strings.EqualFold(fields[0], "FROM") {
			images = append(images, fields[1])
		}
	}
	return images
}

func skipContainer(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("LATCHKEY_REQUIRE_DOCKER") == "1" {
		t.Fatalf("LATCHKEY_REQUIRE_DOCKER=1 but the container test cannot run: %s", why)
	}
	reportContainer(t, "skipped: "+why)
	t.Skip("container image test: " + why)
}

// reportContainer writes the outcome where .ci/run reads it.
func reportContainer(t *testing.T, outcome string) {
	if path := os.Getenv("LATCHKEY_CONTAINER_TEST_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte("container test "+outcome+"\n"), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// docker runs a docker command and returns its standard output; it fails the test on an error.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if args[0] == "logs" {
		return string(out) + stderr.String() // the server logs to stderr
	}
	return strings.TrimSpace(string(out))
}

// waitHealthy waits until the container (the first of names that exists) is healthy by its health check.
func waitHealthy(t *testing.T, names ...string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		for _, name := range names {
			out, err := exec.Command("docker", "inspect", "-f", "{{.State.Status}} {{.State.Health.Status}}", name).Output()
			if err != nil {
				continue
			}
			last = strings.TrimSpace(string(out))
			switch {
			case last == "running healthy":
				// A restarted container may show its last health until the first new check: ask the server too.
				for time.Now().Before(deadline) {
					if resp, err := http.Get("http://" + hostPort(t, name) + "/readyz"); err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							return
						}
					}
					time.Sleep(200 * time.Millisecond)
				}
			case strings.HasPrefix(last, "exited"), strings.HasSuffix(last, "unhealthy"):
				logs, _ := exec.Command("docker", "logs", name).CombinedOutput()
				t.Fatalf("container %s: %s\n%s", name, last, logs)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("container %v not healthy after 2 minutes (last: %q)", names, last)
}

// hostPort is where the container's port 8080 is published on this host.
func hostPort(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("docker", "port", name, "8080/tcp").Output()
	if err != nil {
		t.Fatalf("docker port %s: %v", name, err)
	}
	return strings.Replace(firstLine(string(out)), "0.0.0.0:", "127.0.0.1:", 1)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
