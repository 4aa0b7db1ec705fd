package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/latchkey/latchkey/passwords"
)

// User is a person who can sign in.
type User struct {
	ID           string   `json:"id"`    // "usr_" + 26 base32 characters of 128 random bits
	Email        string   `json:"email"` // as entered, trimmed; unique case-insensitively within the pool
	Pool         string   `json:"pool"`  // the user population the user belongs to; see Pool
	PasswordHash string   `json:"-"`     // PHC-format argon2id
	Roles        []string `json:"roles"`
	Name         string   `json:"name"`
	// Extras are extra claims for the user's tokens; never nil when read from the store.
	Extras        map[string]any `json:"extras"`
	EmailVerified bool           `json:"email_verified"`
	Disabled      bool           `json:"disabled"` // a disabled user cannot sign in
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`

	// credential is the password hash Authenticate verified (or CreateUserWith set). CreateBrowserSession
	// starts a session only while it is still the user's, so a sign-in whose password was changed after the
	// check fails like a wrong password. Unexported: only a password check can vouch for a user.
	credential string
	// byMailCode: the user proved the mailbox with a sign-in code (SignInWithMailToken) rather than the
	// password; credential is then the password hash as it was then ("" for none), which must still hold.
	byMailCode bool
	// byPasskey: the user proved one of their passkeys (UsePasskey); credential is the password hash as it
	// was then ("" for none), which must still hold.
	byPasskey bool
}

type userRow struct {
	ID              string    `gorm:"column:id;primaryKey"`
	Email           string    `gorm:"column:email"`
	EmailNormalized string    `gorm:"column:email_normalized"`
	Pool            string    `gorm:"column:pool"`
	PasswordHash    string    `gorm:"column:password_hash"`
	Roles           string    `gorm:"column:roles"`
	Name            string    `gorm:"column:name"`
	Extras          string    `gorm:"column:extras"`
	EmailVerified   bool      `gorm:"column:email_verified"`
	Disabled        bool      `gorm:"column:disabled"`
	CreatedAt       time.Time `gorm:"column:created_at"`
	UpdatedAt       time.Time `gorm:"column:updated_at"`
}

func (userRow) TableName() string { return "users" }

func (r *userRow) user() (*User, error) {
	roles, err := decodeList(r.Roles)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", r.ID, err)
	}
	extras := map[string]any{}
	if r.Extras != "" {
		if err := json.Unmarshal([]byte(r.Extras), &extras); err != nil {
			return nil, fmt.Errorf("user %q: decode extras: %w", r.ID, err)
		}
		if extras == nil { // the column held JSON null
			extras = map[string]any{}
		}
	}
	return &User{
		ID: r.ID, Email: r.Email, Pool: r.Pool, PasswordHash: r.PasswordHash, Roles: roles,
		Name: r.Name, Extras: extras, EmailVerified: r.EmailVerified, Disabled: r.Disabled,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}, nil
}

// MaxExtrasBytes is the size limit of a user's extras, JSON-encoded.
const MaxExtrasBytes = 4096

// Length limits of a user's fields, defined once here; every entry point (pages, the token API, the admin API,
// the CLI) bounds its input by them. A password's limit is passwords.MaxLength: argon2id on megabytes of input
// is a denial of service, not a password.
const (
	MaxEmailLength = 254 // bytes (RFC 5321's limit on a path)
	MaxNameLength  = 200 // characters
)

// ErrInvalidCredentials is Authenticate's answer to an unknown email or a wrong password: the two are not
// told apart.
var ErrInvalidCredentials = errors.New("invalid email or password")

// ErrUserDisabled is returned by Authenticate for the right password of a disabled user.
var ErrUserDisabled = errors.New("user disabled")

// encodeExtras validates extras (no empty key, no registered claim name, at most MaxExtrasBytes of JSON) and
// returns their JSON; nil is {}. Every write of extras goes through it.
func encodeExtras(extras map[string]any) (string, error) {
	if extras == nil {
		return "{}", nil
	}
	for _, k := range slices.Sorted(maps.Keys(extras)) {
		if k == "" {
			return "", fmt.Errorf("%w: extras have an empty key", ErrInvalid)
		}
		if IsRegisteredClaim(k) {
			return "", fmt.Errorf("%w: extras may not use the registered claim name %q", ErrInvalid, k)
		}
	}
	b, err := json.Marshal(extras)
	if err != nil {
		return "", fmt.Errorf("%w: extras cannot be encoded as JSON: %v", ErrInvalid, err)
	}
	if len(b) > MaxExtrasBytes {
		return "", fmt.Errorf("%w: extras are %d bytes as JSON, over the limit of %d bytes", ErrInvalid, len(b), MaxExtrasBytes)
	}
	return string(b), nil
}

// normalizeName trims name and checks it is valid UTF-8 of at most MaxNameLength characters.
func normalizeName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: name is not valid UTF-8 text", ErrInvalid)
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLength {
		return "", fmt.Errorf("%w: name is %d characters, over the limit of %d", ErrInvalid, n, MaxNameLength)
	}
	return name, nil
}

func validatePassword(password string) error {
	if password == "" {
		return fmt.Errorf("%w: password is empty", ErrInvalid)
	}
	if len(password) > passwords.MaxLength {
		return fmt.Errorf("%w: password is longer than %d bytes", ErrInvalid, passwords.MaxLength)
	}
	return nil
}

func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func validateEmail(email string) error {
	if !storableText(email) {
		return fmt.Errorf("%w: email is not valid UTF-8 text", ErrInvalid)
	}
	if len(email) > MaxEmailLength {
		return fmt.Errorf("%w: email is longer than %d characters", ErrInvalid, MaxEmailLength)
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return fmt.Errorf("%w: email must be one @ between a non-empty local part and domain", ErrInvalid)
	}
	if strings.ContainsAny(email, " \t\r\n") {
		return fmt.Errorf("%w: email contains whitespace", ErrInvalid)
	}
	return nil
}

var userIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newUserID() (string, error) { return newPublicID("usr_") }

// newPublicID is prefix + 26 lower-case base32 characters of 128 random bits.
func newPublicID(prefix string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + strings.ToLower(userIDEncoding.EncodeToString(b[:])), nil
}

// newSecretToken is 256 random bits, base64url without padding. Only hashKey of it is stored.
func newSecretToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// NewUser is what CreateUserWith needs.
type NewUser struct {
	Pool                  string // "" = DefaultPool
	Email, Password, Name string
	Roles                 []string
	Extras                map[string]any // nil: {}
	EmailVerified         bool
	// VerifyMail, when set, issues an email verification token and queues its mail (ComposeMail) in the
	// transaction that creates the user: the mail exists exactly when the account does.
	VerifyMail ComposeMail
}

// Validate checks everything about a new user that needs no database: email, password, name and extras. Bad
// input is ErrInvalid (wrapped, with the reason). CreateUserWith calls it; a caller that must not spend a
// password hash (or a throttle reservation) on input that cannot succeed calls it first.
func (u NewUser) Validate() error {
	_, _, err := u.normalize()
	return err
}

// normalize is Validate returning the trimmed name and the encoded extras.
func (u NewUser) normalize() (name, extras string, err error) {
	if err := validateEmail(strings.TrimSpace(u.Email)); err != nil {
		return "", "", err
	}
	if err := validatePassword(u.Password); err != nil {
		return "", "", err
	}
	if name, err = normalizeName(u.Name); err != nil {
		return "", "", err
	}
	if extras, err = encodeExtras(u.Extras); err != nil {
		return "", "", err
	}
	return name, extras, nil
}

// CreateUserWith validates and stores a new user with an argon2id password hash. Bad input is ErrInvalid
// (wrapped, with the reason): see NewUser.Validate, and a pool that does not exist. An email already taken
// in the same pool, ignoring case, is ErrConflict; the same email in another pool is another user. The user
// returned may start a session (CreateBrowserSession) as if just authenticated.
func (s *Store) CreateUserWith(ctx context.Context, u NewUser) (*User, error) {
	pool := poolOrDefault(u.Pool)
	email := strings.TrimSpace(u.Email)
	name, extras, err := u.normalize()
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	hash, err := HashPassword(u.Password)
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	id, err := newUserID()
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	now := dbTime(s.now())
	row := userRow{
		ID: id, Email: email, EmailNormalized: normalizeEmail(email), Pool: pool, PasswordHash: hash,
		Roles: encodeList(u.Roles), Name: name, Extras: extras, EmailVerified: u.EmailVerified,
		CreatedAt: now, UpdatedAt: now,
	}
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		if err := requirePool(tx, pool); err != nil {
			return err
		}
		if err := tx.Create(&row).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return fmt.Errorf("email already registered in pool %q: %w", pool, ErrConflict)
			}
			return mapErr(err)
		}
		if err := recordEvent(ctx, tx, Event{Type: EventUserCreated, UserID: id, Pool: pool, Details: map[string]any{"email": email}}); err != nil {
			return err
		}
		if u.VerifyMail != nil {
			return issueMailToken(tx, id, email, MailVerifyEmail, now, u.VerifyMail)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	created, err := row.user()
	if err != nil {
		return nil, err
	}
	created.credential = hash
	return created, nil
}

// UserByID returns a user; ErrNotFound if there is none.
func (s *Store) UserByID(ctx context.Context, id string) (*User, error) {
	var row userRow
	if err := s.conn(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("get user: %w", mapErr(err))
	}
	return row.user()
}

// UserByEmail returns the user of pool ("" = DefaultPool) with this email, ignoring case; ErrNotFound if
// there is none.
func (s *Store) UserByEmail(ctx context.Context, pool, email string) (*User, error) {
	var row userRow
	err := s.conn(ctx).Where("pool = ? AND email_normalized = ?", poolOrDefault(pool), normalizeEmail(email)).Take(&row).Error
	if err != nil {
		return nil, fmt.Errorf("get user by email: %w", mapErr(err))
	}
	return row.user()
}

// ListUsers returns the users of pool, or of every pool if pool is "", oldest first. A pool that does not
// exist is ErrNotFound (an existing pool without users is an empty list).
func (s *Store) ListUsers(ctx context.Context, pool string) ([]User, error) {
	var rows []userRow
	q := s.conn(ctx).Order("created_at, id")
	if pool != "" {
		q = q.Where("pool = ?", pool)
	}
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list users: %w", mapErr(err))
	}
	if len(rows) == 0 && pool != "" {
		if _, err := s.GetPool(ctx, pool); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
	}
	out := make([]User, 0, len(rows))
	for i := range rows {
		u, err := rows[i].user()
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, *u)
	}
	return out, nil
}

// ChangePassword replaces a user's password (argon2id-hashed) and ends every other browser session of the
// user, revoking their tokens as EndUserBrowserSessions does, in one transaction that first locks the user's
// row: a sign-in that checked the old password either created its session before (and it is ended here) or
// finds the new hash when it tries (see CreateBrowserSession). keepSessionID ("" for none) is the session
// the change was made from. It returns how many sessions it ended. ErrInvalid for an empty or over-long
// password, ErrNotFound if there is no such user.
func (s *Store) ChangePassword(ctx context.Context, userID, password, keepSessionID string, now time.Time) (int, error) {
	return s.changePassword(ctx, userID, nil, password, keepSessionID, now)
}

// ChangeOwnPassword is ChangePassword for a user who proved the current password: checked is the user as
// Authenticate returned it. In the same transaction it makes sure that password is still the current one and
// keepSessionID is still active, so of two changes checked against the same old password only the first
// applies (ErrInvalidCredentials for the other): someone else holding the old password cannot overwrite the
// owner's new one and end the owner's session.
func (s *Store) ChangeOwnPassword(ctx context.Context, checked *User, password, keepSessionID string, now time.Time) (int, error) {
	if checked == nil || checked.credential == "" {
		return 0, fmt.Errorf("change password: %w", ErrInvalidCredentials)
	}
	return s.changePassword(ctx, checked.ID, checked, password, keepSessionID, now)
}

func (s *Store) changePassword(ctx context.Context, userID string, checked *User, password, keepSessionID string, now time.Time) (int, error) {
	if err := validatePassword(password); err != nil {
		return 0, fmt.Errorf("change password: %w", err)
	}
	hash, err := HashPassword(password) // before the transaction: no lock is held across the hash
	if err != nil {
		return 0, fmt.Errorf("change password: %w", err)
	}
	var n int
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		if checked != nil {
			if err := s.stillCurrent(tx, checked, keepSessionID, now); err != nil {
				return err
			}
		}
		// The update takes the row lock before the sessions are read, so a session created under the old
		// password has either committed by now (and is read below) or is waiting to find the new hash.
		if err := updateUser(tx, userID, map[string]any{"password_hash": hash}, now); err != nil {
			return err
		}
		n, err = endUserSessions(tx, userID, keepSessionID, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("change password: %w", err)
	}
	return n, nil
}

// SetRoles replaces a user's roles; ErrNotFound if there is no such user.
func (s *Store) SetRoles(ctx context.Context, userID string, roles []string) error {
	if err := s.inTx(ctx, func(tx *gorm.DB) error {
		return updateUser(tx, userID, map[string]any{"roles": encodeList(roles)}, s.now())
	}); err != nil {
		return fmt.Errorf("set roles: %w", err)
	}
	return nil
}

// SetExtras replaces a user's extras (nil: {}); ErrInvalid as for CreateUserWith, ErrNotFound if there is
// no such user.
func (s *Store) SetExtras(ctx context.Context, userID string, extras map[string]any) error {
	enc, err := encodeExtras(extras)
	if err != nil {
		return fmt.Errorf("set extras: %w", err)
	}
	if err := s.inTx(ctx, func(tx *gorm.DB) error { return updateUser(tx, userID, map[string]any{"extras": enc}, s.now()) }); err != nil {
		return fmt.Errorf("set extras: %w", err)
	}
	return nil
}

// SetName replaces a user's display name; ErrInvalid over 200 characters, ErrNotFound if there is no such
// user.
func (s *Store) SetName(ctx context.Context, userID, name string) error {
	name, err := normalizeName(name)
	if err != nil {
		return fmt.Errorf("set name: %w", err)
	}
	if err := s.inTx(ctx, func(tx *gorm.DB) error { return updateUser(tx, userID, map[string]any{"name": name}, s.now()) }); err != nil {
		return fmt.Errorf("set name: %w", err)
	}
	return nil
}

// SetDisabled disables or re-enables a user; ErrNotFound if there is no such user. Disabling also, in the
// same transaction, ends every browser session of the user and revokes the user's tokens: refresh tokens
// become inactive, access tokens are deleted, unused authorization codes become used.
func (s *Store) SetDisabled(ctx context.Context, userID string, disabled bool, now time.Time) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := updateUser(tx, userID, map[string]any{"disabled": disabled}, now); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		return disabledUserEffects(tx, userID, now)
	})
	if err != nil {
		return fmt.Errorf("set user disabled: %w", err)
	}
	return nil
}

// Authenticate returns the user of pool ("" = DefaultPool) with this email (ignoring case) and password. An
// unknown email, an unknown pool or a wrong password is ErrInvalidCredentials, and each costs one argon2id
// verification, so timing does not tell whether the account exists. The right password of a disabled user
// returns the user together with ErrUserDisabled (so the caller can log who it was); check the error
// before using the user. The user returned carries the hash it was checked against, so CreateBrowserSession
// can refuse it once the password has changed.
func (s *Store) Authenticate(ctx context.Context, pool, email, password string) (*User, error) {
	if password == "" || len(password) > passwords.MaxLength {
		return nil, s.signInFailed(ctx, pool, email, "", ReasonWrongPassword, ErrInvalidCredentials)
	}
	var row userRow
	err := s.conn(ctx).Where("pool = ? AND email_normalized = ?", poolOrDefault(pool), normalizeEmail(email)).Take(&row).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("authenticate: %w", mapErr(err))
	}
	if err != nil {
		_, _ = VerifyPassword(dummyPasswordHash, password)
		return nil, s.signInFailed(ctx, pool, email, "", ReasonUnknownUser, ErrInvalidCredentials)
	}
	ok, err := VerifyPassword(row.PasswordHash, password)
	if err != nil {
		return nil, fmt.Errorf("authenticate user %q: %w", row.ID, err)
	}
	if !ok {
		return nil, s.signInFailed(ctx, pool, email, row.ID, ReasonWrongPassword, ErrInvalidCredentials)
	}
	u, err := row.user()
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	u.credential = row.PasswordHash
	if u.Disabled {
		if err := s.signInFailed(ctx, pool, email, u.ID, ReasonDisabled, ErrUserDisabled); !errors.Is(err, ErrUserDisabled) {
			return nil, err
		}
		return u, ErrUserDisabled
	}
	if must, err := mustVerifyEmail(s.conn(ctx), row.Pool, u.EmailVerified); err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	} else if must {
		if err := s.signInFailed(ctx, pool, email, u.ID, ReasonEmailNotVerified, ErrEmailNotVerified); !errors.Is(err, ErrEmailNotVerified) {
			return nil, err
		}
		return u, ErrEmailNotVerified
	}
	return u, nil
}

// disabledUserEffects is what disabling user userID ends, in tx: every browser session, and the user's tokens.
func disabledUserEffects(tx *gorm.DB, userID string, now time.Time) error {
	if _, err := endUserSessions(tx, userID, "", now); err != nil {
		return err
	}
	return revokeTokensWhere(tx, "subject = ?", userID)
}

// DeleteUser deletes a user, their browser sessions (ended first: their apps get a back-channel logout) and
// consents, and every token, code and request whose subject is that user, in one transaction; ErrNotFound if
// there is no such user.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.deleteUser(ctx, id, nil)
}

// deleteUser is DeleteUser of a row that also matches where (nil: any); a row it excludes is ErrNotFound. The
// row is read first (the events need its pool) and deleted last under the same condition, so a change between
// the two rolls the whole deletion back.
func (s *Store) deleteUser(ctx context.Context, id string, where map[string]any) error {
	now := s.now()
	match := func(tx *gorm.DB) *gorm.DB {
		q := tx.Where("id = ?", id)
		if where != nil {
			q = q.Where(where)
		}
		return q
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var gone userRow
		if err := match(tx).Take(&gone).Error; err != nil {
			return mapErr(err)
		}
		for _, table := range tokenTables {
			if err := tx.Table(table).Where("subject = ?", id).Delete(&tokenRow{}).Error; err != nil {
				return mapErr(err)
			}
		}
		// Ended first, as every session ends (endSessions), so the apps that took part are told (back-channel
		// logout, queued in this transaction) before the rows that say which apps those were go.
		if _, err := endUserSessions(tx, id, "", now); err != nil {
			return err
		}
		if err := tx.Where("user_id = ?", id).Delete(&browserSessionRow{}).Error; err != nil {
			return mapErr(err)
		}
		if err := tx.Where("user_id = ?", id).Delete(&consentRow{}).Error; err != nil {
			return mapErr(err)
		}
		// The user row goes last: the events above and this one still read its pool (and the webhook's user).
		ev := Event{Type: EventUserDeleted, UserID: id, Pool: gone.Pool, Details: map[string]any{"email": gone.Email}}
		if err := recordEvent(ctx, tx, ev); err != nil {
			return err
		}
		res := match(tx).Delete(&userRow{})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound // deleted or changed meanwhile
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	return nil
}

// stillCurrent locks the user's row (PostgreSQL; SQLite has one writer) and checks that the password checked is
// still the stored one and that the session the change comes from is still active.
func (s *Store) stillCurrent(tx *gorm.DB, checked *User, sessionID string, now time.Time) error {
	q := tx.Select("password_hash").Where("id = ?", checked.ID)
	if s.dialect == dialectPostgres {
		q = q.Clauses(clause.Locking{Strength: "NO KEY UPDATE"})
	}
	var row userRow
	if err := q.Take(&row).Error; err != nil {
		return mapErr(err)
	}
	if row.PasswordHash != checked.credential {
		return ErrInvalidCredentials
	}
	if sessionID == "" {
		return nil
	}
	var n int64
	err := tx.Model(&browserSessionRow{}).Where("id = ? AND user_id = ? AND ended_at IS NULL AND idle_expires_at > ? AND expires_at > ?",
		sessionID, checked.ID, dbTime(now), dbTime(now)).Count(&n).Error
	if err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return ErrInvalidCredentials
	}
	return nil
}

// CredentialStamp names the password the user has now without revealing anything of it: it changes whenever the
// password does. It is set on a user that Authenticate or CreateUserWith returned, "" otherwise.
func (u *User) CredentialStamp() string { return credentialStamp(u.credential) }

func credentialStamp(hash string) string {
	if hash == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("credential-stamp\x00" + hash))
	return hex.EncodeToString(sum[:12])
}

// CredentialStamp is the stamp (see User.CredentialStamp) of the password of the user with this email in pool;
// "" if there is no such user.
func (s *Store) CredentialStamp(ctx context.Context, pool, email string) (string, error) {
	var row userRow
	err := s.conn(ctx).Select("password_hash").Where("pool = ? AND email_normalized = ?", poolOrDefault(pool), normalizeEmail(email)).Take(&row).Error
	if errors.Is(mapErr(err), ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("credential stamp: %w", mapErr(err))
	}
	return credentialStamp(row.PasswordHash), nil
}
