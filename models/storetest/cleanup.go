package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/models"
)

// cleanupCases: expired token rows are deleted in bounded batches (sessions, challenges and throttle rows have
// their cleanup cases in sessions.go and throttle.go).
func cleanupCases() []testCase {
	return []testCase{
		{"expired rows are deleted in bounded batches", testDeleteExpired},
		{"a cleanup round names the tables with more to delete", testDeleteExpiredRound},
	}
}

// sweep is one cleanup round over every table (DeleteExpiredRound with no table list): the rows it deleted.
func sweep(ctx context.Context, s *models.Store, before time.Time, batch int) (int64, error) {
	n, _, err := s.DeleteExpiredRound(ctx, before, batch, nil)
	return n, err
}

func testDeleteExpired(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	now := time.Now().UTC()
	const expired, live, batch = 5, 3, 2
	for i := range expired {
		must(t, "create expired", s.CreateAccessTokenSession(ctx, fmt.Sprintf("old-%d", i),
			newRequest(client, fmt.Sprintf("g-old-%d", i), "usr_alice", now.Add(-time.Duration(i+1)*time.Minute))))
	}
	for i := range live {
		must(t, "create live", s.CreateAccessTokenSession(ctx, fmt.Sprintf("new-%d", i),
			newRequest(client, fmt.Sprintf("g-new-%d", i), "usr_alice", now.Add(time.Hour))))
	}
	// A refresh token without expiry never expires.
	forever := newRequest(client, "g-forever", "usr_alice", now.Add(time.Hour))
	delete(forever.Session.(*openid.DefaultSession).ExpiresAt, fosite.RefreshToken)
	must(t, "create non-expiring refresh", s.CreateRefreshTokenSession(ctx, "r-forever", "", forever))
	// A retired key past its NotAfter goes; the active one stays.
	must(t, "first key", s.ReplaceActiveKey(ctx, "", keyRecord("k1", keys.RS256), now.Add(-2*time.Hour), time.Time{}))
	must(t, "rotate key", s.ReplaceActiveKey(ctx, "k1", keyRecord("k2", keys.RS256), now.Add(-time.Hour), now.Add(-time.Minute)))

	var counts []int64
	for range 4 {
		n, err := sweep(ctx, s, now, batch)
		must(t, "sweep", err)
		counts = append(counts, n)
	}
	// Round 1: 2 access tokens + 1 signing key; round 2: 2; round 3: the last 1; then nothing.
	if want := []int64{3, 2, 1, 0}; !reflect.DeepEqual(counts, want) {
		t.Errorf("sweep counts = %v, want %v", counts, want)
	}
	for i := range expired {
		_, err := s.GetAccessTokenSession(ctx, fmt.Sprintf("old-%d", i), new(openid.DefaultSession))
		wantNotFound(t, "expired token", err)
	}
	for i := range live {
		_, err := s.GetAccessTokenSession(ctx, fmt.Sprintf("new-%d", i), new(openid.DefaultSession))
		must(t, "live token kept", err)
	}
	_, err := s.GetRefreshTokenSession(ctx, "r-forever", new(openid.DefaultSession))
	must(t, "non-expiring refresh kept", err)
	ks, err := s.ListSigningKeys(ctx, now.Add(-24*time.Hour))
	must(t, "list keys", err)
	if len(ks) != 1 || ks[0].KID != "k2" {
		t.Errorf("keys after cleanup = %v, want only k2", kids(ks))
	}
	if _, err := sweep(ctx, s, now, 0); err == nil {
		t.Error("sweep with batch 0 succeeded")
	}
}

// A round names the tables it deleted a full batch from, and a round over only those touches no other table.
func testDeleteExpiredRound(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	now := time.Now().UTC()
	for i := range 3 {
		must(t, "create expired access", s.CreateAccessTokenSession(ctx, fmt.Sprintf("old-%d", i),
			newRequest(client, fmt.Sprintf("g-old-%d", i), "usr_alice", now.Add(-time.Minute))))
	}
	must(t, "create expired refresh", s.CreateRefreshTokenSession(ctx, "r-old", "", newRequest(client, "g-r", "usr_alice", now.Add(-time.Minute))))

	n, more, err := s.DeleteExpiredRound(ctx, now, 2, nil)
	must(t, "first round", err)
	if n != 3 || !reflect.DeepEqual(more, []string{"oauth2_access"}) {
		t.Fatalf("first round = %d, %v; want 3 (2 access + 1 refresh), [oauth2_access]", n, more)
	}
	// An expired refresh token appears now; a round over the access table alone leaves it.
	must(t, "create another expired refresh", s.CreateRefreshTokenSession(ctx, "r-old-2", "", newRequest(client, "g-r2", "usr_alice", now.Add(-time.Minute))))
	n, more, err = s.DeleteExpiredRound(ctx, now, 2, more)
	must(t, "second round", err)
	if n != 1 || len(more) != 0 {
		t.Fatalf("second round = %d, %v; want 1, none", n, more)
	}
	if n, err := sweep(ctx, s, now, 2); err != nil || n != 1 {
		t.Fatalf("a full sweep after = %d, %v; want 1: the refresh token the access-only round left", n, err)
	}
}
