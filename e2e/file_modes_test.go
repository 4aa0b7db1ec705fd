package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// The SQLite database and its -wal and -shm hold every user's password hash and every token: like the secret file
// beside them, only their owner may read them, whether the server created them or found them with looser modes.
func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		existing os.FileMode // mode of the files before the server starts; 0 = no database yet
	}{
		{"new database", 0},
		{"existing database readable by others", 0o644},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "latchkey.db")
			env := newTestEnv(t, "sqlite://"+db)
			delete(env, "LATCHKEY_SECRET") // the secret file is the reference: 0600 since it exists
			if tc.existing != 0 {
				env.cli(t, "migrate")
				for _, p := range []string{db, db + "-wal", db + "-shm"} {
					if _, err := os.Stat(p); err == nil {
						if err := os.Chmod(p, tc.existing); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			svc := env.createClient(t, "--name", "svc")
			srv := env.startServer(t)
			// A write, so the -wal and -shm files exist while the server runs.
			if code, _, body := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc.ClientID, svc.ClientSecret); code != 200 {
				t.Fatalf("token: %d %v", code, body)
			}
			for _, p := range []string{db, db + "-wal", db + "-shm", db + ".secret"} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatalf("%s: %v", filepath.Base(p), err)
				}
				if perm := fi.Mode().Perm(); perm&0o077 != 0 {
					t.Errorf("%s has mode %v, want no access for group and others", filepath.Base(p), perm)
				}
			}
		})
	}
}
