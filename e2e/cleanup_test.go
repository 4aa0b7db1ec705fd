package e2e

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// cleanupOnce drains a backlog several batches deep: after the first round over every table it keeps going over
// the tables that still had a full batch, until none has, and what it deleted no longer introspects.
func TestCleanupDrainsABacklogDeeperThanOneBatch(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env["LATCHKEY_CLEANUP_BATCH"] = "2"
		svc := env.createClient(t, "--name", "svc", "--scopes", "read")
		rs := env.createClient(t, "--name", "resource-server")
		srv := env.startServer(t)
		var tokens []string
		for range 5 {
			code, _, body := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc.ClientID, svc.ClientSecret)
			tok, _ := body["access_token"].(string)
			if code != http.StatusOK || tok == "" {
				t.Fatalf("token: %d %v", code, body)
			}
			tokens = append(tokens, tok)
		}
		// Two hours on, every token has expired (their lifetime is an hour).
		if n := srv.app.CleanupOnce(context.Background(), time.Now().Add(2*time.Hour)); n < 5 {
			t.Fatalf("cleanupOnce deleted %d rows, want at least the 5 access tokens", n)
		}
		for _, tok := range tokens {
			code, _, body := postForm(t, srv.URL+"/oauth2/introspect", url.Values{"token": {tok}}, rs.ClientID, rs.ClientSecret)
			if code != http.StatusOK || body["active"] != false {
				t.Fatalf("introspect after cleanup: %d %v", code, body)
			}
		}
		if n := srv.app.CleanupOnce(context.Background(), time.Now().Add(2*time.Hour)); n != 0 {
			t.Fatalf("a second cleanup deleted %d rows, want 0", n)
		}
	})
}
