package e2e

import (
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// latchkey backup copies a SQLite database while the server writes to it: the copy passes SQLite's integrity
// check, and a server started on it (with the same LATCHKEY_SECRET) serves the clients it held. PostgreSQL is
// refused with a hint to use its own tools.
func TestBackupUnderWriteLoad(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		to := filepath.Join(t.TempDir(), "copy.db")
		if !strings.HasPrefix(env["LATCHKEY_DATABASE_URL"], "sqlite://") {
			out, stderr, code := env.cliCode(t, "", "backup", "--to", to)
			if code == 0 || !strings.Contains(stderr, "pg_dump") {
				t.Errorf("backup of PostgreSQL: exit %d, %s %s; want a refusal naming pg_dump", code, out, stderr)
			}
			return
		}
		svc := env.createClient(t, "--name", "svc", "--grant-types", "client_credentials", "--scopes", "read")
		srv := env.startServer(t)
		token := func(base string) int {
			code, _, _ := postForm(t, base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}},
				svc.ClientID, svc.ClientSecret)
			return code
		}

		// Writers: tokens issued (each a row) until the backup is done.
		var (
			stop   atomic.Bool
			issued atomic.Int64
			wg     sync.WaitGroup
		)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					if token(srv.URL) == http.StatusOK {
						issued.Add(1)
					}
				}
			}()
		}
		for issued.Load() < 20 {
			time.Sleep(5 * time.Millisecond)
		}
		out := env.cli(t, "backup", "--to", to)
		stop.Store(true)
		wg.Wait()
		if !strings.Contains(out, "backed up to "+to) || !strings.Contains(out, "LATCHKEY_SECRET") {
			t.Errorf("backup printed %q", out)
		}
		if _, stderr, code := env.cliCode(t, "", "backup", "--to", to); code == 0 || !strings.Contains(stderr, "--force") {
			t.Errorf("a second backup onto the same file: exit %d, %s; want a refusal naming --force", code, stderr)
		}

		copyEnv := testEnv(maps.Clone(env))
		copyEnv["LATCHKEY_DATABASE_URL"] = "sqlite://" + to
		db, _ := rawDB(t, copyEnv)
		var check string
		if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
			t.Fatalf("integrity_check of the copy: %q (%v)", check, err)
		}
		var tokens int
		if err := db.QueryRow("SELECT COUNT(*) FROM oauth2_access").Scan(&tokens); err != nil || tokens == 0 {
			t.Fatalf("the copy holds %d access tokens (%v), want the ones issued before it", tokens, err)
		}
		if code := token(copyEnv.startServer(t).URL); code != http.StatusOK {
			t.Errorf("a server on the copy: client_credentials %d, want 200", code)
		}
	})
}
