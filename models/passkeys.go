package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Passkeys (WebAuthn) storage: a passkey is a factor of kind FactorWebAuthn whose row also holds the credential
// (migration 21), and the ceremonies between a WebAuthn begin and its finish are rows taken by the finish in one
// statement. What a credential and a ceremony mean is package passkey's; the guards are here.

// AuthMethodPasskey is the AuthMethod (amr "hwk user mfa") of a sign-in with a passkey alone: a key the user
// holds, unlocked by user verification, which is two factors (RFC 8176).
const AuthMethodPasskey = "hwk user mfa"

// Passkey is the WebAuthn credential of a factor. Binary values are base64url without padding.
type Passkey struct {
	CredentialID    string   `json:"credential_id"`
	PublicKey       string   `json:"-"` // COSE_Key
	SignCount       uint32   `json:"sign_count"`
	AAGUID          string   `json:"aaguid,omitempty"`
	Transports      []string `json:"transports,omitempty"`
	BackupEligible  bool     `json:"backup_eligible"`
	BackupState     bool     `json:"backed_up"`
	AttestationType string   `json:"-"`
}

func (c factorRow) passkey() *Passkey {
	if c.CredentialID == nil {
		return nil
	}
	return &Passkey{CredentialID: *c.CredentialID, PublicKey: c.PublicKey, SignCount: uint32(c.SignCount), AAGUID: c.AAGUID,
		Transports: strings.Fields(c.Transports), BackupEligible: c.BackupEligible, BackupState: c.BackupState, AttestationType: c.AttestationType}
}

// MaxPasskeys is how many passkeys a user may have: enough for every device, few enough to list.
const MaxPasskeys = 20

// ErrTooManyPasskeys: the user has MaxPasskeys already.
var ErrTooManyPasskeys = errors.New("too many passkeys")

// AddPasskey stores f (ID from NewFactorID, Passkey set) as an active passkey of f.UserID: a verified
// registration is its confirmation. ErrConflict if the credential is registered already (to anyone),
// ErrTooManyPasskeys at MaxPasskeys, ErrNotFound if there is no such user.
func (s *Store) AddPasskey(ctx context.Context, f Factor) error {
	if f.Passkey == nil || f.Passkey.CredentialID == "" || f.Passkey.PublicKey == "" {
		return fmt.Errorf("add passkey: %w: no credential", ErrInvalid)
	}
	now := dbTime(s.now())
	pk := f.Passkey
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var u userRow
		// Locks the user (PostgreSQL), so the cap holds against concurrent registrations.
		if err := lockUser(tx, f.UserID, &u); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&factorRow{}).Where("user_id = ? AND kind = ?", f.UserID, FactorWebAuthn).Count(&n).Error; err != nil {
			return mapErr(err)
		}
		if n >= MaxPasskeys {
			return ErrTooManyPasskeys
		}
		cred := pk.CredentialID
		row := factorRow{ID: f.ID, UserID: f.UserID, Kind: FactorWebAuthn, Name: f.Name, CreatedAt: now, ConfirmedAt: &now,
			CredentialID: &cred, PublicKey: pk.PublicKey, SignCount: int64(pk.SignCount), AAGUID: pk.AAGUID,
			Transports: strings.Join(pk.Transports, " "), BackupEligible: pk.BackupEligible, BackupState: pk.BackupState, AttestationType: pk.AttestationType}
		err := tx.Create(&row).Error
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return ErrConflict
		}
		if err != nil {
			return mapErr(err)
		}
		return recordEvent(ctx, tx, Event{Type: EventMFAEnrolled, UserID: f.UserID, Pool: u.Pool,
			Details: map[string]any{"factor_id": f.ID, "kind": FactorWebAuthn}})
	})
	if err != nil {
		return fmt.Errorf("add passkey: %w", err)
	}
	return nil
}

// PasskeyByCredentialID returns the active passkey whose credential id (base64url) is credentialID;
// ErrNotFound if there is none.
func (s *Store) PasskeyByCredentialID(ctx context.Context, credentialID string) (*Factor, error) {
	var r factorRow
	err := s.conn(ctx).Where("credential_id = ? AND kind = ? AND confirmed_at IS NOT NULL", credentialID, FactorWebAuthn).Take(&r).Error
	if err != nil {
		return nil, fmt.Errorf("get passkey: %w", mapErr(err))
	}
	f := r.factor()
	return &f, nil
}

// ErrSignCount: the authenticator's signature counter did not grow past the one recorded, which the WebAuthn
// specification (§7.2 step 21) reads as a sign of a cloned authenticator.
var ErrSignCount = errors.New("passkey signature counter did not increase")

