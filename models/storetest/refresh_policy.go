package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/models"
)

// refreshPolicyCases: a client's refresh policy as the store keeps it. Within a client's reuse interval a rotated
// refresh token reads as active and presenting it again answers the successor its rotation recorded, never a new
// chain, without touching the access tokens already issued, concurrently too; a revocation ends the interval; a
// client without rotation keeps its token.
func refreshPolicyCases() []testCase {
	return []testCase{
		{"client refresh policy is stored, rotation on and no reuse interval by default", testRefreshPolicyStored},
		{"refresh reuse interval: a rotated token within it reads active and is answered its one recorded successor, keeping access tokens", testReuseWithinInterval},
		{"refresh reuse interval: a client without one (0) gets reuse as before", testReuseWithoutInterval},
		{"refresh reuse interval: revoking the grant ends it", testReuseAfterRevoke},
		{"refresh reuse interval: revoking the browser session ends it", testReuseAfterSessionEnd},
		{"refresh reuse interval: 40 concurrent uses of one token all succeed with one successor", testConcurrentReuse},
		{"refresh keep: the token stays active with the grant's access tokens until revoked", testKeepRefresh},
	}
}

func policyClient(t *testing.T, s *models.Store, id, rotation string, interval time.Duration) *models.Client {
	t.Helper()
	c := mustClient(t, s, id)
	c.RefreshTokenRotation, c.RefreshTokenReuseInterval = rotation, interval
	must(t, "set refresh policy", s.UpdateClient(ctxT(t), c))
	return c
}

func getRefresh(t *testing.T, s *models.Store, sig string) error {
	t.Helper()
	_, err := s.GetRefreshTokenSession(ctxT(t), sig, new(openid.DefaultSession))
	return err
}

func getAccess(t *testing.T, s *models.Store, sig string) error {
	t.Helper()
	_, err := s.GetAccessTokenSession(ctxT(t), sig, new(openid.DefaultSession))
	return err
}

func testRefreshPolicyStored(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	c := mustClient(t, s, "app")
	if c.RefreshTokenRotation != models.RefreshTokenRotationOn || c.RefreshTokenReuseInterval != 0 || !c.RotatesRefreshTokens() {
		t.Errorf("new client: rotation %q, interval %v; want on, 0", c.RefreshTokenRotation, c.RefreshTokenReuseInterval)
	}
	policyClient(t, s, "tabs", models.RefreshTokenRotationOn, 1500*time.Millisecond)
	policyClient(t, s, "weweb", models.RefreshTokenRotationOff, 0)
	for id, want := range map[string]struct {
		rotation string
		interval time.Duration
	}{"app": {"on", 0}, "tabs": {"on", 1500 * time.Millisecond}, "weweb": {"off", 0}} {
		got, err := s.ClientByID(ctx, id)
		must(t, "get "+id, err)
		if got.RefreshTokenRotation != want.rotation || got.RefreshTokenReuseInterval != want.interval ||
			got.RotatesRefreshTokens() != (want.rotation == "on") {
			t.Errorf("%s: rotation %q, interval %v; want %q, %v", id, got.RefreshTokenRotation, got.RefreshTokenReuseInterval, want.rotation, want.interval)
		}
	}
	for _, bad := range []*models.Client{
		{ID: "x", RefreshTokenRotation: "sometimes"},
		{ID: "x", RefreshTokenReuseInterval: 6 * time.Minute},
		{ID: "x", RefreshTokenReuseInterval: -time.Second},
		{ID: "x", RefreshTokenReuseInterval: 1500 * time.Microsecond},
		{ID: "x", RefreshTokenRotation: "off", RefreshTokenReuseInterval: time.Second},
	} {
		if err := s.CreateClient(ctx, bad); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("create client rotation %q interval %v: %v, want ErrInvalid", bad.RefreshTokenRotation, bad.RefreshTokenReuseInterval, err)
		}
	}
}

