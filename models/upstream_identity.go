package models

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Errors of UserForUpstream: why an upstream account signs in to no user.
var (
	// ErrUpstreamEmailUnverified: a user of the pool has the account's email, and the upstream does not say it
	// verified it. Linking on an unverified email would let anyone who types a victim's address upstream
	// become the victim here.
	ErrUpstreamEmailUnverified = errors.New("a user has this email, and the other provider has not verified it")
	// ErrUpstreamSignupClosed: nobody has this account or its email, and the pool does not allow sign-up.
	ErrUpstreamSignupClosed = errors.New("no user has this account, and the pool does not allow sign-up")
	// ErrUpstreamSignupUnverified: nobody has this account or its email, and the other provider has not verified
	// the email: no account is made on an address nobody proved (whoever made it could keep it when the owner
	// claims the address later).
	ErrUpstreamSignupUnverified = errors.New("no user has this account, and the other provider has not verified its email")
	// ErrUpstreamNoEmail: the upstream gave no usable email, which a new user needs.
	ErrUpstreamNoEmail = errors.New("the other provider gave no usable email address")
)

// UpstreamAccount is what an upstream provider said about the person signing in.
type UpstreamAccount struct {
	ProviderID    string
	Pool          string // the provider's pool
	Subject       string // the upstream's stable id of the account (sub; GitHub's numeric user id)
	Email         string
	EmailVerified bool // the upstream says it verified Email
	Name          string
	Roles         []string // mapped from the upstream (claim_roles); given to a user it creates
}

type userIdentityRow struct {
	ProviderID string    `gorm:"column:provider_id;primaryKey"`
	Subject    string    `gorm:"column:subject;primaryKey"`
	UserID     string    `gorm:"column:user_id"`
	CreatedAt  time.Time `gorm:"column:created_at"`
}

func (userIdentityRow) TableName() string { return "user_identities" }

// UserForUpstream returns the user an upstream account signs in as, linking or creating one, atomically:
//  1. the user already linked to (provider, subject);
//  2. else the pool's user with the account's email, linked now, only if the upstream verified the email
//     (ErrUpstreamEmailUnverified otherwise);
//  3. else a new user, if the pool allows sign-up (ErrUpstreamSignupClosed otherwise), with email_verified as
//     the upstream says and the mapped roles (the pool's default roles if none).
//
// Two concurrent first sign-ins of one account link it once: the loser of the race reads the winner's link.
func (s *Store) UserForUpstream(ctx context.Context, a UpstreamAccount) (*User, error) {
	if a.ProviderID == "" || a.Subject == "" || len(a.Subject) > 255 || !storableText(a.Subject) {
		return nil, fmt.Errorf("user for upstream account: %w: no usable subject", ErrInvalid)
	}
	var user *User
	var err error
	for range 2 {
		user, err = s.userForUpstreamOnce(ctx, a)
		if !errors.Is(err, ErrConflict) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("user for upstream account: %w", err)
	}
	return user, nil
}

