package models

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Mail tokens prove that someone reads a user's mailbox: a mail carries a link (a 256-bit token) and a 6-digit
// code typed by hand. Only hashes are stored; each is single use (the update that marks it used is the check),
// short-lived, and a code allows MaxCodeAttempts guesses, each reserved before it is compared. Issuing a token
// of a purpose retires the user's earlier ones of that purpose, so only the latest mail works.

// Mail token purposes.
const (
	MailVerifyEmail   = "verify_email"
	MailResetPassword = "reset_password"
	// MailSignIn signs in without a password (the pool's PasswordlessCodes): see SignInWithMailToken.
	MailSignIn = "sign_in"
)

// OutboxMail is the kind of outbox message that carries a rendered mail; its payload is a MailMessage.
const OutboxMail = "mail"

// OutboxMailRequest is the kind of outbox message that carries a mail someone asked for (email/resend,
// password/forgot, otp/start) before anything about the address is looked up; its payload is a MailRequest. The
// request queues it whatever the address, so the answer is the same and takes the same time, and a node that
// stops after answering loses nothing; the outbox worker then issues the token and queues the mail itself
// (SendMailToken), or nothing when there is no such account.
const OutboxMailRequest = "mail_request"

// MailRequest is a mail of Purpose asked for Email in Pool through the first-party client ClientID.
type MailRequest struct {
	Purpose  string `json:"purpose"`
	Pool     string `json:"pool"`
	Email    string `json:"email"`
	ClientID string `json:"client_id"`
}

// MailMessage is a mail ready for SMTP: the envelope and the whole RFC 5322 message.
type MailMessage struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Message string `json:"message"`
}

// ComposeMail renders the mail of purpose for the address to, carrying the link token and the code.
type ComposeMail func(purpose, to, token, code string) (MailMessage, error)

// Lifetimes of mail tokens and codes, and the guesses a code allows.
const (
	VerifyLinkTTL   = 24 * time.Hour
	VerifyCodeTTL   = 15 * time.Minute
	ResetTTL        = 30 * time.Minute
	SignInTTL       = 10 * time.Minute
	MaxCodeAttempts = 5
)

// ErrMailToken: the token or code is unknown, used, expired, retired, or its guesses are spent. One error for
// all, so nothing tells a guesser which.
var ErrMailToken = errors.New("invalid or expired token or code")

// ErrEmailNotVerified is returned by Authenticate for the right password of a user whose pool requires a
// verified email they have not verified (with the user), and by UsePasskey for such a user's passkey.
var ErrEmailNotVerified = errors.New("email not verified")

// mustVerifyEmail says whether a sign-in of a user of pool whose email verification is verified must wait for
// it: the pool requires verified emails and this one is not. The one owner of the rule for every first factor.
func mustVerifyEmail(db *gorm.DB, pool string, verified bool) (bool, error) {
	if verified {
		return false, nil
	}
	var p poolRow
	if err := db.Select("require_email_verification").Where("name = ?", pool).Take(&p).Error; err != nil {
		return false, mapErr(err)
	}
	return p.RequireEmailVerification, nil
}

type mailTokenRow struct {
	ID            string     `gorm:"column:id;primaryKey"`
	UserID        string     `gorm:"column:user_id"`
	Purpose       string     `gorm:"column:purpose"`
	TokenHash     string     `gorm:"column:token_hash"`
	CodeHash      string     `gorm:"column:code_hash"`
	CodeAttempts  int        `gorm:"column:code_attempts"`
	ExpiresAt     time.Time  `gorm:"column:expires_at"`
	CodeExpiresAt time.Time  `gorm:"column:code_expires_at"`
	UsedAt        *time.Time `gorm:"column:used_at"`
	CreatedAt     time.Time  `gorm:"column:created_at"`
}

func (mailTokenRow) TableName() string { return "mail_tokens" }

// codeHash binds a code to its row: the same code in two rows hashes differently.
func codeHash(rowID, code string) string { return hashKey("mail-code\x00" + rowID + "\x00" + code) }

func newMailCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// issueMailToken retires userID's live tokens of purpose, stores a new one, composes its mail and queues it,
// all in tx.
func issueMailToken(tx *gorm.DB, userID, email, purpose string, now time.Time, compose ComposeMail) error {
	linkTTL, codeTTL := VerifyLinkTTL, VerifyCodeTTL
	switch purpose {
	case MailResetPassword:
		linkTTL, codeTTL = ResetTTL, ResetTTL
	case MailSignIn:
		linkTTL, codeTTL = SignInTTL, SignInTTL
	}
	token, err := newSecretToken()
	if err != nil {
		return err
	}
	code, err := newMailCode()
	if err != nil {
		return err
	}
	id, err := newPublicID("mtk_")
	if err != nil {
		return err
	}
	t := dbTime(now)
	// The user's row locked first (PostgreSQL; SQLite has one writer): two mails issued at once (the outbox
	// handles requests concurrently) are ordered, so the later one retires the earlier and one token stays live.
	if tx.Dialector.Name() == "postgres" {
		var u userRow
		if err := tx.Clauses(clause.Locking{Strength: "NO KEY UPDATE"}).Select("id").Where("id = ?", userID).Take(&u).Error; err != nil {
			return mapErr(err)
		}
	}
	if err := tx.Model(&mailTokenRow{}).Where("user_id = ? AND purpose = ? AND used_at IS NULL", userID, purpose).
		UpdateColumn("used_at", t).Error; err != nil {
		return mapErr(err)
	}
	row := mailTokenRow{
		ID: id, UserID: userID, Purpose: purpose, TokenHash: hashKey(token), CodeHash: codeHash(id, code),
		ExpiresAt: t.Add(linkTTL), CodeExpiresAt: t.Add(codeTTL), CreatedAt: t,
	}
	if err := tx.Create(&row).Error; err != nil {
		return mapErr(err)
	}
	msg, err := compose(purpose, email, token, code)
	if err != nil {
		return fmt.Errorf("compose mail: %w", err)
	}
	_, err = enqueueOutbox(tx, OutboxMail, "mailto:", msg, now)
	return err
}

// SendMailToken issues a token of purpose to the user with email in pool and queues its mail, in one
// transaction; ErrNotFound if there is no such user. For verification of an already verified user it does
// nothing and returns ErrConflict.
func (s *Store) SendMailToken(ctx context.Context, pool, email, purpose string, now time.Time, compose ComposeMail) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var u userRow
		err := tx.Where("pool = ? AND email_normalized = ?", poolOrDefault(pool), normalizeEmail(email)).Take(&u).Error
		if err != nil {
			return mapErr(err)
		}
		if purpose == MailVerifyEmail && u.EmailVerified {
			return ErrConflict
		}
		if u.Disabled {
			return ErrNotFound // a disabled account gets no mail; the caller answers as for an unknown one
		}
		return issueMailToken(tx, u.ID, u.Email, purpose, now, compose)
	})
	if err != nil {
		return fmt.Errorf("send %s mail: %w", purpose, err)
	}
	return nil
}

// MailTokenRef names a mail token: by its link Token, or by Pool, Email and Code.
type MailTokenRef struct {
	Token             string
	Pool, Email, Code string
}

// reserveMailToken finds the live token ref names and, for a code, counts one guess first (its own statement,
// committed whatever the guess turns out to be); it returns the row the token or code matched, or ErrMailToken.
func (s *Store) reserveMailToken(ctx context.Context, ref MailTokenRef, purpose string, now time.Time) (*mailTokenRow, error) {
	t := dbTime(now)
	db := s.conn(ctx)
	var row mailTokenRow
	if ref.Token != "" {
		err := db.Where("token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?", hashKey(ref.Token), purpose, t).
			Take(&row).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrMailToken
		}
		return &row, mapErr(err)
	}
	if len(ref.Code) != 6 {
		return nil, ErrMailToken
	}
	err := db.Table("mail_tokens").Select("mail_tokens.*").Joins("JOIN users ON users.id = mail_tokens.user_id").
		Where("users.pool = ? AND users.email_normalized = ? AND mail_tokens.purpose = ? AND mail_tokens.used_at IS NULL AND mail_tokens.code_expires_at > ?",
			poolOrDefault(ref.Pool), normalizeEmail(ref.Email), purpose, t).
		Order("mail_tokens.created_at DESC").Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrMailToken
	} else if err != nil {
		return nil, mapErr(err)
	}
	// The guess is counted before it is compared, and only while guesses remain: parallel guesses cannot
	// exceed the limit.
	res := db.Model(&mailTokenRow{}).Where("id = ? AND used_at IS NULL AND code_attempts < ?", row.ID, MaxCodeAttempts).
		UpdateColumn("code_attempts", gorm.Expr("code_attempts + 1"))
	if res.Error != nil {
		return nil, mapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, ErrMailToken
	}
	if subtle.ConstantTimeCompare([]byte(codeHash(row.ID, ref.Code)), []byte(row.CodeHash)) != 1 {
		return nil, ErrMailToken
	}
	return &row, nil
}

