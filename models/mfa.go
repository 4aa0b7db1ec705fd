package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Multi-factor authentication storage: a user's second factors (user_factors, every kind in one table), their
// single-use recovery codes, and the single-use challenges between a checked password and a second factor. The
// secrets themselves are sealed or hashed by the caller (package mfa); the guards that make a code count once
// are here, each one atomic statement.

// Factor kinds.
const (
	FactorTOTP     = "totp"
	FactorWebAuthn = "webauthn" // a passkey (passkeys.go)
)

// MFA policies of a pool.
const (
	MFAOff      = "off"      // no new enrolments (factors already enrolled are still asked for)
	MFAOptional = "optional" // users may enrol; a user with a factor is asked for it
	MFARequired = "required" // every user must sign in with a second factor
)

// MFAPolicies are the policies a pool may have.
var MFAPolicies = []string{MFAOff, MFAOptional, MFARequired}

// Factor is one second factor of a user. A factor is pending until ConfirmedAt is set (its first code was right).
type Factor struct {
	ID           string     `json:"id"` // "fac_" + 26 base32 characters
	UserID       string     `json:"user_id"`
	Kind         string     `json:"kind"`
	Name         string     `json:"name"`
	SealedSecret string     `json:"-"`
	CreatedAt    time.Time  `json:"created_at"`
	ConfirmedAt  *time.Time `json:"confirmed_at,omitempty"`
	LastUsedAt   *time.Time `json:"last_used_at,omitempty"`
	// Passkey is the credential of a factor of kind FactorWebAuthn; nil for other kinds.
	Passkey *Passkey `json:"passkey,omitempty"`
}

// Active says whether the factor has been confirmed and so guards sign-in.
func (f Factor) Active() bool { return f.ConfirmedAt != nil }

type factorRow struct {
	ID           string     `gorm:"column:id;primaryKey"`
	UserID       string     `gorm:"column:user_id"`
	Kind         string     `gorm:"column:kind"`
	Name         string     `gorm:"column:name"`
	SecretSealed string     `gorm:"column:secret_sealed"`
	CreatedAt    time.Time  `gorm:"column:created_at"`
	ConfirmedAt  *time.Time `gorm:"column:confirmed_at"`
	LastUsedAt   *time.Time `gorm:"column:last_used_at"`
	LastUsedStep *int64     `gorm:"column:last_used_step"`
	// A passkey's credential (passkeys.go, migration 21).
	CredentialID    *string `gorm:"column:credential_id"`
	PublicKey       string  `gorm:"column:public_key"`
	SignCount       int64   `gorm:"column:sign_count"`
	AAGUID          string  `gorm:"column:aaguid"`
	Transports      string  `gorm:"column:transports"`
	BackupEligible  bool    `gorm:"column:backup_eligible"`
	BackupState     bool    `gorm:"column:backup_state"`
	AttestationType string  `gorm:"column:attestation_type"`
}

func (factorRow) TableName() string { return "user_factors" }

func (r factorRow) factor() Factor {
	return Factor{ID: r.ID, UserID: r.UserID, Kind: r.Kind, Name: r.Name, SealedSecret: r.SecretSealed,
		CreatedAt: r.CreatedAt.UTC(), ConfirmedAt: utcPtr(r.ConfirmedAt), LastUsedAt: utcPtr(r.LastUsedAt), Passkey: r.passkey()}
}

// NewFactorID returns the id of a factor about to be created (the caller seals its secret bound to it).
func NewFactorID() (string, error) { return newPublicID("fac_") }

// ErrFactorExists: the user already has an active factor of this kind.
var ErrFactorExists = errors.New("an active factor of this kind exists")

// CreatePendingFactor stores f (ID from NewFactorID, secret sealed) as a pending factor of f.UserID, replacing any
// other pending factor of that kind: an enrolment begun and abandoned leaves nothing that could be confirmed
// later. ErrFactorExists if the user has an active factor of that kind; ErrNotFound if there is no such user.
func (s *Store) CreatePendingFactor(ctx context.Context, f Factor) error {
	now := dbTime(s.now())
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var u userRow
		// Locks the user (PostgreSQL), so two enrolments of one user take turns.
		if err := lockUser(tx, f.UserID, &u); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&factorRow{}).Where("user_id = ? AND kind = ? AND confirmed_at IS NOT NULL", f.UserID, f.Kind).Count(&n).Error; err != nil {
			return mapErr(err)
		}
		if n > 0 {
			return ErrFactorExists
		}
		if err := tx.Where("user_id = ? AND kind = ? AND confirmed_at IS NULL", f.UserID, f.Kind).Delete(&factorRow{}).Error; err != nil {
			return mapErr(err)
		}
		return mapErr(tx.Create(&factorRow{ID: f.ID, UserID: f.UserID, Kind: f.Kind, Name: f.Name, SecretSealed: f.SealedSecret, CreatedAt: now}).Error)
	})
	if err != nil {
		return fmt.Errorf("create factor: %w", err)
	}
	return nil
}

