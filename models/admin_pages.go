package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// What the admin API's lists and conditional writes need from the store: keyset pages over (created_at, id) and
// writes that apply only while the row is as the caller read it (HTTP If-Match).

// ErrPreconditionFailed is returned by a conditional write whose row changed (or went) since the caller read it:
// nothing was written.
var ErrPreconditionFailed = errors.New("changed since it was read")

// MaxPageSize bounds a page of a list.
const MaxPageSize = 200

// Cursor is where a page ended: the (created_at, id) of its last row. Lists run in that order, and the next page
// starts strictly after it, so a row is never listed twice nor skipped however many rows are inserted meanwhile
// (a new row sorts after every row that existed when the listing began, or is seen once in its place).
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// keyset orders q by (created_at, id), starts it after the cursor (nil: at the start) and takes limit rows.
func keyset(q *gorm.DB, after *Cursor, limit int) *gorm.DB {
	if after != nil {
		t := dbTime(after.CreatedAt)
		q = q.Where("(created_at, id) > (?, ?)", t, after.ID) // a row value: both databases walk the (created_at, id) index
	}
	if limit <= 0 || limit > MaxPageSize+1 {
		limit = MaxPageSize + 1
	}
	return q.Order("created_at, id").Limit(limit)
}

// UserQuery selects a page of users.
type UserQuery struct {
	Pools    []string // nil: every pool
	Email    string   // "": any; else this address, ignoring case
	Disabled *bool    // nil: either
	After    *Cursor
	Limit    int // at most MaxPageSize+1 (one more than a page tells whether another follows)
}

// ListUsersPage returns the users q selects, oldest first.
func (s *Store) ListUsersPage(ctx context.Context, q UserQuery) ([]User, error) {
	db := s.conn(ctx).Model(&userRow{})
	if q.Pools != nil {
		db = db.Where("pool IN ?", q.Pools)
	}
	if q.Email != "" {
		db = db.Where("email_normalized = ?", normalizeEmail(q.Email))
	}
	if q.Disabled != nil {
		db = db.Where("disabled = ?", *q.Disabled)
	}
	var rows []userRow
	if err := keyset(db, q.After, q.Limit).Find(&rows).Error; err != nil {
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

// ClientQuery selects a page of clients.
type ClientQuery struct {
	Pools []string // nil: every pool
	Admin *bool    // nil: either
	After *Cursor
	Limit int
}

// ListClientsPage returns the clients q selects, oldest first.
func (s *Store) ListClientsPage(ctx context.Context, q ClientQuery) ([]Client, error) {
	db := s.conn(ctx).Model(&clientRow{})
	if q.Pools != nil {
		db = db.Where("pool IN ?", q.Pools)
	}
	if q.Admin != nil {
		db = db.Where("admin = ?", *q.Admin)
	}
	var rows []clientRow
	if err := keyset(db, q.After, q.Limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list clients: %w", mapErr(err))
	}
	out := make([]Client, 0, len(rows))
	for i := range rows {
		c, err := rows[i].client()
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		out = append(out, *c)
	}
	return out, nil
}

// stamp is the updated_at a conditional write sets: now, or just after the one it expects when the clock has not
// moved past it, so that a second write expecting the same stamp never matches the row the first one wrote.
func stamp(now, expected time.Time) time.Time {
	now, expected = dbTime(now), dbTime(expected)
	if !now.After(expected) {
		return expected.Add(time.Microsecond)
	}
	return now
}

// unlessGone turns "no row matched" of a conditional write into ErrPreconditionFailed while the row is still
// there (it changed), or ErrNotFound when it went.
func unlessGone(db *gorm.DB, model any, where string, arg any) error {
	var n int64
	if err := db.Model(model).Where(where, arg).Count(&n).Error; err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return ErrPreconditionFailed
}

// UpdateClientIf is UpdateClient (UpdateClientAndSecret when withSecret) applied only while the stored client's
// updated_at is unmodified, in the same statement; ErrPreconditionFailed when it is not.
func (s *Store) UpdateClientIf(ctx context.Context, c *Client, unmodified time.Time, withSecret bool) error {
	validate := c.Validate
	if withSecret {
		validate = c.validateWithSecret
	}
	if err := validate(); err != nil {
		return fmt.Errorf("update client: %w", err)
	}
	err := s.updateClientRow(ctx, c, withSecret, map[string]any{"updated_at": stamp(s.now(), unmodified)},
		map[string]any{"updated_at": dbTime(unmodified)})
	if errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("update client %q: %w", c.ID, unlessGone(s.conn(ctx), &clientRow{}, "id = ?", c.ID))
	}
	return err
}

// DeleteClientIf is DeleteClient applied only while the client's updated_at is unmodified; ErrPreconditionFailed
// when it is not.
func (s *Store) DeleteClientIf(ctx context.Context, id string, unmodified time.Time) error {
	err := s.deleteClient(ctx, id, map[string]any{"updated_at": dbTime(unmodified)})
	if errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("delete client %q: %w", id, unlessGone(s.conn(ctx), &clientRow{}, "id = ?", id))
	}
	return err
}

// DeleteUserIf is DeleteUser applied only while the user's updated_at is unmodified; ErrPreconditionFailed when
// it is not.
func (s *Store) DeleteUserIf(ctx context.Context, id string, unmodified time.Time) error {
	err := s.deleteUser(ctx, id, map[string]any{"updated_at": dbTime(unmodified)})
	if errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("delete user %q: %w", id, unlessGone(s.conn(ctx), &userRow{}, "id = ?", id))
	}
	return err
}

// UpdatePoolIf is UpdatePool applied only while the pool's settings are still those of was (as the caller read
// them), compared column by column in the statement; ErrPreconditionFailed when they are not.
func (s *Store) UpdatePoolIf(ctx context.Context, p Pool, was Pool) error {
	wasMFA, err := validateMFAPolicy(was.MFA)
	if err != nil {
		return fmt.Errorf("update pool %q: %w", p.Name, err)
	}
	err = s.updatePool(ctx, p, map[string]any{
		"signup_enabled": was.SignupEnabled, "default_roles": encodeList(was.DefaultRoles), "mfa_policy": wasMFA,
		"require_email_verification": was.RequireEmailVerification, "passwordless_codes": was.PasswordlessCodes,
	})
	if errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("update pool %q: %w", p.Name, unlessGone(s.conn(ctx), &poolRow{}, "name = ?", p.Name))
	}
	return err
}
