package grant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/models"
)

// Second factors: the one rule for what a user whose password was just checked must still do, and the one check
// of a code, shared by the token API, the password grant and the browser pages.

// MFADemand is what a sign-in still needs after the password.
type MFADemand int

const (
	MFANone   MFADemand = iota // the password is enough
	MFAVerify                  // the user has an active factor: a code is needed
	MFAEnroll                  // the pool requires MFA and the user has no factor yet: enrol first
)

// MFATTL is how long a challenge between a checked password and the second factor lives.
const MFATTL = 5 * time.Minute

// Authentication method references (RFC 8176) of a sign-in.
var (
	AMRPassword = []string{"pwd"}
	AMRTOTP     = []string{"pwd", "otp", "mfa"}
	// A recovery code is a second factor but no OTP device: RFC 8176 has no value for it beyond mfa.
	AMRRecovery = []string{"pwd", "mfa"}
	// A passkey after the password: proof of a hardware-secured key (hwk), the second factor.
	AMRPasskeyMFA = []string{"pwd", "hwk", "mfa"}
	// A passkey alone, with user verification (a PIN or biometric unlocked the key): possession and the user's
	// own check on the device, so it counts as multi-factor and satisfies a pool that requires MFA.
	AMRPasskey = []string{"hwk", "user", "mfa"}
)

// FactorStore is what the second-factor rule and check read and write.
type FactorStore interface {
	Factors(ctx context.Context, userID string) ([]models.Factor, error)
	GetPool(ctx context.Context, name string) (*models.Pool, error)
	UseFactorStep(ctx context.Context, id string, step int64) error
	UseRecoveryCode(ctx context.Context, userID, codeHash string) error
}

// SecondFactor says what user u must still do after the password: a user with an active factor is asked for it
// whatever the pool's policy (an operator turning MFA off does not silently weaken an enrolled account; reset
// it instead), one without is asked to enrol when the pool requires MFA.
func SecondFactor(ctx context.Context, store FactorStore, u *models.User) (MFADemand, error) {
	factors, err := store.Factors(ctx, u.ID)
	if err != nil {
		return 0, fmt.Errorf("load factors: %w", err)
	}
	for _, f := range factors {
		if f.Active() {
			return MFAVerify, nil
		}
	}
	pool, err := store.GetPool(ctx, u.Pool)
	if err != nil {
		return 0, fmt.Errorf("load pool: %w", err)
	}
	if pool.MFA == models.MFARequired {
		return MFAEnroll, nil
	}
	return MFANone, nil
}

// FreshSignIn is how recent a sign-in must be to change second factors (an authenticator app, a passkey)
// without typing the password again.
const FreshSignIn = 5 * time.Minute

// SignedInRecently is the one rule for changing a user's second factors (enrolling one, removing one) on the
// strength of a sign-in alone: it happened at authTime, less than FreshSignIn before now. Otherwise the change
// needs the current password: a stolen session or access token alone must not add a factor (locking the owner
// out behind the thief's authenticator) nor remove one.
func SignedInRecently(authTime, now time.Time) bool {
	return !authTime.IsZero() && now.Sub(authTime) <= FreshSignIn
}

// ErrWrongCode: the code is not the user's (wrong, replayed, or of a step already used), or the recovery code is
// unknown or spent.
var ErrWrongCode = errors.New("wrong second-factor code")

// CheckCode checks code (a TOTP code of one of the user's active factors) or recoveryCode (one of their unused
// recovery codes; spent by this check) and returns the sign-in's amr. A TOTP code counts once: its time step is
// accepted atomically (models.Store.UseFactorStep). Call it only on a reserved attempt (throttle.ReserveCode).
func CheckCode(ctx context.Context, store FactorStore, sealer *mfa.Sealer, userID, code, recoveryCode string, now time.Time) ([]string, error) {
	if recoveryCode != "" {
		err := store.UseRecoveryCode(ctx, userID, mfa.HashRecoveryCode(userID, recoveryCode))
		switch {
		case errors.Is(err, models.ErrNotFound):
			return nil, ErrWrongCode
		case err != nil:
			return nil, err
		}
		return AMRRecovery, nil
	}
	factors, err := store.Factors(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("load factors: %w", err)
	}
	for _, f := range factors {
		if !f.Active() || f.Kind != models.FactorTOTP {
			continue
		}
		secret, err := sealer.Open(f.ID, f.SealedSecret)
		if err != nil {
			return nil, fmt.Errorf("factor %s: %w", f.ID, err)
		}
		step, ok := mfa.Match(secret, code, now)
		if !ok {
			continue
		}
		switch err := store.UseFactorStep(ctx, f.ID, step); {
		case errors.Is(err, models.ErrCodeUsed), errors.Is(err, models.ErrNotFound):
			return nil, ErrWrongCode
		case err != nil:
			return nil, err
		}
		return AMRTOTP, nil
	}
	return nil, ErrWrongCode
}