func (s *Store) userForUpstreamOnce(ctx context.Context, a UpstreamAccount) (*User, error) {
	pool := poolOrDefault(a.Pool)
	now := dbTime(s.now())
	var found userRow
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var link userIdentityRow
		err := tx.Where("provider_id = ? AND subject = ?", a.ProviderID, a.Subject).Take(&link).Error
		if err == nil {
			return mapErr(tx.Where("id = ?", link.UserID).Take(&found).Error)
		} else if !errors.Is(err, gorm.ErrRecordNotFound) {
			return mapErr(err)
		}
		email := strings.TrimSpace(a.Email)
		if validateEmail(email) != nil {
			return ErrUpstreamNoEmail
		}
		err = tx.Where("pool = ? AND email_normalized = ?", pool, normalizeEmail(email)).Take(&found).Error
		switch {
		case err == nil:
			if !a.EmailVerified {
				return ErrUpstreamEmailUnverified
			}
			if !found.EmailVerified {
				if err := claimUnprovedAccount(tx, &found, now); err != nil {
					return err
				}
			}
		case !errors.Is(err, gorm.ErrRecordNotFound):
			return mapErr(err)
		case !a.EmailVerified:
			return ErrUpstreamSignupUnverified
		default:
			if found, err = s.newUpstreamUser(tx, pool, email, a, now); err != nil {
				return err
			}
		}
		link = userIdentityRow{ProviderID: a.ProviderID, Subject: a.Subject, UserID: found.ID, CreatedAt: now}
		if err := tx.Create(&link).Error; errors.Is(err, gorm.ErrDuplicatedKey) {
			return ErrConflict
		} else if err != nil {
			return mapErr(err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return found.user()
}

// newUpstreamUser creates, in tx, the user an upstream account signs up as.
func (s *Store) newUpstreamUser(tx *gorm.DB, pool, email string, a UpstreamAccount, now time.Time) (userRow, error) {
	var p poolRow
	if err := tx.Where("name = ?", pool).Take(&p).Error; err != nil {
		return userRow{}, mapErr(err)
	}
	if !p.SignupEnabled {
		return userRow{}, ErrUpstreamSignupClosed
	}
	roles := a.Roles
	if len(roles) == 0 {
		var err error
		if roles, err = decodeList(p.DefaultRoles); err != nil {
			return userRow{}, err
		}
	}
	name, err := normalizeName(a.Name)
	if err != nil {
		name = "" // an upstream's odd display name is no reason to refuse the sign-in
	}
	hash, err := newUnusablePasswordHash()
	if err != nil {
		return userRow{}, err
	}
	id, err := newUserID()
	if err != nil {
		return userRow{}, err
	}
	row := userRow{
		ID: id, Email: email, EmailNormalized: normalizeEmail(email), Pool: pool, PasswordHash: hash,
		Roles: encodeList(roles), Name: name, Extras: "{}", EmailVerified: a.EmailVerified, CreatedAt: now, UpdatedAt: now,
	}
	if err := tx.Create(&row).Error; errors.Is(err, gorm.ErrDuplicatedKey) {
		return userRow{}, ErrConflict // created meanwhile: the retry finds (and, if verified, links) it
	} else if err != nil {
		return userRow{}, mapErr(err)
	}
	ev := Event{Type: EventUserCreated, UserID: id, Pool: pool, Details: map[string]any{"email": email, "upstream": a.ProviderID}}
	return row, recordEvent(txContext(tx), tx, ev)
}

// CreateUpstreamSession starts a browser session for userID, who just signed in through another provider
// (UserForUpstream): like CreateBrowserSession, but vouched for by the upstream rather than a password. A
// disabled user is ErrUserDisabled.
func (s *Store) CreateUpstreamSession(ctx context.Context, userID, ip, userAgent string, now time.Time, idle, absolute time.Duration) (*BrowserSession, string, error) {
	return s.CreateUpstreamSessionAuth(ctx, userID, AuthMethodUpstream, ip, userAgent, now, idle, absolute)
}

// CreateUpstreamSessionAuth is CreateUpstreamSession recording method (AuthMethodOf), e.g. ["fed","otp","mfa"]
// after the user's second factor.
func (s *Store) CreateUpstreamSessionAuth(ctx context.Context, userID, method, ip, userAgent string, now time.Time, idle, absolute time.Duration) (*BrowserSession, string, error) {
	bs, token, err := s.startSession(ctx, userID, "", method, ip, userAgent, now, idle, absolute, func(userRow) error { return nil })
	if err != nil {
		return nil, "", fmt.Errorf("create upstream session: %w", err)
	}
	return bs, token, nil
}

// UpstreamLogin is a sign-in through another provider under way, from the redirect upstream to the callback.
type UpstreamLogin struct {
	State         string // sent upstream; stored hashed
	BrowserSecret string // in a cookie of the browser that started it; stored hashed
	ProviderID    string
	Nonce         string // OIDC nonce
	CodeVerifier  string // PKCE
	Pending       string // the sealed authorization request being signed in to; "" for a direct sign-in
	ReturnTo      string // a direct sign-in's local return path
	ExpiresAt     time.Time
}

type upstreamLoginRow struct {
	StateHash    string    `gorm:"column:state_hash;primaryKey"`
	ProviderID   string    `gorm:"column:provider_id"`
	BrowserHash  string    `gorm:"column:browser_hash"`
	Nonce        string    `gorm:"column:nonce"`
	CodeVerifier string    `gorm:"column:code_verifier"`
	Pending      string    `gorm:"column:pending"`
	ReturnTo     string    `gorm:"column:return_to"`
	ExpiresAt    time.Time `gorm:"column:expires_at"`
}

func (upstreamLoginRow) TableName() string { return "upstream_logins" }

// CreateUpstreamLogin records a sign-in sent upstream.
func (s *Store) CreateUpstreamLogin(ctx context.Context, l UpstreamLogin) error {
	if l.State == "" || l.BrowserSecret == "" || len(l.Pending) > maxUpstreamPending || len(l.ReturnTo) > 2048 {
		return fmt.Errorf("create upstream login: %w", ErrInvalid)
	}
	row := upstreamLoginRow{
		StateHash: hashKey(l.State), ProviderID: l.ProviderID, BrowserHash: hashKey(l.BrowserSecret), Nonce: l.Nonce,
		CodeVerifier: l.CodeVerifier, Pending: l.Pending, ReturnTo: l.ReturnTo, ExpiresAt: dbTime(l.ExpiresAt),
	}
	if err := s.conn(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("create upstream login: %w", mapErr(err))
	}
	return nil
}

// maxUpstreamPending bounds a stored sealed authorization request (an 8 KiB query, sealed and base64url'd).
const maxUpstreamPending = (MaxChallengeQuery+512)*4/3 + 64

// TakeUpstreamLogin returns the sign-in started with state in the browser holding browserSecret, and deletes
// it: of two callbacks with one state, one gets it. ErrNotFound if there is none, it expired at now, or another
// browser started it (which also burns it: a state seen in the wrong browser is no longer trusted anywhere).
func (s *Store) TakeUpstreamLogin(ctx context.Context, state, browserSecret string, now time.Time) (*UpstreamLogin, error) {
	var row upstreamLoginRow
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("state_hash = ?", hashKey(state)).Take(&row).Error; err != nil {
			return mapErr(err)
		}
		res := tx.Where("state_hash = ?", row.StateHash).Delete(&upstreamLoginRow{})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound // taken meanwhile
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("take upstream login: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(row.BrowserHash), []byte(hashKey(browserSecret))) != 1 || !now.Before(row.ExpiresAt) {
		return nil, fmt.Errorf("take upstream login: %w", ErrNotFound)
	}
	return &UpstreamLogin{
		State: state, BrowserSecret: browserSecret, ProviderID: row.ProviderID, Nonce: row.Nonce,
		CodeVerifier: row.CodeVerifier, Pending: row.Pending, ReturnTo: row.ReturnTo, ExpiresAt: row.ExpiresAt.UTC(),
	}, nil
}

// claimUnprovedAccount, in tx, hands a local account whose email nobody had proved to the person the other
// provider just proved owns that mailbox. Whoever made the account may not be that person (a sign-up with
// someone else's address, waiting for them: pre-account takeover), so what they set up is undone: the password
// no longer signs in (the owner can set one with "forgot password"), every session ends (and its tokens; the
// apps are told), and second factors, recovery codes and other providers' links go. The email is then verified.
func claimUnprovedAccount(tx *gorm.DB, u *userRow, now time.Time) error {
	hash, err := newUnusablePasswordHash()
	if err != nil {
		return err
	}
	if _, err := endUserSessions(tx, u.ID, "", now); err != nil {
		return err
	}
	for _, table := range []string{"user_factors", "mfa_recovery_codes", "user_identities"} {
		if err := tx.Exec("DELETE FROM "+table+" WHERE user_id = ?", u.ID).Error; err != nil {
			return mapErr(err)
		}
	}
	res := tx.Model(&userRow{}).Where("id = ? AND email_verified = ?", u.ID, false).
		Updates(map[string]any{"password_hash": hash, "email_verified": true, "updated_at": now})
	if res.Error != nil {
		return mapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrConflict // verified meanwhile: the retry links it as a verified account
	}
	u.PasswordHash, u.EmailVerified, u.UpdatedAt = hash, true, now
	// The upstream proved the address: the account is now its owner's, verified (and its old password gone).
	return recordEvent(txContext(tx), tx, Event{Type: EventEmailVerified, UserID: u.ID, Pool: u.Pool,
		Details: map[string]any{"claimed_through": "upstream"}})
}
