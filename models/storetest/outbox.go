package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

func outboxCases() []testCase {
	return []testCase{
		{"outbox enqueue commits and rolls back with its transaction", testOutboxTx},
		{"outbox concurrent claims are disjoint", testOutboxClaimDisjoint},
		{"outbox claims one kind apart", testOutboxClaimKinds},
		{"outbox lease, retry schedule and dead", testOutboxRetry},
		{"ending a session enqueues a back-channel logout per taking-part client", testOutboxSessionEnd},
	}
}

func testOutboxTx(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	txCtx, err := s.BeginTX(ctx)
	must(t, "begin", err)
	_, err = s.EnqueueOutbox(txCtx, "test", "https://a.example/x", map[string]string{"k": "rolled back"}, now)
	must(t, "enqueue in tx", err)
	must(t, "rollback", s.Rollback(txCtx))
	got, err := s.ClaimOutbox(ctx, "n1", now, time.Minute, 10)
	must(t, "claim", err)
	if len(got) != 0 {
		t.Fatalf("claimed %d after a rollback, want 0", len(got))
	}

	txCtx, err = s.BeginTX(ctx)
	must(t, "begin 2", err)
	id, err := s.EnqueueOutbox(txCtx, "test", "https://a.example/x", map[string]string{"k": "v"}, now)
	must(t, "enqueue in tx 2", err)
	must(t, "commit", s.Commit(txCtx))
	got, err = s.ClaimOutbox(ctx, "n1", now, time.Minute, 10)
	must(t, "claim 2", err)
	if len(got) != 1 || got[0].ID != id || got[0].Attempts != 1 || got[0].LeasedBy != "n1" || got[0].Kind != "test" {
		t.Fatalf("claimed %+v, want %s with one attempt leased by n1", got, id)
	}
	var p map[string]string
	if err := json.Unmarshal(got[0].Payload, &p); err != nil || p["k"] != "v" {
		t.Errorf("payload %s, %v", got[0].Payload, err)
	}
}

// A claim for one kind leaves the others' messages due, however much older they are.
func testOutboxClaimKinds(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	for i, kind := range []string{"slow", "slow", "mail", "slow"} {
		_, err := s.EnqueueOutbox(ctx, kind, "https://a.example/x", map[string]int{"i": i}, now.Add(time.Duration(i)*time.Second))
		must(t, "enqueue", err)
	}
	got, err := s.ClaimOutbox(ctx, "n1", now.Add(time.Minute), time.Minute, 10, "mail")
	must(t, "claim mail", err)
	if len(got) != 1 || got[0].Kind != "mail" {
		t.Fatalf("claimed %+v for kind mail, want the one mail", got)
	}
	got, err = s.ClaimOutbox(ctx, "n1", now.Add(time.Minute), time.Minute, 10)
	must(t, "claim any", err)
	if len(got) != 3 {
		t.Fatalf("claimed %d of any kind, want the 3 slow ones", len(got))
	}
}

