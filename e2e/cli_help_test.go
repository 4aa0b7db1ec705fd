package e2e

import (
	"strings"
	"testing"
)

// The CLI reads well: a mistake is one line and a hint, --help puts the command's own flags first and the server
// settings apart, and a client needs no --name when it has an --id.
func TestCLIHelpAndErrors(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))

	out, stderr, code := env.cliCode(t, "", "clients", "create", "--nmae", "x")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != 2 || len(lines) != 2 || !strings.Contains(lines[0], "flag provided but not defined: -nmae") ||
		lines[1] != "run 'latchkey clients create --help' for its flags" || out != "" {
		t.Errorf("a mistyped flag: exit %d, stdout %q, stderr:\n%s\nwant exit 2, the error and the hint on two lines", code, out, stderr)
	}

	_, help, code := env.cliCode(t, "", "clients", "create", "--help")
	own, server := strings.Index(help, "\nflags:\n"), strings.Index(help, "\nserver settings")
	if code != 2 || !strings.HasPrefix(help, "usage: latchkey clients create [flags]\n") || own < 0 || server < own {
		t.Fatalf("clients create --help: exit %d, want usage, then its flags, then the server settings:\n%s", code, help)
	}
	if name, addr := strings.Index(help, "  --name "), strings.Index(help, "  --addr "); name < own || name > server || addr < server {
		t.Errorf("--name (at %d) should be among the command's flags and --addr (at %d) among the server settings (%d)", name, addr, server)
	}
	if strings.Contains(help, "keys rotate\n") || strings.Contains(help, " -key-rotation") {
		t.Errorf("a setting's usage renders a quoted word as its value name:\n%s", help)
	}

	created := decodeJSON[createdClient](t, env.cli(t, "clients", "create", "--id", "billing", "--grant-types", "client_credentials", "--json"))
	if created.ClientID != "billing" {
		t.Fatalf("clients create --id billing without --name: %+v", created)
	}
	if got := env.cli(t, "clients", "get", "billing"); !strings.Contains(got, "billing") {
		t.Errorf("clients get billing: %s", got)
	}
}