// lockUser reads user id's row, locked for the transaction on PostgreSQL; ErrNotFound if there is none.
func lockUser(tx *gorm.DB, id string, u *userRow) error {
	q := tx
	if tx.Dialector.Name() == "postgres" {
		q = tx.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return mapErr(q.Where("id = ?", id).Take(u).Error)
}

// Factors returns the user's factors, pending ones included, oldest first.
func (s *Store) Factors(ctx context.Context, userID string) ([]Factor, error) {
	var rows []factorRow
	if err := s.conn(ctx).Where("user_id = ?", userID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list factors: %w", mapErr(err))
	}
	out := make([]Factor, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.factor())
	}
	return out, nil
}

// Factor returns factor id of user userID; ErrNotFound if the user has no such factor.
func (s *Store) Factor(ctx context.Context, userID, id string) (*Factor, error) {
	var r factorRow
	if err := s.conn(ctx).Where("id = ? AND user_id = ?", id, userID).Take(&r).Error; err != nil {
		return nil, fmt.Errorf("get factor: %w", mapErr(err))
	}
	f := r.factor()
	return &f, nil
}

// ErrCodeUsed: the TOTP time step was already accepted (or a later one was): the code is a replay.
var ErrCodeUsed = errors.New("code already used")

// UseFactorStep accepts TOTP time step step of factor id once, atomically: it records the step only if no step at
// or after it has been accepted, and it is the whole guard against replaying a code, on every node.
// ErrCodeUsed if the step (or a later one) was accepted already; ErrNotFound if the factor is not active.
func (s *Store) UseFactorStep(ctx context.Context, id string, step int64) error {
	now := dbTime(s.now())
	res := s.conn(ctx).Exec(`UPDATE user_factors SET last_used_step = ?, last_used_at = ?
WHERE id = ? AND confirmed_at IS NOT NULL AND (last_used_step IS NULL OR last_used_step < ?)`, step, now, id, step)
	if res.Error != nil {
		return fmt.Errorf("use factor code: %w", mapErr(res.Error))
	}
	if res.RowsAffected == 1 {
		return nil
	}
	if _, err := s.factorByID(ctx, id, true); err != nil {
		return fmt.Errorf("use factor code: %w", err)
	}
	return fmt.Errorf("use factor code: %w", ErrCodeUsed)
}

func (s *Store) factorByID(ctx context.Context, id string, active bool) (*factorRow, error) {
	q := s.conn(ctx).Where("id = ?", id)
	if active {
		q = q.Where("confirmed_at IS NOT NULL")
	}
	var r factorRow
	if err := q.Take(&r).Error; err != nil {
		return nil, mapErr(err)
	}
	return &r, nil
}