// useMailToken marks the row used in tx: exactly one caller gets true.
func useMailToken(tx *gorm.DB, id string, now time.Time) error {
	res := tx.Model(&mailTokenRow{}).Where("id = ? AND used_at IS NULL", id).UpdateColumn("used_at", dbTime(now))
	if res.Error != nil {
		return mapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrMailToken
	}
	return nil
}

// VerifyEmail uses a verification token or code and marks its user's email verified; ErrMailToken if it does
// not hold. It returns the user.
func (s *Store) VerifyEmail(ctx context.Context, ref MailTokenRef, now time.Time) (*User, error) {
	row, err := s.reserveMailToken(ctx, ref, MailVerifyEmail, now)
	if err != nil {
		return nil, fmt.Errorf("verify email: %w", err)
	}
	var u *User
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		if err := useMailToken(tx, row.ID, now); err != nil {
			return err
		}
		if err := updateUser(tx, row.UserID, map[string]any{"email_verified": true}, now); err != nil {
			return err
		}
		var ur userRow
		if err := tx.Where("id = ?", row.UserID).Take(&ur).Error; err != nil {
			return mapErr(err)
		}
		u, err = ur.user()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("verify email: %w", err)
	}
	return u, nil
}

// SignInWithMailToken uses a sign-in token or code (purpose MailSignIn) and marks its user's email verified (the
// mail reached its owner), in one transaction; ErrMailToken if it does not hold or its user is not of ref.Pool
// (a link token names no pool: the client's is checked here, before the token is used), ErrUserDisabled (with the user)
// if the account was disabled since the mail (the token stays unused). It returns the user, for the caller to
// sign in exactly as after a password.
func (s *Store) SignInWithMailToken(ctx context.Context, ref MailTokenRef, now time.Time) (*User, error) {
	row, err := s.reserveMailToken(ctx, ref, MailSignIn, now)
	if err != nil {
		return nil, fmt.Errorf("sign in with mail token: %w", err)
	}
	var u *User
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		var ur userRow
		if err := tx.Where("id = ?", row.UserID).Take(&ur).Error; err != nil {
			return mapErr(err)
		}
		if ur.Pool != poolOrDefault(ref.Pool) {
			return ErrMailToken
		}
		if u, err = ur.user(); err != nil {
			return err
		}
		// The session that follows starts only while the password (or its absence) is still as it was now.
		u.credential, u.byMailCode = ur.PasswordHash, true
		if ur.Disabled {
			return ErrUserDisabled
		}
		if err := useMailToken(tx, row.ID, now); err != nil {
			return err
		}
		if !ur.EmailVerified {
			if err := updateUser(tx, row.UserID, map[string]any{"email_verified": true}, now); err != nil {
				return err
			}
			u.EmailVerified = true
		}
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("sign in with mail token: %w", err)
	}
	return u, nil
}

// ResetPassword uses a reset token or code, sets the new password (check applies the password policy, given
// the user's email), marks the email verified (the mail reached its owner) and ends every session of the user
// (back-channel logout follows), in one transaction. ErrMailToken if the token or code does not hold; check's
// error as it is. It returns how many sessions it ended.
func (s *Store) ResetPassword(ctx context.Context, ref MailTokenRef, password string, check func(email string) error, now time.Time) (int, error) {
	if err := validatePassword(password); err != nil {
		return 0, fmt.Errorf("reset password: %w", err)
	}
	row, err := s.reserveMailToken(ctx, ref, MailResetPassword, now)
	if err != nil {
		return 0, fmt.Errorf("reset password: %w", err)
	}
	var ur userRow
	if err := s.conn(ctx).Where("id = ?", row.UserID).Take(&ur).Error; err != nil {
		return 0, fmt.Errorf("reset password: %w", mapErr(err))
	}
	if err := check(ur.Email); err != nil {
		return 0, err
	}
	hash, err := HashPassword(password) // before the transaction: no lock is held across the hash
	if err != nil {
		return 0, fmt.Errorf("reset password: %w", err)
	}
	var n int
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		if err := useMailToken(tx, row.ID, now); err != nil {
			return err
		}
		if err := updateUserEvent(tx, row.UserID, map[string]any{"password_hash": hash, "email_verified": true}, now, EventPasswordReset); err != nil {
			return err
		}
		n, err = endUserSessions(tx, row.UserID, "", now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("reset password: %w", err)
	}
	return n, nil
}