func testReuseWithinInterval(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := policyClient(t, s, "app", models.RefreshTokenRotationOn, 5*time.Minute)
	exp := baseTime.Add(time.Hour)
	must(t, "create a0", s.CreateAccessTokenSession(ctx, "a0", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create a1", s.CreateAccessTokenSession(ctx, "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	got, err := s.RotateRefreshTokenWithin(ctx, "r1", client.RefreshTokenReuseInterval, "sealed-r2")
	must(t, "rotate", err)
	if got != "" {
		t.Fatalf("the first rotation answered a recorded successor %q, want none (it stores its own)", got)
	}
	wantNotFound(t, "the access token issued with the rotated refresh token", getAccess(t, s, "a1"))
	must(t, "another access token of the grant (another tab's) is kept", getAccess(t, s, "a0"))
	must(t, "create a2", s.CreateAccessTokenSession(ctx, "a2", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create r2", s.CreateRefreshTokenSession(ctx, "r2", "a2", newRequest(client, "grant-1", "usr_alice", exp)))

	must(t, "get the rotated token within the interval", getRefresh(t, s, "r1"))
	for i := range 3 {
		got, err := s.RotateRefreshTokenWithin(ctx, "r1", client.RefreshTokenReuseInterval, fmt.Sprintf("sealed-other-%d", i))
		must(t, "present it again within the interval", err)
		if got != "sealed-r2" {
			t.Fatalf("replay %d answered %q, want the first rotation's successor: one chain however often it is replayed", i, got)
		}
	}
	must(t, "the access token issued at the first rotation is kept", getAccess(t, s, "a2"))
	must(t, "the successor stays active", getRefresh(t, s, "r2"))
}

func testReuseWithoutInterval(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := policyClient(t, s, "app", models.RefreshTokenRotationOn, 5*time.Minute)
	exp := baseTime.Add(time.Hour)
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "rotate", s.RotateRefreshToken(ctx, "grant-1", "r1"))
	client.RefreshTokenReuseInterval = 0
	must(t, "interval off", s.UpdateClient(ctx, client))
	if err := getRefresh(t, s, "r1"); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("get the rotated token without an interval: %v, want fosite.ErrInactiveToken", err)
	}
	if err := s.RotateRefreshToken(ctx, "grant-1", "r1"); !errors.Is(err, fosite.ErrSerializationFailure) {
		t.Errorf("rotate it again without an interval: %v, want fosite.ErrSerializationFailure", err)
	}
	// A token spent without a recorded successor (rotated before the client had an interval) is not honoured.
	if _, err := s.RotateRefreshTokenWithin(ctx, "r1", 5*time.Minute, "sealed"); !errors.Is(err, fosite.ErrSerializationFailure) {
		t.Errorf("present a token spent without a successor within an interval: %v, want fosite.ErrSerializationFailure", err)
	}
}

func testReuseAfterRevoke(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := policyClient(t, s, "app", models.RefreshTokenRotationOn, 5*time.Minute)
	exp := baseTime.Add(time.Hour)
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	_, err := s.RotateRefreshTokenWithin(ctx, "r1", client.RefreshTokenReuseInterval, "sealed-r2")
	must(t, "rotate", err)
	must(t, "revoke", s.RevokeRefreshToken(ctx, "grant-1"))
	if err := getRefresh(t, s, "r1"); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("get the rotated token after revocation: %v, want fosite.ErrInactiveToken", err)
	}
	if _, err := s.RotateRefreshTokenWithin(ctx, "r1", client.RefreshTokenReuseInterval, "sealed"); !errors.Is(err, fosite.ErrSerializationFailure) {
		t.Errorf("present it after revocation: %v, want fosite.ErrSerializationFailure", err)
	}
}

func testReuseAfterSessionEnd(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := policyClient(t, s, "app", models.RefreshTokenRotationOn, 5*time.Minute)
	u := mustUser(t, s, "ada@example.com")
	ses, _, err := s.CreateBrowserSession(ctx, u, "", "", baseTime, time.Hour, 24*time.Hour)
	must(t, "create browser session", err)
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a1", newSIDRequest(client, "grant-1", u.ID, ses.ID, baseTime.Add(time.Hour))))
	_, err = s.RotateRefreshTokenWithin(ctx, "r1", client.RefreshTokenReuseInterval, "sealed-r2")
	must(t, "rotate", err)
	must(t, "end session", s.EndBrowserSession(ctx, ses.ID, baseTime.Add(time.Minute)))
	if err := getRefresh(t, s, "r1"); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("get the rotated token after its session ended: %v, want fosite.ErrInactiveToken", err)
	}
	if _, err := s.RotateRefreshTokenWithin(ctx, "r1", client.RefreshTokenReuseInterval, "sealed"); !errors.Is(err, fosite.ErrSerializationFailure) {
		t.Errorf("present it after its session ended: %v, want fosite.ErrSerializationFailure", err)
	}
}

