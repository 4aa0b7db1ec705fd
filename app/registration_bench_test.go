package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/provider"
)

// BenchmarkDynamicRegistration is one open registration (RFC 7591) through the real router: the throttle's
// reservation for the caller's address, the validation, and the client with its origins stored in one
// transaction. Each request comes from its own address, so the throttle never refuses. SQLite, and PostgreSQL
// too with LATCHKEY_TEST_POSTGRES_URL set.
//
//	go test -run '^$' -bench DynamicRegistration -benchtime 2s ./app
func BenchmarkDynamicRegistration(b *testing.B) {
	dbs := map[string]string{"sqlite": "sqlite://" + filepath.Join(b.TempDir(), "latchkey.db")}
	if u := os.Getenv("LATCHKEY_TEST_POSTGRES_URL"); u != "" {
		dbs["postgres"] = u
	}
	for name, dbURL := range dbs {
		b.Run(name, func(b *testing.B) {
			env := map[string]string{
				"LATCHKEY_DATABASE_URL":     dbURL,
				"LATCHKEY_SECRET":           "bench-system-secret-0123456789abcdef-xyz",
				"LATCHKEY_CLEANUP_INTERVAL": "0",
				"LATCHKEY_REGISTRATION":     "open",
			}
			fs, cf := (&cli{stderr: io.Discard, env: func(k string) string { return env[k] }}).newFlagSet("serve")
			if err := fs.Parse(nil); err != nil {
				b.Fatal(err)
			}
			cfg, err := cf.load()
			if err != nil {
				b.Fatal(err)
			}
			a, err := openApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			h := a.handler()
			body := `{"client_name":"Bench","redirect_uris":["https://app.example/cb"],"grant_types":["authorization_code","refresh_token"],"scope":"openid profile"}`
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				req := httptest.NewRequest(http.MethodPost, provider.PathRegister, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:1000", i>>16&255, i>>8&255, i&255)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusCreated {
					b.Fatalf("register: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
