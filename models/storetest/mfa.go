package storetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/models"
)

// mfaCases: second factors, recovery codes and MFA challenges.
func mfaCases() []testCase {
	return []testCase{
		{"mfa factor secret sealed round trip; the row holds no clear secret", testMFASealedRoundTrip},
		{"mfa a TOTP step is accepted once, atomically, under 40 concurrent uses", testMFAStepReplay},
		{"mfa recovery code single use; challenge reserved by exactly one of 40", testMFARecoveryAndChallenge},
	}
}

var mfaSystemSecret = []byte("storetest-system-secret-0123456789abcdef")

func pendingTOTP(t *testing.T, s *models.Store, u *models.User) (models.Factor, []byte) {
	t.Helper()
	id, err := models.NewFactorID()
	must(t, "NewFactorID", err)
	secret := mfa.NewSecret()
	sealed, err := mfa.NewSealer(mfaSystemSecret).Seal(id, secret)
	must(t, "Seal", err)
	f := models.Factor{ID: id, UserID: u.ID, Kind: models.FactorTOTP, Name: "phone", SealedSecret: sealed}
	must(t, "CreatePendingFactor", s.CreatePendingFactor(ctxT(t), f))
	return f, secret
}

func testMFASealedRoundTrip(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u := mustUser(t, s, "ada@example.com")
	f, secret := pendingTOTP(t, s, u)
	list, err := s.Factors(ctx, u.ID)
	must(t, "Factors", err)
	if len(list) != 1 || list[0].Active() || list[0].SealedSecret == "" {
		t.Fatalf("factors %+v", list)
	}
	if list[0].SealedSecret == mfa.EncodeSecret(secret) || list[0].SealedSecret == string(secret) {
		t.Fatal("the secret is stored in clear")
	}
	got, err := mfa.NewSealer(mfaSystemSecret).Open(f.ID, list[0].SealedSecret)
	if err != nil || string(got) != string(secret) {
		t.Fatalf("open: %v", err)
	}
	if _, err := mfa.NewSealer([]byte("another-system-secret-0123456789abcdef")).Open(f.ID, list[0].SealedSecret); err == nil {
		t.Fatal("opened under another system secret")
	}
	// Unconfirmed: no step is accepted; confirmed: it is.
	if err := s.UseFactorStep(ctx, f.ID, 5); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("UseFactorStep on a pending factor: %v", err)
	}
	must(t, "ConfirmFactor", s.ConfirmFactor(ctx, u.ID, f.ID, 5, []string{"h1", "h2"}))
	if err := s.ConfirmFactor(ctx, u.ID, f.ID, 6, nil); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("confirmed twice: %v", err)
	}
	if _, err := pendingOrExists(t, s, u); !errors.Is(err, models.ErrFactorExists) {
		t.Fatalf("second active factor: %v", err)
	}
	n, err := s.ResetMFA(ctx, u.ID)
	if err != nil || n != 1 {
		t.Fatalf("ResetMFA: %d %v", n, err)
	}
	if left, _ := s.RecoveryCodesLeft(ctx, u.ID); left != 0 {
		t.Fatalf("recovery codes after reset: %d", left)
	}
}

func pendingOrExists(t *testing.T, s *models.Store, u *models.User) (models.Factor, error) {
	id, _ := models.NewFactorID()
	f := models.Factor{ID: id, UserID: u.ID, Kind: models.FactorTOTP, SealedSecret: "x"}
	return f, s.CreatePendingFactor(ctxT(t), f)
}

func testMFAStepReplay(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u := mustUser(t, s, "ada@example.com")
	f, _ := pendingTOTP(t, s, u)
	must(t, "ConfirmFactor", s.ConfirmFactor(ctx, u.ID, f.ID, 100, nil))
	if err := s.UseFactorStep(ctx, f.ID, 100); !errors.Is(err, models.ErrCodeUsed) {
		t.Fatalf("the confirmation's step again: %v", err)
	}
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.UseFactorStep(ctx, f.ID, 101)
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, models.ErrCodeUsed):
				t.Errorf("UseFactorStep: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d of 40 uses of one step accepted", ok.Load())
	}
	if err := s.UseFactorStep(ctx, f.ID, 100); !errors.Is(err, models.ErrCodeUsed) {
		t.Fatalf("an earlier step after a later one: %v", err)
	}
}

func testMFARecoveryAndChallenge(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u := mustUser(t, s, "ada@example.com")
	f, _ := pendingTOTP(t, s, u)
	must(t, "ConfirmFactor", s.ConfirmFactor(ctx, u.ID, f.ID, 1, []string{mfa.HashRecoveryCode(u.ID, "abcde-fghjk")}))
	must(t, "UseRecoveryCode", s.UseRecoveryCode(ctx, u.ID, mfa.HashRecoveryCode(u.ID, "ABCDE FGHJK")))
	if err := s.UseRecoveryCode(ctx, u.ID, mfa.HashRecoveryCode(u.ID, "abcde-fghjk")); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("recovery code used twice: %v", err)
	}
	token, err := s.CreateMFAChallenge(ctx, models.MFAChallenge{UserID: u.ID, Purpose: "login"}, time.Minute)
	must(t, "CreateMFAChallenge", err)
	if _, err := s.PeekMFAChallenge(ctx, token, "enroll"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("challenge of another purpose: %v", err)
	}
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.ReserveMFAChallenge(ctx, token, "login"); err == nil {
				won.Add(1)
			} else if !errors.Is(err, models.ErrNotFound) {
				t.Errorf("ReserveMFAChallenge: %v", err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d of 40 reserved one challenge", won.Load())
	}
	must(t, "ReleaseMFAChallenge", s.ReleaseMFAChallenge(ctx, token))
	if _, err := s.ReserveMFAChallenge(ctx, token, "login"); err != nil {
		t.Fatalf("reserve after release: %v", err)
	}
}
