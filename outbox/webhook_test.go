package outbox_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/outbox"
)

// readmeSnippet is the fenced block of lang in the README's Webhooks section.
func readmeSnippet(t *testing.T, lang string) string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Webhooks\n")
	if !ok {
		t.Fatal("README has no Webhooks section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```"+lang+"\n")
	if !ok {
		t.Fatalf("README's Webhooks section has no %s block", lang)
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// The verification code the README gives receivers, run as written, accepts what the sender signs and refuses
// a changed body, another secret and an old timestamp.
func TestWebhookSignatureREADMESnippets(t *testing.T) {
	secret, body := "whsec_test-secret", []byte(`{"id":"evt_x","type":"user.created","data":{"name":"Zoë"}}`)
	cases := []struct {
		name, secret, body string
		at                 time.Time
		want               bool
	}{
		{"as signed", secret, string(body), time.Now(), true},
		{"body changed", secret, strings.Replace(string(body), "Zoë", "Zoe", 1), time.Now(), false},
		{"another secret", "whsec_other", string(body), time.Now(), false},
		{"ten minutes old", secret, string(body), time.Now().Add(-10 * time.Minute), false},
	}
	dir := t.TempDir()
	t.Run("node", func(t *testing.T) {
		node, err := exec.LookPath("node")
		if err != nil {
			t.Skip("node not installed")
		}
		script := readmeSnippet(t, "js") + `
const [secret, header, body, want] = process.argv.slice(2);
if (String(verify(secret, header, Buffer.from(body))) !== want) { console.error("verify gave the wrong answer"); process.exit(1); }
`
		path := filepath.Join(dir, "verify.js")
		if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			header := outbox.WebhookSignature([]byte(secret), c.at, body)
			out, err := exec.Command(node, path, c.secret, header, c.body, boolString(c.want)).CombinedOutput()
			if err != nil {
				t.Errorf("%s: %v\n%s", c.name, err, out)
			}
		}
	})
	t.Run("go", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds a program")
		}
		prog := `package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

` + readmeSnippet(t, "go") + `
func main() {
	if strconv.FormatBool(verify(os.Args[1], os.Args[2], []byte(os.Args[3]))) != os.Args[4] {
		os.Exit(1)
	}
}
`
		path := filepath.Join(dir, "verify.go")
		if err := os.WriteFile(path, []byte(prog), 0o600); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "verify")
		if out, err := exec.Command("go", "build", "-o", bin, path).CombinedOutput(); err != nil {
			t.Fatalf("the README's Go snippet does not build: %v\n%s", err, out)
		}
		for _, c := range cases {
			header := outbox.WebhookSignature([]byte(secret), c.at, body)
			if out, err := exec.Command(bin, c.secret, header, c.body, boolString(c.want)).CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", c.name, err, out)
			}
		}
	})
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