func testOutboxClaimDisjoint(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	const n = 40
	for i := range n {
		_, err := s.EnqueueOutbox(ctx, "test", "https://a.example/x", i, now.Add(-time.Duration(i)*time.Second))
		must(t, "enqueue", err)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := fmt.Sprintf("node-%d", w)
			for {
				got, err := s.ClaimOutbox(ctx, node, now, time.Minute, 3)
				if err != nil {
					if errors.Is(err, fosite.ErrSerializationFailure) {
						continue
					}
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, m := range got {
					if prev, ok := seen[m.ID]; ok {
						errs <- fmt.Errorf("%s claimed by %s and %s", m.ID, prev, node)
					}
					seen[m.ID] = node
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) != n {
		t.Errorf("claimed %d distinct messages, want %d", len(seen), n)
	}
}

func testOutboxRetry(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	id, err := s.EnqueueOutbox(ctx, "test", "https://a.example/x", nil, now)
	must(t, "enqueue", err)
	got, err := s.ClaimOutbox(ctx, "n1", now, time.Minute, 10)
	must(t, "claim", err)
	if len(got) != 1 {
		t.Fatalf("claimed %d, want 1", len(got))
	}
	// Leased: not claimable by another node until the lease runs out.
	if again, _ := s.ClaimOutbox(ctx, "n2", now.Add(30*time.Second), time.Minute, 10); len(again) != 0 {
		t.Fatalf("a leased message was claimed again")
	}
	// The lease ran out (n1 died): n2 takes it; n1's late report is refused.
	again, err := s.ClaimOutbox(ctx, "n2", now.Add(61*time.Second), time.Minute, 10)
	must(t, "claim after lease", err)
	if len(again) != 1 || again[0].Attempts != 2 {
		t.Fatalf("after the lease: %+v, want the message with 2 attempts", again)
	}
	if err := s.OutboxDelivered(ctx, id, "n1", now); !errors.Is(err, models.ErrLeaseLost) {
		t.Errorf("late report of the old lease holder: %v, want ErrLeaseLost", err)
	}
	// A failure schedules the next attempt.
	must(t, "failed", s.OutboxFailed(ctx, id, "n2", "HTTP 503", now.Add(5*time.Minute), false, now.Add(62*time.Second)))
	if got, _ := s.ClaimOutbox(ctx, "n1", now.Add(4*time.Minute), time.Minute, 10); len(got) != 0 {
		t.Errorf("claimed before its next attempt")
	}
	got, err = s.ClaimOutbox(ctx, "n1", now.Add(5*time.Minute), time.Minute, 10)
	must(t, "claim at retry", err)
	if len(got) != 1 || got[0].Attempts != 3 || got[0].LastError != "HTTP 503" {
		t.Fatalf("at retry: %+v", got)
	}
	// Dead: never claimed again.
	must(t, "dead", s.OutboxFailed(ctx, id, "n1", "HTTP 500", now.Add(time.Hour), true, now.Add(5*time.Minute)))
	if got, _ := s.ClaimOutbox(ctx, "n1", now.Add(48*time.Hour), time.Minute, 10); len(got) != 0 {
		t.Errorf("a dead message was claimed")
	}
	pending, dead, err := s.OutboxCounts(ctx)
	must(t, "counts", err)
	if pending != 0 || dead != 1 {
		t.Errorf("counts pending %d dead %d, want 0 1", pending, dead)
	}
	// A delivered message is done; both go with cleanup after the retention.
	id2, err := s.EnqueueOutbox(ctx, "test", "https://a.example/y", nil, now)
	must(t, "enqueue 2", err)
	_, err = s.ClaimOutbox(ctx, "n1", now, time.Minute, 10)
	must(t, "claim 2", err)
	must(t, "delivered", s.OutboxDelivered(ctx, id2, "n1", now))
	if err := s.OutboxDelivered(ctx, id2, "n1", now); !errors.Is(err, models.ErrLeaseLost) {
		t.Errorf("delivered twice: %v, want ErrLeaseLost", err)
	}
	_, _, err = s.DeleteExpiredRound(ctx, now.Add(6*24*time.Hour), 100, []string{"outbox"})
	must(t, "cleanup early", err)
	if all, _ := s.OutboxMessages(ctx, "", 10); len(all) != 2 {
		t.Errorf("%d messages after an early cleanup, want 2", len(all))
	}
	_, _, err = s.DeleteExpiredRound(ctx, now.Add(8*24*time.Hour), 100, []string{"outbox"})
	must(t, "cleanup", err)
	if all, _ := s.OutboxMessages(ctx, "", 10); len(all) != 0 {
		t.Errorf("%d messages after cleanup, want 0", len(all))
	}
}

func testOutboxSessionEnd(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	back := mustClient(t, s, "back")
	back.BackchannelLogoutURI = "https://app.example/bc"
	back.FrontchannelLogoutURI = "https://app.example/fc"
	must(t, "update back", s.UpdateClient(ctx, back))
	plain := mustClient(t, s, "plain")
	u := mustUser(t, s, "lo@example.com")
	ses, _, err := s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, 24*time.Hour)
	must(t, "session", err)
	other, _, err := s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, 24*time.Hour)
	must(t, "other", err)
	issueTokens(t, s, back, "b", u.ID, ses.ID)
	issueTokens(t, s, back, "b2", u.ID, ses.ID) // twice in one session: one message
	issueTokens(t, s, plain, "p", u.ID, ses.ID)
	issueTokens(t, s, back, "o", u.ID, other.ID)

	fc, err := s.FrontchannelLogouts(ctx, ses.ID)
	must(t, "front-channel", err)
	if len(fc) != 1 || fc[0].ClientID != "back" || fc[0].URI != "https://app.example/fc" {
		t.Errorf("front-channel logouts %+v", fc)
	}

	// Rolled back: nothing is sent.
	txCtx, err := s.BeginTX(ctx)
	must(t, "begin", err)
	must(t, "end in tx", s.EndBrowserSession(txCtx, ses.ID, now.Add(time.Minute)))
	must(t, "rollback", s.Rollback(txCtx))
	if msgs, _ := s.OutboxMessages(ctx, models.OutboxBackchannelLogout, 10); len(msgs) != 0 {
		t.Fatalf("%d messages after a rolled-back end, want 0", len(msgs))
	}

	must(t, "end", s.EndBrowserSession(ctx, ses.ID, now.Add(time.Minute)))
	wantNotFound(t, "end twice", s.EndBrowserSession(ctx, ses.ID, now.Add(time.Minute)))
	msgs, err := s.OutboxMessages(ctx, models.OutboxBackchannelLogout, 10)
	must(t, "messages", err)
	if len(msgs) != 1 || msgs[0].Target != "https://app.example/bc" {
		t.Fatalf("messages %+v, want one to https://app.example/bc", msgs)
	}
	var p models.BackchannelLogout
	if err := json.Unmarshal(msgs[0].Payload, &p); err != nil || p != (models.BackchannelLogout{ClientID: "back", Subject: u.ID, SID: ses.ID}) {
		t.Errorf("payload %s, %v", msgs[0].Payload, err)
	}

	// Disabling the user ends the other session: one more.
	must(t, "disable", s.SetDisabled(ctx, u.ID, true, now.Add(2*time.Minute)))
	msgs, _ = s.OutboxMessages(ctx, models.OutboxBackchannelLogout, 10)
	if len(msgs) != 2 {
		t.Fatalf("%d messages after disable, want 2", len(msgs))
	}
	if err := json.Unmarshal(msgs[1].Payload, &p); err != nil || p.SID != other.ID {
		t.Errorf("second payload %s, %v", msgs[1].Payload, err)
	}
}
