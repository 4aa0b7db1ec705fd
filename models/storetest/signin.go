package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// signInCases: sign-in against password changes, and the session cap.
func signInCases() []testCase {
	return []testCase{
		{"sign-in password change ends the other sessions and their tokens in one step", testChangePasswordEndsOtherSessions},
		{"a user's own password change applies only while the checked password is current", testChangeOwnPasswordOnlyOnce},
		{"sign-in a session starts only while the checked password is current", testSessionNeedsTheCheckedPassword},
		{"sign-in 40 sessions racing a password change: none created with the old password survives", testSessionsRacingAPasswordChange},
		{"sign-in sessions beyond the cap end the oldest and revoke its tokens", testSessionCap},
		{"sign-in 40 concurrent sessions on top of 30: exactly the cap stays active", testSessionCapConcurrent},
		{"sign-in confirming a session that ended meanwhile revokes its tokens", testConfirmBrowserSession},
	}
}

// Sign-in against password changes: a session starts only while the password that was checked is still the
// user's, a password change ends the other sessions in the same transaction, and a user's active sessions are
// capped.

func testChangePasswordEndsOtherSessions(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	client := mustClient(t, s, "app")
	u := mustUser(t, s, "pat@example.com")
	other := mustUser(t, s, "quin@example.com")
	var ids []string
	for i := range 3 {
		ses, _, err := s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, 24*time.Hour)
		must(t, "session", err)
		ids = append(ids, ses.ID)
		issueTokens(t, s, client, fmt.Sprintf("pat%d", i), u.ID, ses.ID)
	}
	otherSes, _, err := s.CreateBrowserSession(ctx, other, "", "", now, time.Hour, 24*time.Hour)
	must(t, "other user's session", err)
	issueTokens(t, s, client, "quin", other.ID, otherSes.ID)

	if _, err := s.ChangePassword(ctx, u.ID, "", ids[0], now); !errors.Is(err, models.ErrInvalid) {
		t.Fatalf("ChangePassword to an empty password: %v, want models.ErrInvalid", err)
	}
	checkTokens(t, s, "pat1", false) // a refused change ends nothing

	n, err := s.ChangePassword(ctx, u.ID, "a new password", ids[0], now.Add(time.Minute))
	must(t, "ChangePassword", err)
	if n != 2 {
		t.Errorf("ChangePassword ended %d sessions, want 2", n)
	}
	checkTokens(t, s, "pat0", false) // the session the change was made from
	checkTokens(t, s, "pat1", true)
	checkTokens(t, s, "pat2", true)
	checkTokens(t, s, "quin", false)
	for i, id := range ids {
		bs, err := s.BrowserSessionByID(ctx, id)
		must(t, "BrowserSessionByID", err)
		if ended := bs.EndedAt != nil; ended != (i > 0) {
			t.Errorf("session %d ended = %v, want %v", i, ended, i > 0)
		}
	}
	if _, err := s.Authenticate(ctx, "", "pat@example.com", "pw-pat@example.com"); !errors.Is(err, models.ErrInvalidCredentials) {
		t.Errorf("Authenticate with the old password: %v, want models.ErrInvalidCredentials", err)
	}
	_, err = s.Authenticate(ctx, "", "pat@example.com", "a new password")
	must(t, "Authenticate with the new password", err)

	// An operator's reset keeps no session.
	n, err = s.ChangePassword(ctx, u.ID, "reset by an operator", "", now.Add(2*time.Minute))
	must(t, "ChangePassword keeping nothing", err)
	if l, _ := s.ListBrowserSessions(ctx, u.ID, now.Add(3*time.Minute)); n != 1 || len(l) != 0 {
		t.Errorf("after a reset: %d ended, %d active; want 1 and 0", n, len(l))
	}
}