func testConcurrentReuse(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := policyClient(t, s, "app", models.RefreshTokenRotationOn, 5*time.Minute)
	exp := baseTime.Add(time.Hour)
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a1", newRequest(client, "grant-1", "usr_alice", exp)))

	const workers = 40
	errs := make([]error, workers)
	answers := make([]string, workers)
	runWithDeadline(t, func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				txCtx, err := s.BeginTX(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				answers[i], err = s.RotateRefreshTokenWithin(txCtx, "r1", client.RefreshTokenReuseInterval, fmt.Sprintf("sealed-%d", i))
				if err == nil {
					err = s.CreateAccessTokenSession(txCtx, fmt.Sprintf("a-next-%d", i), newRequest(client, "grant-1", "usr_alice", exp))
				}
				if err == nil && answers[i] == "" {
					err = s.CreateRefreshTokenSession(txCtx, fmt.Sprintf("r-next-%d", i), fmt.Sprintf("a-next-%d", i),
						newRequest(client, "grant-1", "usr_alice", exp))
				}
				if err != nil {
					errs[i] = errors.Join(err, s.Rollback(txCtx))
					return
				}
				errs[i] = s.Commit(txCtx)
			}()
		}
		close(start)
		wg.Wait()
	})
	winner := -1
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v, want every use within the interval to succeed", i, err)
			continue
		}
		must(t, "every access token issued is kept", getAccess(t, s, fmt.Sprintf("a-next-%d", i)))
		if answers[i] == "" {
			if winner >= 0 {
				t.Fatalf("workers %d and %d both spent the token", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no worker spent the token")
	}
	must(t, "the one successor is active", getRefresh(t, s, fmt.Sprintf("r-next-%d", winner)))
	for i, got := range answers {
		if i != winner && errs[i] == nil && got != fmt.Sprintf("sealed-%d", winner) {
			t.Errorf("worker %d was answered %q, want the winner's successor sealed-%d: one chain", i, got, winner)
		}
	}
}

func testKeepRefresh(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := policyClient(t, s, "app", models.RefreshTokenRotationOff, 0)
	exp := baseTime.Add(time.Hour)
	must(t, "create a1", s.CreateAccessTokenSession(ctx, "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	for i := range 3 {
		must(t, fmt.Sprintf("keep #%d", i+1), s.KeepRefreshToken(ctx, "r1"))
	}
	must(t, "the kept token is active", getRefresh(t, s, "r1"))
	must(t, "the grant's access token is kept", getAccess(t, s, "a1"))
	must(t, "revoke", s.RevokeRefreshToken(ctx, "grant-1"))
	if err := s.KeepRefreshToken(ctx, "r1"); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("keep a revoked token: %v, want fosite.ErrInactiveToken", err)
	}
	wantNotFound(t, "keep an unknown token", s.KeepRefreshToken(ctx, "r-unknown"))
}
