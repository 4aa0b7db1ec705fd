package e2e

import (
	"net/http"
	"testing"
	"time"
)

// A stolen browser session an hour old unlinks no provider, even one the user could spare: unlinking changes how
// the account signs in, which takes a sign-in from the last 5 minutes or the current password, as a factor does.
func TestStaleSessionUnlinksNoProvider(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newUpstreamFixture(t, env)
		env.cli(t, "pools", "update", "--name", "default", "--signup", "true")
		b := newBrowser(t, "http://never.example")
		f.signInUpstreamAt(t, b, "bob@example.com", "bob upstream pw")
		// A second account linked to bob (as a second provider would), so Corp is not his only way in.
		db, q := rawDB(t, env)
		if _, err := db.Exec(q("INSERT INTO user_identities (provider_id, subject, user_id, created_at) VALUES (?, ?, ?, ?)"),
			"corp", "bob-second-account", userID(t, env, "bob@example.com"), time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		ageSignIns(t, env)
		p := b.get(f.srv.URL + "/account")
		wantAccount(t, accountPost(b, p, "/account/providers/unlink", nil), http.StatusForbidden, "sign-in from the last 5 minutes")
		if n := countRows(t, env, "user_identities"); n != 2 {
			t.Fatalf("%d links after a stale unlink, want 2", n)
		}
		// Signed in again, he may.
		p = f.signInUpstreamAt(t, b, "bob@example.com", "bob upstream pw")
		wantAccount(t, accountPost(b, p, "/account/providers/unlink", nil), http.StatusOK, "Provider unlinked.")
		if n := countRows(t, env, "user_identities"); n != 1 {
			t.Fatalf("%d links after a fresh unlink, want 1", n)
		}
	})
}