func testSessionNeedsTheCheckedPassword(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	created, err := s.CreateUserWith(ctx, models.NewUser{Email: "ren@example.com", Password: "old password"})
	must(t, "CreateUserWith", err)
	_, _, err = s.CreateBrowserSession(ctx, created, "", "", now, time.Hour, time.Hour)
	must(t, "session for the user CreateUserWith returned", err)

	checked, err := s.Authenticate(ctx, "", "ren@example.com", "old password")
	must(t, "Authenticate", err)
	read, err := s.UserByID(ctx, created.ID)
	must(t, "UserByID", err)
	if _, _, err := s.CreateBrowserSession(ctx, read, "", "", now, time.Hour, time.Hour); !errors.Is(err, models.ErrInvalidCredentials) {
		t.Errorf("session for a user whose password nobody checked: %v, want models.ErrInvalidCredentials", err)
	}

	_, err = s.ChangePassword(ctx, created.ID, "new password", "", now)
	must(t, "ChangePassword", err)
	for what, u := range map[string]*models.User{"checked before the change": checked, "created before the change": created} {
		if _, _, err := s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, time.Hour); !errors.Is(err, models.ErrInvalidCredentials) {
			t.Errorf("session for a user %s: %v, want models.ErrInvalidCredentials", what, err)
		}
	}
	if l, _ := s.ListBrowserSessions(ctx, created.ID, now); len(l) != 0 {
		t.Errorf("%d active sessions after the change, want 0", len(l))
	}
	fresh, err := s.Authenticate(ctx, "", "ren@example.com", "new password")
	must(t, "Authenticate with the new password", err)
	_, _, err = s.CreateBrowserSession(ctx, fresh, "", "", now, time.Hour, time.Hour)
	must(t, "session after checking the new password", err)
}

// Forty sign-ins that checked the old password keep creating sessions while the password changes: each is
// refused once the change has committed, and every session created before it has been ended.
func testSessionsRacingAPasswordChange(t *testing.T, s *models.Store) {
	const workers = 40
	ctx := ctxT(t)
	now := baseTime
	u := mustUser(t, s, "sam@example.com")
	stale, err := s.Authenticate(ctx, "", "sam@example.com", "pw-sam@example.com")
	must(t, "Authenticate", err)
	created := make([][]string, workers)
	errs := make([]error, workers)
	var changeErr error
	runWithDeadline(t, func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			wg.Go(func() {
				<-start
				for range 200 {
					bs, _, err := s.CreateBrowserSession(ctx, stale, "", "", now, time.Hour, 24*time.Hour)
					if err != nil {
						errs[i] = err
						return
					}
					created[i] = append(created[i], bs.ID)
				}
			})
		}
		wg.Go(func() {
			<-start
			_, changeErr = s.ChangePassword(ctx, u.ID, "changed under load", "", now)
		})
		close(start)
		wg.Wait()
	})
	must(t, "ChangePassword", changeErr)
	total := 0
	for i, err := range errs {
		if !errors.Is(err, models.ErrInvalidCredentials) {
			t.Fatalf("worker %d stopped with %v, want models.ErrInvalidCredentials once the password changed", i, err)
		}
		for _, id := range created[i] {
			total++
			bs, err := s.BrowserSessionByID(ctx, id)
			must(t, "BrowserSessionByID", err)
			if bs.EndedAt == nil {
				t.Errorf("session %s, created with the old password, is still active", id)
			}
		}
	}
	if l, err := s.ListBrowserSessions(ctx, u.ID, now); err != nil || len(l) != 0 {
		t.Errorf("active sessions after the change: %d, %v; want none", len(l), err)
	}
	t.Logf("%d sessions created with the old password before the change, all ended", total)
}

func testSessionCap(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	u := mustUser(t, s, "tam@example.com")
	at := func(i int) time.Time { return baseTime.Add(time.Duration(i) * time.Second) }
	// An expired session does not count against the cap.
	_, _, err := s.CreateBrowserSession(ctx, u, "", "", at(0), time.Second, time.Second)
	must(t, "short session", err)
	var ids []string
	for i := range models.MaxActiveSessions {
		ses, _, err := s.CreateBrowserSession(ctx, u, "", "", at(i+1), time.Hour, 24*time.Hour)
		must(t, "session", err)
		ids = append(ids, ses.ID)
	}
	issueTokens(t, s, client, "oldest", u.ID, ids[0])
	issueTokens(t, s, client, "second", u.ID, ids[1])
	newest, _, err := s.CreateBrowserSession(ctx, u, "", "", at(models.MaxActiveSessions+1), time.Hour, 24*time.Hour)
	must(t, "one session over the cap", err)

	list, err := s.ListBrowserSessions(ctx, u.ID, at(models.MaxActiveSessions+1))
	must(t, "ListBrowserSessions", err)
	if len(list) != models.MaxActiveSessions || list[0].ID != newest.ID {
		t.Fatalf("%d active sessions, newest first %v; want %d with the new one", len(list), list[0].ID == newest.ID, models.MaxActiveSessions)
	}
	bs, err := s.BrowserSessionByID(ctx, ids[0])
	must(t, "BrowserSessionByID", err)
	if bs.EndedAt == nil {
		t.Error("the oldest session was not ended")
	}
	checkTokens(t, s, "oldest", true)
	checkTokens(t, s, "second", false)
}

