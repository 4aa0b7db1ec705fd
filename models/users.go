package models

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"gorm.io/gorm"
)

// User is a person who can sign in.
type User struct {
	ID           string    `json:"id"`    // "usr_" + 26 base32 characters of 128 random bits
	Email        string    `json:"email"` // as entered, trimmed; unique case-insensitively
	PasswordHash string    `json:"-"`     // PHC-format argon2id
	Roles        []string  `json:"roles"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

type userRow struct {
	ID              string    `gorm:"column:id;primaryKey"`
	Email           string    `gorm:"column:email"`
	EmailNormalized string    `gorm:"column:email_normalized"`
	PasswordHash    string    `gorm:"column:password_hash"`
	Roles           string    `gorm:"column:roles"`
	CreatedAt       time.Time `gorm:"column:created_at"`
	UpdatedAt       time.Time `gorm:"column:updated_at"`
}

func (userRow) TableName() string { return "users" }

func (r *userRow) user() (*User, error) {
	roles, err := decodeList(r.Roles)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", r.ID, err)
	}
	return &User{
		ID: r.ID, Email: r.Email, PasswordHash: r.PasswordHash, Roles: roles,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}, nil
}

const (
	maxEmailLen    = 254
	maxPasswordLen = 1024
)

func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func validateEmail(email string) error {
	if len(email) > maxEmailLen {
		return fmt.Errorf("%w: email is longer than %d characters", ErrInvalid, maxEmailLen)
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

func newUserID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "usr_" + strings.ToLower(userIDEncoding.EncodeToString(b[:])), nil
}

// CreateUser validates and stores a new user with an argon2id password hash. Bad input is ErrInvalid
// (wrapped, with the reason); an email already taken, ignoring case, is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, email, password string, roles []string) (*User, error) {
	email = strings.TrimSpace(email)
	if err := validateEmail(email); err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	if password == "" {
		return nil, fmt.Errorf("create user: %w: password is empty", ErrInvalid)
	}
	if len(password) > maxPasswordLen {
		return nil, fmt.Errorf("create user: %w: password is longer than %d bytes", ErrInvalid, maxPasswordLen)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	id, err := newUserID()
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	now := dbTime(s.now())
	row := userRow{
		ID: id, Email: email, EmailNormalized: normalizeEmail(email), PasswordHash: hash,
		Roles: encodeList(roles), CreatedAt: now, UpdatedAt: now,
	}
	if err := s.conn(ctx).Create(&row).Error; err != nil {
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return nil, fmt.Errorf("create user: email already registered: %w", ErrConflict)
		}
		return nil, fmt.Errorf("create user: %w", mapErr(err))
	}
	return row.user()
}

// UserByID returns a user; ErrNotFound if there is none.
func (s *Store) UserByID(ctx context.Context, id string) (*User, error) {
	var row userRow
	if err := s.conn(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("get user: %w", mapErr(err))
	}
	return row.user()
}

// UserByEmail returns the user with this email, ignoring case; ErrNotFound if there is none.
func (s *Store) UserByEmail(ctx context.Context, email string) (*User, error) {
	var row userRow
	if err := s.conn(ctx).Where("email_normalized = ?", normalizeEmail(email)).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("get user by email: %w", mapErr(err))
	}
	return row.user()
}

// ListUsers returns every user, oldest first.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	var rows []userRow
	if err := s.conn(ctx).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list users: %w", mapErr(err))
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

// DeleteUser deletes a user and every token, code and request whose subject is that user, in one
// transaction; ErrNotFound if there is no such user.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Where("id = ?", id).Delete(&userRow{})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		for _, table := range tokenTables {
			if err := tx.Table(table).Where("subject = ?", id).Delete(&tokenRow{}).Error; err != nil {
				return mapErr(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	return nil
}

// Password hashing: argon2id with OWASP's minimum parameters (m=19 MiB, t=2, p=1).
const (
	argonMemory  = 19456 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32

	// Bounds on parameters read back from a stored hash, so a corrupt row cannot exhaust memory or CPU.
	argonMaxMemory  = 1 << 20 // KiB = 1 GiB
	argonMaxTime    = 100
	argonMaxThreads = 255
	argonMaxKeyLen  = 1024
)

var b64 = base64.RawStdEncoding

// HashPassword returns the PHC string "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" of password, with a
// random 16-byte salt.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword checks password against a PHC argon2id hash, using the parameters in the hash. A wrong
// password is (false, nil); a malformed hash is an error.
func VerifyPassword(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errors.New("verify password: not a PHC argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || fmt.Sprintf("v=%d", version) != parts[2] {
		return false, errors.New("verify password: malformed version")
	}
	if version != argon2.Version {
		return false, fmt.Errorf("verify password: unsupported argon2 version %d", version)
	}
	var m, t, p uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil ||
		fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p) != parts[3] {
		return false, errors.New("verify password: malformed parameters")
	}
	if m < 8*p || m > argonMaxMemory || t < 1 || t > argonMaxTime || p < 1 || p > argonMaxThreads {
		return false, errors.New("verify password: parameters out of range")
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, errors.New("verify password: malformed salt")
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > argonMaxKeyLen {
		return false, errors.New("verify password: malformed hash")
	}
	got := argon2.IDKey([]byte(password), salt, t, m, uint8(p), uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