// ConfirmFactor activates pending factor id of user userID with its first code's time step, and replaces the
// user's recovery codes with recoveryHashes, in one transaction: ErrNotFound if there is no such pending factor
// (never confirmed twice).
func (s *Store) ConfirmFactor(ctx context.Context, userID, id string, step int64, recoveryHashes []string) error {
	now := dbTime(s.now())
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE user_factors SET confirmed_at = ?, last_used_at = ?, last_used_step = ?
WHERE id = ? AND user_id = ? AND confirmed_at IS NULL`, now, now, step, id, userID)
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected != 1 {
			return ErrNotFound
		}
		if err := recordEvent(ctx, tx, Event{Type: EventMFAEnrolled, UserID: userID, Details: map[string]any{"factor_id": id}}); err != nil {
			return err
		}
		return replaceRecoveryCodes(tx, userID, recoveryHashes, now)
	})
	if err != nil {
		return fmt.Errorf("confirm factor: %w", err)
	}
	return nil
}

type recoveryCodeRow struct {
	UserID    string     `gorm:"column:user_id;primaryKey"`
	CodeHash  string     `gorm:"column:code_hash;primaryKey"`
	CreatedAt time.Time  `gorm:"column:created_at"`
	UsedAt    *time.Time `gorm:"column:used_at"`
}

func (recoveryCodeRow) TableName() string { return "mfa_recovery_codes" }

func replaceRecoveryCodes(tx *gorm.DB, userID string, hashes []string, now time.Time) error {
	if err := tx.Where("user_id = ?", userID).Delete(&recoveryCodeRow{}).Error; err != nil {
		return mapErr(err)
	}
	for _, h := range hashes {
		if err := tx.Create(&recoveryCodeRow{UserID: userID, CodeHash: h, CreatedAt: now}).Error; err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// UseRecoveryCode spends the recovery code of user userID whose hash is codeHash, once, atomically: ErrNotFound
// if the user has no such unused code.
func (s *Store) UseRecoveryCode(ctx context.Context, userID, codeHash string) error {
	res := s.conn(ctx).Model(&recoveryCodeRow{}).Where("user_id = ? AND code_hash = ? AND used_at IS NULL", userID, codeHash).
		UpdateColumn("used_at", dbTime(s.now()))
	if res.Error != nil {
		return fmt.Errorf("use recovery code: %w", mapErr(res.Error))
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("use recovery code: %w", ErrNotFound)
	}
	return nil
}

// RecoveryCodesLeft is how many unused recovery codes user userID has.
func (s *Store) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int64
	if err := s.conn(ctx).Model(&recoveryCodeRow{}).Where("user_id = ? AND used_at IS NULL", userID).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count recovery codes: %w", mapErr(err))
	}
	return int(n), nil
}

// DeleteFactor removes factor id of user userID; with the user's last active factor go the recovery codes.
// ErrNotFound if the user has no such factor.
func (s *Store) DeleteFactor(ctx context.Context, userID, id string) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Where("id = ? AND user_id = ?", id, userID).Delete(&factorRow{})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected != 1 {
			return ErrNotFound
		}
		if err := recordEvent(ctx, tx, Event{Type: EventMFARemoved, UserID: userID, Details: map[string]any{"factor_id": id}}); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&factorRow{}).Where("user_id = ? AND confirmed_at IS NOT NULL", userID).Count(&n).Error; err != nil {
			return mapErr(err)
		}
		if n == 0 {
			return mapErr(tx.Where("user_id = ?", userID).Delete(&recoveryCodeRow{}).Error)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete factor: %w", err)
	}
	return nil
}

// ResetMFA removes every factor (passkeys too), recovery code and open challenge (WebAuthn ceremonies too) of user userID (an operator's reset, for a
// user who lost their device) and returns how many factors went; ErrNotFound if there is no such user.
func (s *Store) ResetMFA(ctx context.Context, userID string) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var u userRow
		if err := lockUser(tx, userID, &u); err != nil {
			return err
		}
		res := tx.Where("user_id = ?", userID).Delete(&factorRow{})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		n = res.RowsAffected
		if err := recordEvent(ctx, tx, Event{Type: EventMFAReset, UserID: userID, Pool: u.Pool, Details: map[string]any{"factors_removed": n}}); err != nil {
			return err
		}
		if err := tx.Where("user_id = ?", userID).Delete(&recoveryCodeRow{}).Error; err != nil {
			return mapErr(err)
		}
		if err := tx.Where("user_id = ?", userID).Delete(&ceremonyRow{}).Error; err != nil {
			return mapErr(err)
		}
		return mapErr(tx.Where("user_id = ?", userID).Delete(&mfaChallengeRow{}).Error)
	})
	if err != nil {
		return 0, fmt.Errorf("reset mfa of user %q: %w", userID, err)
	}
	return int(n), nil
}

// MFAChallenge is what a checked password left for the second factor to finish: whose sign-in, through which
// client, for what (Purpose: the caller's, e.g. "login" or "enroll"), and Data the caller needs to resume it.
type MFAChallenge struct {
	UserID    string
	ClientID  string
	Purpose   string
	Data      string
	ExpiresAt time.Time
}

type mfaChallengeRow struct {
	TokenHash string     `gorm:"column:token_hash;primaryKey"`
	UserID    string     `gorm:"column:user_id"`
	ClientID  string     `gorm:"column:client_id"`
	Purpose   string     `gorm:"column:purpose"`
	Data      string     `gorm:"column:data"`
	CreatedAt time.Time  `gorm:"column:created_at"`
	ExpiresAt time.Time  `gorm:"column:expires_at"`
	UsedAt    *time.Time `gorm:"column:used_at"`
}

func (mfaChallengeRow) TableName() string { return "mfa_challenges" }

// CreateMFAChallenge stores c, valid for ttl, and returns its token (256 random bits; only its hash is kept).
func (s *Store) CreateMFAChallenge(ctx context.Context, c MFAChallenge, ttl time.Duration) (string, error) {
	token, err := newSecretToken()
	if err != nil {
		return "", fmt.Errorf("create mfa challenge: %w", err)
	}
	now := dbTime(s.now())
	row := mfaChallengeRow{TokenHash: hashKey(token), UserID: c.UserID, ClientID: c.ClientID, Purpose: c.Purpose, Data: c.Data,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.conn(ctx).Create(&row).Error; err != nil {
		return "", fmt.Errorf("create mfa challenge: %w", mapErr(err))
	}
	return "mfa_" + token, nil
}

func challengeHash(token string) (string, bool) {
	raw, ok := strings.CutPrefix(token, "mfa_")
	if !ok || len(raw) > 64 {
		return "", false
	}
	return hashKey(raw), true
}

// PeekMFAChallenge returns the open (unused, unexpired) challenge of token with purpose, without using it;
// ErrNotFound if there is none.
func (s *Store) PeekMFAChallenge(ctx context.Context, token, purpose string) (*MFAChallenge, error) {
	h, ok := challengeHash(token)
	if !ok {
		return nil, fmt.Errorf("get mfa challenge: %w", ErrNotFound)
	}
	var r mfaChallengeRow
	err := s.conn(ctx).Where("token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?", h, purpose, dbTime(s.now())).Take(&r).Error
	if err != nil {
		return nil, fmt.Errorf("get mfa challenge: %w", mapErr(err))
	}
	return &MFAChallenge{UserID: r.UserID, ClientID: r.ClientID, Purpose: r.Purpose, Data: r.Data, ExpiresAt: r.ExpiresAt.UTC()}, nil
}

// ReserveMFAChallenge takes the open challenge of token with purpose for the caller alone, atomically: of any
// number of concurrent callers one gets it, the others ErrNotFound, as for a used, expired or unknown token.
// The caller then checks the second factor and either keeps it used (the sign-in went ahead) or gives it back
// with ReleaseMFAChallenge (a wrong code: the person may try again, within the throttle).
func (s *Store) ReserveMFAChallenge(ctx context.Context, token, purpose string) (*MFAChallenge, error) {
	h, ok := challengeHash(token)
	if !ok {
		return nil, fmt.Errorf("reserve mfa challenge: %w", ErrNotFound)
	}
	now := dbTime(s.now())
	res := s.conn(ctx).Model(&mfaChallengeRow{}).Where("token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?", h, purpose, now).
		UpdateColumn("used_at", now)
	if res.Error != nil {
		return nil, fmt.Errorf("reserve mfa challenge: %w", mapErr(res.Error))
	}
	if res.RowsAffected != 1 {
		return nil, fmt.Errorf("reserve mfa challenge: %w", ErrNotFound)
	}
	var r mfaChallengeRow
	if err := s.conn(ctx).Where("token_hash = ?", h).Take(&r).Error; err != nil {
		return nil, fmt.Errorf("reserve mfa challenge: %w", mapErr(err))
	}
	return &MFAChallenge{UserID: r.UserID, ClientID: r.ClientID, Purpose: r.Purpose, Data: r.Data, ExpiresAt: r.ExpiresAt.UTC()}, nil
}

// ReleaseMFAChallenge gives back a challenge ReserveMFAChallenge took, unused again.
func (s *Store) ReleaseMFAChallenge(ctx context.Context, token string) error {
	h, ok := challengeHash(token)
	if !ok {
		return nil
	}
	if err := s.conn(ctx).Model(&mfaChallengeRow{}).Where("token_hash = ?", h).UpdateColumn("used_at", nil).Error; err != nil {
		return fmt.Errorf("release mfa challenge: %w", mapErr(err))
	}
	return nil
}

// CheckedUser returns user id as Authenticate returned it when its password was checked, for the second step of
// a two-step sign-in: stamp is the CredentialStamp recorded at the password check. ErrInvalidCredentials if the
// password changed since (or there is no such user), ErrUserDisabled if the user was disabled. Starting the
// session re-checks the password under the user's lock, as after Authenticate.
func (s *Store) CheckedUser(ctx context.Context, id, stamp string) (*User, error) {
	var row userRow
	err := s.conn(ctx).Where("id = ?", id).Take(&row).Error
	if errors.Is(mapErr(err), ErrNotFound) {
		return nil, ErrInvalidCredentials
	} else if err != nil {
		return nil, fmt.Errorf("checked user: %w", mapErr(err))
	}
	if stamp == "" || credentialStamp(row.PasswordHash) != stamp {
		return nil, ErrInvalidCredentials
	}
	u, err := row.user()
	if err != nil {
		return nil, fmt.Errorf("checked user: %w", err)
	}
	u.credential = row.PasswordHash
	if u.Disabled {
		return u, ErrUserDisabled
	}
	return u, nil
}