// UsePasskey records a verified assertion of passkey factorID whose authenticator counted signCount, and
// returns its user, able to start a session (CreateBrowserSession) while the password is what it is now.
// The counter is the guard, in one conditional UPDATE: a non-zero counter must exceed the recorded one (two
// concurrent uses of one count cannot both pass), and zero is accepted only while zero is recorded (an
// authenticator that keeps no counter). ErrSignCount otherwise; ErrNotFound if there is no such active passkey;
// ErrUserDisabled (with the user) if its user is disabled; ErrEmailNotVerified (with the user, the use recorded)
// if the user's pool requires a verified email the user has not verified, as Authenticate answers a password.
func (s *Store) UsePasskey(ctx context.Context, factorID string, signCount uint32, backupState bool) (*User, error) {
	now := dbTime(s.now())
	var u *User
	unverified := false
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE user_factors SET sign_count = ?, backup_state = ?, last_used_at = ?
WHERE id = ? AND kind = ? AND confirmed_at IS NOT NULL AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`,
			int64(signCount), backupState, now, factorID, FactorWebAuthn, int64(signCount), int64(signCount))
		if res.Error != nil {
			return mapErr(res.Error)
		}
		f, err := s.factorByIDTx(tx, factorID)
		if err != nil {
			return err
		}
		if res.RowsAffected != 1 {
			return ErrSignCount
		}
		var ur userRow
		if err := tx.Where("id = ?", f.UserID).Take(&ur).Error; err != nil {
			return mapErr(err)
		}
		if u, err = ur.user(); err != nil {
			return err
		}
		u.credential, u.byPasskey = ur.PasswordHash, true
		if ur.Disabled {
			return ErrUserDisabled
		}
		unverified, err = mustVerifyEmail(tx, ur.Pool, ur.EmailVerified)
		return err
	})
	if errors.Is(err, ErrUserDisabled) {
		return u, err
	}
	if err != nil {
		return nil, fmt.Errorf("use passkey: %w", err)
	}
	if unverified {
		return u, ErrEmailNotVerified
	}
	return u, nil
}

func (s *Store) factorByIDTx(tx *gorm.DB, id string) (*factorRow, error) {
	var r factorRow
	if err := tx.Where("id = ? AND kind = ? AND confirmed_at IS NOT NULL", id, FactorWebAuthn).Take(&r).Error; err != nil {
		return nil, mapErr(err)
	}
	return &r, nil
}

// RenamePasskey names passkey id of user userID; ErrNotFound if the user has no such passkey.
func (s *Store) RenamePasskey(ctx context.Context, userID, id, name string) error {
	res := s.conn(ctx).Model(&factorRow{}).Where("id = ? AND user_id = ? AND kind = ?", id, userID, FactorWebAuthn).UpdateColumn("name", name)
	if res.Error != nil {
		return fmt.Errorf("rename passkey: %w", mapErr(res.Error))
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("rename passkey: %w", ErrNotFound)
	}
	return nil
}

// WebAuthn ceremony kinds.
const (
	CeremonyRegister = "register" // adding a passkey to UserID
	CeremonyMFA      = "mfa"      // a passkey as UserID's second factor, bound to an MFA challenge
	CeremonySignIn   = "sign-in"  // a discoverable passkey sign-in; no user until the assertion names one
)

// Ceremony is what a WebAuthn begin left for its finish: the session data (package passkey's, opaque here), whose
// ceremony it is and what it is bound to (BoundTo: a hash the caller chose, e.g. of the MFA challenge token, or
// of the client id of a sign-in).
type Ceremony struct {
	Kind        string
	UserID      string
	BoundTo     string
	SessionData string
}

type ceremonyRow struct {
	ChallengeHash string    `gorm:"column:challenge_hash;primaryKey"`
	Kind          string    `gorm:"column:kind"`
	UserID        string    `gorm:"column:user_id"`
	BoundTo       string    `gorm:"column:bound_to"`
	SessionData   string    `gorm:"column:session_data"`
	CreatedAt     time.Time `gorm:"column:created_at"`
	ExpiresAt     time.Time `gorm:"column:expires_at"`
}

func (ceremonyRow) TableName() string { return "webauthn_ceremonies" }

// SaveCeremony stores c under its challenge (the random challenge the authenticator signs), keyed by its hash,
// valid for ttl. The session data holds the challenge itself, which the finish compares: a nonce, not a
// secret (the authenticator's signature over it is what counts).
func (s *Store) SaveCeremony(ctx context.Context, challenge string, c Ceremony, ttl time.Duration) error {
	now := dbTime(s.now())
	row := ceremonyRow{ChallengeHash: hashKey(challenge), Kind: c.Kind, UserID: c.UserID, BoundTo: c.BoundTo, SessionData: c.SessionData,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.conn(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("save webauthn ceremony: %w", mapErr(err))
	}
	return nil
}

// TakeCeremony removes and returns the unexpired ceremony of kind whose challenge is challenge, in one DELETE ...
// RETURNING: of any number of concurrent finishes (on any node) one gets it, the others ErrNotFound, as for a
// used, expired or unknown challenge. A ceremony counts once whatever its finish then decides.
func (s *Store) TakeCeremony(ctx context.Context, challenge, kind string) (*Ceremony, error) {
	var rows []ceremonyRow
	err := s.conn(ctx).Raw(`DELETE FROM webauthn_ceremonies WHERE challenge_hash = ? AND kind = ? AND expires_at > ?
RETURNING challenge_hash, kind, user_id, bound_to, session_data, created_at, expires_at`, hashKey(challenge), kind, dbTime(s.now())).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("take webauthn ceremony: %w", mapErr(err))
	}
	if len(rows) != 1 {
		return nil, fmt.Errorf("take webauthn ceremony: %w", ErrNotFound)
	}
	r := rows[0]
	return &Ceremony{Kind: r.Kind, UserID: r.UserID, BoundTo: r.BoundTo, SessionData: r.SessionData}, nil
}
