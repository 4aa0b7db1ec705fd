package storetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latchkey/latchkey/models"
)

// accountCases: what a user's own account page changes beyond the profile.
func accountCases() []testCase {
	return []testCase{
		{"account linked identities listed; unlinking the last needs a checked password", testAccountUnlink},
		{"account of two links unlinked by 20 at once exactly one goes: a way to sign in stays", testAccountUnlinkConcurrent},
		{"account recovery codes replaced only with an active factor; the old ones stop working", testAccountRecoveryCodes},
	}
}

// linkedUser makes a user through provider corp's account sub-1 and links provider other's sub-2 to it.
func linkedUser(t *testing.T, s *models.Store) *models.User {
	t.Helper()
	ctx := ctxT(t)
	must(t, "UpdatePool", s.UpdatePool(ctx, models.Pool{Name: models.DefaultPool, SignupEnabled: true}))
	for _, id := range []string{"corp", "other"} {
		must(t, "CreateUpstreamProvider", s.CreateUpstreamProvider(ctx, &models.UpstreamProvider{ID: id, Kind: models.UpstreamKindOIDC,
			DisplayName: "Provider " + id, Issuer: "https://" + id + ".example.com", ClientID: "c", SealedSecret: "s",
			Scopes: []string{"openid"}, ClaimEmail: "email"}))
	}
	u, err := s.UserForUpstream(ctx, models.UpstreamAccount{ProviderID: "corp", Subject: "sub-1", Email: "ada@example.com", EmailVerified: true})
	must(t, "UserForUpstream corp", err)
	u2, err := s.UserForUpstream(ctx, models.UpstreamAccount{ProviderID: "other", Subject: "sub-2", Email: "ada@example.com", EmailVerified: true})
	must(t, "UserForUpstream other", err)
	if u2.ID != u.ID {
		t.Fatalf("other provider made user %s, not linked to %s", u2.ID, u.ID)
	}
	return u
}

func testAccountUnlink(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u := linkedUser(t, s)
	links, err := s.LinkedIdentities(ctx, u.ID)
	must(t, "LinkedIdentities", err)
	if len(links) != 2 || links[0].ProviderName != "Provider corp" || links[0].Subject != "sub-1" || links[1].ProviderID != "other" {
		t.Fatalf("links %+v", links)
	}
	if err := s.UnlinkIdentity(ctx, u.ID, "corp", "sub-9", false); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("unlink of an unknown link: %v", err)
	}
	other := mustUser(t, s, "bob@example.com")
	if err := s.UnlinkIdentity(ctx, other.ID, "corp", "sub-1", true); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("unlink of another user's link: %v", err)
	}
	must(t, "UnlinkIdentity corp", s.UnlinkIdentity(ctx, u.ID, "corp", "sub-1", false))
	if err := s.UnlinkIdentity(ctx, u.ID, "other", "sub-2", false); !errors.Is(err, models.ErrLastSignIn) {
		t.Fatalf("unlink of the last link without a password: %v", err)
	}
	must(t, "UnlinkIdentity other with a checked password", s.UnlinkIdentity(ctx, u.ID, "other", "sub-2", true))
	if links, err = s.LinkedIdentities(ctx, u.ID); err != nil || len(links) != 0 {
		t.Fatalf("links after unlinking: %+v %v", links, err)
	}
}

func testAccountUnlinkConcurrent(t *testing.T, s *models.Store) {
	u := linkedUser(t, s)
	var gone, last, missing atomic.Int32
	runWithDeadline(t, func() {
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				provider, subject := "corp", "sub-1"
				if i%2 == 1 {
					provider, subject = "other", "sub-2"
				}
				switch err := s.UnlinkIdentity(ctxT(t), u.ID, provider, subject, false); {
				case err == nil:
					gone.Add(1)
				case errors.Is(err, models.ErrLastSignIn):
					last.Add(1)
				case errors.Is(err, models.ErrNotFound):
					missing.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
	})
	links, err := s.LinkedIdentities(ctxT(t), u.ID)
	must(t, "LinkedIdentities", err)
	if gone.Load() != 1 || len(links) != 1 || last.Load()+missing.Load() != 19 {
		t.Fatalf("unlinked %d, last-way refusals %d, missing %d, links left %+v; want exactly one unlinked", gone.Load(), last.Load(), missing.Load(), links)
	}
}

func testAccountRecoveryCodes(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u := mustUser(t, s, "ada@example.com")
	if err := s.ReplaceRecoveryCodes(ctx, u.ID, []string{"x"}); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("recovery codes without a factor: %v", err)
	}
	f, _ := pendingTOTP(t, s, u)
	if err := s.ReplaceRecoveryCodes(ctx, u.ID, []string{"x"}); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("recovery codes with a pending factor only: %v", err)
	}
	must(t, "ConfirmFactor", s.ConfirmFactor(ctx, u.ID, f.ID, 1, []string{"old-1", "old-2"}))
	must(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, u.ID, []string{"new-1", "new-2", "new-3"}))
	if err := s.UseRecoveryCode(ctx, u.ID, "old-1"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("old recovery code after replacing: %v", err)
	}
	must(t, "UseRecoveryCode new", s.UseRecoveryCode(ctx, u.ID, "new-2"))
	if n, err := s.RecoveryCodesLeft(ctx, u.ID); err != nil || n != 2 {
		t.Fatalf("codes left %d %v, want 2", n, err)
	}
}
