package models

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// DefaultPool is the pool migration 3 creates; every user and client that existed before pools belongs to it,
// and "" means it wherever a pool is named.
const DefaultPool = "default"

// Pool is an independent population of users, like a separate table of accounts: the same email address
// may be registered in two pools as two different users. Every client belongs to one pool, whose users
// sign in through it.
type Pool struct {
	Name string `json:"name"` // ^[a-z0-9][a-z0-9_-]{0,63}$
	// SignupEnabled says whether users may sign themselves up (through the token API, and only via a client
	// with AllowSignup). The default pool has it off.
	SignupEnabled bool     `json:"signup_enabled"`
	DefaultRoles  []string `json:"default_roles"` // roles given to users who sign up; never nil when read
	// RequireEmailVerification refuses sign-in (email_not_verified) until the user has proved the mailbox.
	RequireEmailVerification bool `json:"require_email_verification"`
	// PasswordlessCodes lets users sign in with a code and link mailed to them (POST /api/v1/auth/otp/start).
	PasswordlessCodes bool `json:"passwordless_codes"`
	// MFA is the pool's multi-factor policy: MFAOff, MFAOptional (the default; "" means it) or MFARequired.
	MFA       string    `json:"mfa"`
	CreatedAt time.Time `json:"created_at"`
}

// validateMFAPolicy maps "" to MFAOptional and refuses anything not in MFAPolicies.
func validateMFAPolicy(p string) (string, error) {
	if p == "" {
		return MFAOptional, nil
	}
	if !slices.Contains(MFAPolicies, p) {
		return "", fmt.Errorf("%w: mfa policy %q must be one of %s", ErrInvalid, p, strings.Join(MFAPolicies, ", "))
	}
	return p, nil
}

var poolNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func validatePoolName(name string) error {
	if !poolNamePattern.MatchString(name) {
		return fmt.Errorf("%w: pool name %q must be 1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit",
			ErrInvalid, name)
	}
	return nil
}

// poolOrDefault maps "" to DefaultPool.
func poolOrDefault(name string) string {
	if name == "" {
		return DefaultPool
	}
	return name
}

// poolRow is the pools table.
type poolRow struct {
	Name                     string    `gorm:"column:name;primaryKey"`
	SignupEnabled            bool      `gorm:"column:signup_enabled"`
	DefaultRoles             string    `gorm:"column:default_roles"`
	MFAPolicy                string    `gorm:"column:mfa_policy"`
	RequireEmailVerification bool      `gorm:"column:require_email_verification"`
	PasswordlessCodes        bool      `gorm:"column:passwordless_codes"`
	CreatedAt                time.Time `gorm:"column:created_at"`
}

func (poolRow) TableName() string { return "pools" }

func (r *poolRow) pool() (*Pool, error) {
	roles, err := decodeList(r.DefaultRoles)
	if err != nil {
		return nil, fmt.Errorf("pool %q: %w", r.Name, err)
	}
	return &Pool{Name: r.Name, SignupEnabled: r.SignupEnabled, DefaultRoles: roles, MFA: r.MFAPolicy,
		RequireEmailVerification: r.RequireEmailVerification, PasswordlessCodes: r.PasswordlessCodes, CreatedAt: r.CreatedAt.UTC()}, nil
}

// requirePool checks, in db (the caller's transaction), that pool exists; an unknown or malformed name is
// ErrInvalid. Pools are never deleted, so the answer holds for the rest of the transaction.
func requirePool(db *gorm.DB, pool string) error {
	if validatePoolName(pool) != nil {
		return fmt.Errorf("%w: unknown pool %q", ErrInvalid, pool)
	}
	var n int64
	if err := db.Model(&poolRow{}).Where("name = ?", pool).Count(&n).Error; err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return fmt.Errorf("%w: unknown pool %q", ErrInvalid, pool)
	}
	return nil
}

// CreatePool stores a new pool; ErrInvalid for a malformed name, ErrConflict if the name is taken.
// p.CreatedAt is ignored: the pool is created now.
func (s *Store) CreatePool(ctx context.Context, p Pool) error {
	if err := validatePoolName(p.Name); err != nil {
		return fmt.Errorf("create pool: %w", err)
	}
	mfaPolicy, err := validateMFAPolicy(p.MFA)
	if err != nil {
		return fmt.Errorf("create pool: %w", err)
	}
	row := poolRow{
		Name: p.Name, SignupEnabled: p.SignupEnabled, DefaultRoles: encodeList(p.DefaultRoles), MFAPolicy: mfaPolicy,
		RequireEmailVerification: p.RequireEmailVerification, PasswordlessCodes: p.PasswordlessCodes,
		CreatedAt: dbTime(s.now()),
	}
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return mapErr(err)
		}
		return recordPoolChange(ctx, tx, EventPoolCreated, p.Name, nil)
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return fmt.Errorf("create pool %q: %w", p.Name, ErrConflict)
	} else if err != nil {
		return fmt.Errorf("create pool %q: %w", p.Name, err)
	}
	return nil
}

// GetPool returns a pool; ErrNotFound if there is none.
func (s *Store) GetPool(ctx context.Context, name string) (*Pool, error) {
	var row poolRow
	if err := s.conn(ctx).Where("name = ?", name).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("get pool %q: %w", name, mapErr(err))
	}
	return row.pool()
}

// ListPools returns every pool, oldest first (so the default pool comes first).
func (s *Store) ListPools(ctx context.Context) ([]Pool, error) {
	var rows []poolRow
	if err := s.conn(ctx).Order("created_at, name").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list pools: %w", mapErr(err))
	}
	out := make([]Pool, 0, len(rows))
	for i := range rows {
		p, err := rows[i].pool()
		if err != nil {
			return nil, fmt.Errorf("list pools: %w", err)
		}
		out = append(out, *p)
	}
	return out, nil
}

// UpdatePool replaces a pool's SignupEnabled, DefaultRoles, MFA policy, RequireEmailVerification and
// PasswordlessCodes (its name
// and creation time never change); ErrNotFound if there is no such pool.
func (s *Store) UpdatePool(ctx context.Context, p Pool) error {
	return s.updatePool(ctx, p, nil)
}

// updatePool is UpdatePool of a row that also matches where (nil: any); a row it excludes is ErrNotFound.
func (s *Store) updatePool(ctx context.Context, p Pool, where map[string]any) error {
	mfaPolicy, err := validateMFAPolicy(p.MFA)
	if err != nil {
		return fmt.Errorf("update pool %q: %w", p.Name, err)
	}
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		before := storedPool(tx, p.Name)
		q := tx.Model(&poolRow{}).Where("name = ?", p.Name)
		if where != nil {
			q = q.Where(where)
		}
		res := q.UpdateColumns(map[string]any{
			"signup_enabled":             p.SignupEnabled,
			"default_roles":              encodeList(p.DefaultRoles),
			"mfa_policy":                 mfaPolicy,
			"require_email_verification": p.RequireEmailVerification,
			"passwordless_codes":         p.PasswordlessCodes,
		})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return recordPoolChange(ctx, tx, EventPoolUpdated, p.Name, before)
	})
	if err != nil {
		return fmt.Errorf("update pool %q: %w", p.Name, err)
	}
	return nil
}
