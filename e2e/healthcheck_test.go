package e2e

import (
	"strings"
	"testing"
)

// latchkey healthcheck, the container's health check: 0 when the server answers 200 on /healthz, 1 when nothing
// answers or the answer is not 200, within its timeout.
func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	srv := env.startServer(t)
	closed := "http://" + freePort(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"a running server", []string{"--url", srv.URL + "/healthz"}, 0, "healthy"},
		{"a path that is not 200", []string{"--url", srv.URL + "/nowhere"}, 1, "404"},
		{"nothing listening", []string{"--url", closed + "/healthz", "--timeout", "2s"}, 1, "unhealthy"},
		{"the address from LATCHKEY_ADDR", nil, 0, "healthy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testEnv{"LATCHKEY_ADDR": strings.TrimPrefix(srv.URL, "http://")}
			out, errOut, code := e.cliCode(t, "", append([]string{"healthcheck"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out+errOut, tc.msg) {
				t.Errorf("exit %d, output %q; want %d and %q", code, out+errOut, tc.code, tc.msg)
			}
		})
	}
}
