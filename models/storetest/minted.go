package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// mintedCases: sessions an admin client starts by minting tokens for a user.
func mintedCases() []testCase {
	return []testCase{
		{"minted sessions record the admin client, need no password, and are listed and ended like others", testMintedSession},
		{"minted sessions are refused for a disabled or unknown user", testMintedSessionRefused},
	}
}

func testMintedSession(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u := mustUser(t, s, "mia@example.com")
	now := baseTime
	signedIn, _, err := s.CreateBrowserSession(ctx, u, "192.0.2.1", "Browser", now, time.Hour, 24*time.Hour)
	must(t, "CreateBrowserSession", err)
	minted, err := s.CreateMintedSession(ctx, u.ID, "xano", "192.0.2.9", "Backend", now.Add(time.Second), time.Hour, 24*time.Hour)
	must(t, "CreateMintedSession", err)
	if minted.UserID != u.ID || minted.MintedBy != "xano" || minted.IP != "192.0.2.9" || !minted.ExpiresAt.Equal(now.Add(time.Second+24*time.Hour)) {
		t.Errorf("minted session = %+v", minted)
	}
	if signedIn.MintedBy != "" {
		t.Errorf("a signed-in session carries a mark: %+v", signedIn)
	}
	got, err := s.BrowserSessionByID(ctx, minted.ID)
	must(t, "BrowserSessionByID", err)
	if got.MintedBy != "xano" {
		t.Errorf("stored minted session = %+v", got)
	}
	list, err := s.ListBrowserSessions(ctx, u.ID, now.Add(time.Minute))
	must(t, "ListBrowserSessions", err)
	marks := map[string]string{}
	for _, l := range list {
		marks[l.ID] = l.MintedBy
	}
	if len(marks) != 2 || marks[minted.ID] != "xano" || marks[signedIn.ID] != "" {
		t.Errorf("listed sessions: %+v", list)
	}
	must(t, "EndBrowserSession", s.EndBrowserSession(ctx, minted.ID, now.Add(time.Minute)))
	if err := s.ConfirmBrowserSession(ctx, minted.ID, now.Add(time.Minute)); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("ConfirmBrowserSession of an ended minted session = %v, want ErrNotFound", err)
	}
	if _, err := s.CreateMintedSession(ctx, u.ID, "", "", "", now, time.Hour, time.Hour); !errors.Is(err, models.ErrInvalid) {
		t.Errorf("CreateMintedSession without an admin client = %v, want ErrInvalid", err)
	}
}

func testMintedSessionRefused(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u := mustUser(t, s, "ned@example.com")
	must(t, "SetDisabled", s.SetDisabled(ctx, u.ID, true, baseTime))
	if _, err := s.CreateMintedSession(ctx, u.ID, "xano", "", "", baseTime, time.Hour, time.Hour); !errors.Is(err, models.ErrUserDisabled) {
		t.Errorf("CreateMintedSession for a disabled user = %v, want ErrUserDisabled", err)
	}
	if _, err := s.CreateMintedSession(ctx, "usr_missing", "xano", "", "", baseTime, time.Hour, time.Hour); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("CreateMintedSession for an unknown user = %v, want ErrNotFound", err)
	}
	if list, err := s.ListBrowserSessions(ctx, u.ID, baseTime); err != nil || len(list) != 0 {
		t.Errorf("sessions after the refusals: %v, %v", list, err)
	}
}
