package storetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// passkeyCases: passkeys (factors of kind webauthn) and WebAuthn ceremonies.
func passkeyCases() []testCase {
	return []testCase{
		{"passkey credential id unique across users; the counter only grows, under 40 concurrent uses", testPasskeyCounter},
		{"passkey ceremony taken by exactly one of 40, once, of its kind only; reset-mfa takes passkeys and ceremonies", testPasskeyCeremony},
	}
}

func addPasskey(t *testing.T, s *models.Store, u *models.User, credID string) models.Factor {
	t.Helper()
	id, err := models.NewFactorID()
	must(t, "NewFactorID", err)
	f := models.Factor{ID: id, UserID: u.ID, Kind: models.FactorWebAuthn, Name: "laptop",
		Passkey: &models.Passkey{CredentialID: credID, PublicKey: "pk", Transports: []string{"internal", "hybrid"}, BackupEligible: true}}
	must(t, "AddPasskey", s.AddPasskey(ctxT(t), f))
	return f
}

func testPasskeyCounter(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	ada, bob := mustUser(t, s, "ada@example.com"), mustUser(t, s, "bob@example.com")
	f := addPasskey(t, s, ada, "cred-1")
	id, _ := models.NewFactorID()
	dup := models.Factor{ID: id, UserID: bob.ID, Kind: models.FactorWebAuthn, Passkey: &models.Passkey{CredentialID: "cred-1", PublicKey: "pk"}}
	if err := s.AddPasskey(ctx, dup); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("the same credential for another user: %v", err)
	}
	got, err := s.PasskeyByCredentialID(ctx, "cred-1")
	must(t, "PasskeyByCredentialID", err)
	if got.ID != f.ID || got.UserID != ada.ID || !got.Active() || got.Passkey.PublicKey != "pk" || len(got.Passkey.Transports) != 2 || !got.Passkey.BackupEligible {
		t.Fatalf("passkey read back: %+v %+v", got, got.Passkey)
	}
	// Zero while zero is recorded: accepted (an authenticator without a counter), and again.
	for range 2 {
		if _, err := s.UsePasskey(ctx, f.ID, 0, false); err != nil {
			t.Fatalf("counter 0: %v", err)
		}
	}
	u, err := s.UsePasskey(ctx, f.ID, 7, true)
	if err != nil || u.ID != ada.ID {
		t.Fatalf("counter 7: %v %+v", err, u)
	}
	for _, c := range []uint32{7, 3, 0} {
		if _, err := s.UsePasskey(ctx, f.ID, c, true); !errors.Is(err, models.ErrSignCount) {
			t.Fatalf("counter %d after 7: %v, want ErrSignCount", c, err)
		}
	}
	// 40 uses with one counter value at once: exactly one passes.
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if _, err := s.UsePasskey(ctx, f.ID, 8, true); err == nil {
				ok.Add(1)
			} else if !errors.Is(err, models.ErrSignCount) {
				t.Errorf("concurrent use: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d of 40 uses of counter 8 passed, want 1", ok.Load())
	}
	if got, _ := s.PasskeyByCredentialID(ctx, "cred-1"); got.Passkey.SignCount != 8 || !got.Passkey.BackupState || got.LastUsedAt == nil {
		t.Fatalf("after the uses: %+v", got.Passkey)
	}
	must(t, "DeleteFactor", s.DeleteFactor(ctx, ada.ID, f.ID))
	if _, err := s.UsePasskey(ctx, f.ID, 9, true); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("use of a removed passkey: %v", err)
	}
}

func testPasskeyCeremony(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	ada := mustUser(t, s, "ada@example.com")
	c := models.Ceremony{Kind: models.CeremonyMFA, UserID: ada.ID, BoundTo: "bind", SessionData: `{"challenge":"c1"}`}
	must(t, "SaveCeremony", s.SaveCeremony(ctx, "c1", c, time.Minute))
	if _, err := s.TakeCeremony(ctx, "c1", models.CeremonySignIn); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("taken as another kind: %v", err)
	}
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			got, err := s.TakeCeremony(ctx, "c1", models.CeremonyMFA)
			switch {
			case err == nil && *got == c:
				ok.Add(1)
			case err == nil || !errors.Is(err, models.ErrNotFound):
				t.Errorf("take: %v %+v", err, got)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d of 40 takes got the ceremony, want 1", ok.Load())
	}
	// Expired: not found.
	must(t, "SaveCeremony", s.SaveCeremony(ctx, "c2", c, -time.Second))
	if _, err := s.TakeCeremony(ctx, "c2", models.CeremonyMFA); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("expired ceremony: %v", err)
	}
	// An operator's reset removes the user's passkeys and open ceremonies.
	addPasskey(t, s, ada, "cred-2")
	must(t, "SaveCeremony", s.SaveCeremony(ctx, "c3", c, time.Minute))
	n, err := s.ResetMFA(ctx, ada.ID)
	if err != nil || n != 1 {
		t.Fatalf("ResetMFA: %d %v", n, err)
	}
	if _, err := s.PasskeyByCredentialID(ctx, "cred-2"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("passkey after reset: %v", err)
	}
	if _, err := s.TakeCeremony(ctx, "c3", models.CeremonyMFA); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("ceremony after reset: %v", err)
	}
}