// Forty sessions created at once on top of thirty: exactly MaxActiveSessions stay active.
func testSessionCapConcurrent(t *testing.T, s *models.Store) {
	const before, workers = 30, 40
	ctx := ctxT(t)
	now := baseTime
	u := mustUser(t, s, "uma@example.com")
	for range before {
		_, _, err := s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, 24*time.Hour)
		must(t, "session", err)
	}
	errs := make([]error, workers)
	runWithDeadline(t, func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			wg.Go(func() {
				<-start
				_, _, errs[i] = s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, 24*time.Hour)
			})
		}
		close(start)
		wg.Wait()
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	if l, err := s.ListBrowserSessions(ctx, u.ID, now); err != nil || len(l) != models.MaxActiveSessions {
		t.Errorf("%d active sessions after %d+%d were created, %v; want %d", len(l), before, workers, err, models.MaxActiveSessions)
	}
}

func testConfirmBrowserSession(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	client := mustClient(t, s, "app")
	u := mustUser(t, s, "val@example.com")
	ses, _, err := s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, 24*time.Hour)
	must(t, "session", err)
	issueTokens(t, s, client, "live", u.ID, ses.ID)
	must(t, "ConfirmBrowserSession of an active session", s.ConfirmBrowserSession(ctx, ses.ID, now))
	checkTokens(t, s, "live", false)

	// Tokens issued through a session that ended meanwhile are revoked by the confirmation.
	must(t, "EndBrowserSession", s.EndBrowserSession(ctx, ses.ID, now))
	issueTokens(t, s, client, "late", u.ID, ses.ID)
	wantNotFound(t, "ConfirmBrowserSession of an ended session", s.ConfirmBrowserSession(ctx, ses.ID, now))
	checkTokens(t, s, "late", true)
}

// testChangeOwnPasswordOnlyOnce: two changes checked against the same old password — the owner's and that of
// someone else who knows it — apply once: the second finds the password changed and changes nothing. A change
// from a session that has ended changes nothing either.
func testChangeOwnPasswordOnlyOnce(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	u := mustUser(t, s, "ren@example.com")
	owner, _, err := s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, 24*time.Hour)
	must(t, "owner's session", err)
	intruder, _, err := s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, 24*time.Hour)
	must(t, "intruder's session", err)
	ownerChecked, err := s.Authenticate(ctx, "", "ren@example.com", "pw-ren@example.com")
	must(t, "owner's check", err)
	intruderChecked, err := s.Authenticate(ctx, "", "ren@example.com", "pw-ren@example.com")
	must(t, "intruder's check", err)

	if _, err := s.ChangeOwnPassword(ctx, ownerChecked, "the owner's new one", owner.ID, now); err != nil {
		t.Fatalf("owner's change: %v", err)
	}
	if _, err := s.ChangeOwnPassword(ctx, intruderChecked, "the intruder's one", intruder.ID, now); !errors.Is(err, models.ErrInvalidCredentials) {
		t.Errorf("a second change checked against the old password: %v, want models.ErrInvalidCredentials", err)
	}
	if _, err := s.Authenticate(ctx, "", "ren@example.com", "the owner's new one"); err != nil {
		t.Errorf("the owner's password after the intruder's try: %v", err)
	}
	if bs, err := s.BrowserSessionByID(ctx, owner.ID); err != nil || bs.EndedAt != nil {
		t.Errorf("the owner's session after the intruder's try: %+v %v, want active", bs, err)
	}

	checked, err := s.Authenticate(ctx, "", "ren@example.com", "the owner's new one")
	must(t, "check", err)
	must(t, "end the owner's session", s.EndBrowserSession(ctx, owner.ID, now))
	if _, err := s.ChangeOwnPassword(ctx, checked, "from an ended session", owner.ID, now); !errors.Is(err, models.ErrInvalidCredentials) {
		t.Errorf("a change from an ended session: %v, want models.ErrInvalidCredentials", err)
	}
	if _, err := s.Authenticate(ctx, "", "ren@example.com", "the owner's new one"); err != nil {
		t.Errorf("the password after a change from an ended session: %v", err)
	}
	if _, err := s.ChangeOwnPassword(ctx, &models.User{ID: u.ID}, "unchecked", "", now); !errors.Is(err, models.ErrInvalidCredentials) {
		t.Errorf("a change with no checked password: %v, want models.ErrInvalidCredentials", err)
	}
}
