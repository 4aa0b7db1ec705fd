package models

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"gorm.io/gorm"
)

// UserPatch is one change to a user: the fields that are set are replaced, the others kept.
type UserPatch struct {
	Name     *string
	Roles    *[]string
	Extras   *map[string]any // nil map: {}
	Disabled *bool
	// Unmodified, when set, applies the change only while the user's updated_at is still this (as the caller
	// read it), decided in the first statement of the change; otherwise ErrPreconditionFailed and nothing changes.
	Unmodified *time.Time
}

// UpdateUser applies p to user id as one change and returns the user as it now is. Every field is checked
// first, by the setters' own rules (ErrInvalid, wrapped with the reason), and then all are written in one
// transaction, so a change refused for any field, or failing half-way, leaves the user as it was. Disabling
// has SetDisabled's effects, in the same transaction. An empty patch changes nothing. ErrNotFound if there is
// no such user.
func (s *Store) UpdateUser(ctx context.Context, id string, p UserPatch, now time.Time) (*User, error) {
	cols := map[string]any{}
	if p.Name != nil {
		name, err := normalizeName(*p.Name)
		if err != nil {
			return nil, fmt.Errorf("update user: %w", err)
		}
		cols["name"] = name
	}
	if p.Roles != nil {
		cols["roles"] = encodeList(*p.Roles)
	}
	if p.Extras != nil {
		extras, err := encodeExtras(*p.Extras)
		if err != nil {
			return nil, fmt.Errorf("update user: %w", err)
		}
		cols["extras"] = extras
	}
	if p.Disabled != nil {
		cols["disabled"] = *p.Disabled
	}
	var row userRow
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		// One update, so one user.updated event shows the whole change; with Unmodified (If-Match) it applies
		// only while the row is as the caller read it.
		if len(cols) > 0 || p.Unmodified != nil {
			if err := updateUserIf(tx, id, cols, now, "", p.Unmodified); err != nil {
				return err
			}
		}
		if p.Disabled != nil && *p.Disabled {
			if err := disabledUserEffects(tx, id, now); err != nil {
				return err
			}
		}
		return mapErr(tx.Where("id = ?", id).Take(&row).Error)
	})
	if err != nil {
		return nil, fmt.Errorf("update user: %w", err)
	}
	return row.user()
}

// updateUser sets columns (and updated_at) of user id and records the change; ErrNotFound if there is no such
// user.
func updateUser(db *gorm.DB, id string, cols map[string]any, now time.Time) error {
	return updateUserEvent(db, id, cols, now, "")
}

// updateUserEvent is updateUser recording an event of type evType; "" derives it from the columns: a new
// password hash is user.password_changed, email_verified alone user.email_verified, anything else
// user.updated, with the changed fields before and after (never the hash).
func updateUserEvent(db *gorm.DB, id string, cols map[string]any, now time.Time, evType string) error {
	return updateUserIf(db, id, cols, now, evType, nil)
}

// updateUserIf is updateUserEvent applied only while the user's updated_at is still unmodified (nil: always);
// ErrPreconditionFailed when it changed, ErrNotFound when the user went. The condition is in the UPDATE itself.
func updateUserIf(db *gorm.DB, id string, cols map[string]any, now time.Time, evType string, unmodified *time.Time) error {
	if !storableText(id) {
		return errUnstorableText // a write, as the update would answer; the read first would call it not found
	}
	var before userRow
	if err := db.Where("id = ?", id).Take(&before).Error; err != nil {
		return mapErr(err)
	}
	q := db.Model(&userRow{}).Where("id = ?", id)
	cols["updated_at"] = dbTime(now)
	if unmodified != nil {
		cols["updated_at"] = stamp(now, *unmodified) // a new ETag even within the clock's resolution
		q = q.Where("updated_at = ?", dbTime(*unmodified))
	}
	res := q.UpdateColumns(cols)
	if res.Error != nil {
		return mapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		if unmodified != nil {
			return unlessGone(db, &userRow{}, "id = ?", id)
		}
		return ErrNotFound
	}
	var after userRow
	if err := db.Where("id = ?", id).Take(&after).Error; err != nil {
		return mapErr(err)
	}
	ev := Event{Type: evType, UserID: id, Pool: after.Pool}
	if _, ok := cols["password_hash"]; ok && evType == "" {
		ev.Type = EventPasswordChanged
	}
	if ev.Type == "" {
		ev.Type = EventUserUpdated
		if _, ok := cols["email_verified"]; ok && len(cols) == 2 {
			ev.Type = EventEmailVerified
		}
		b, a := before.auditView(), after.auditView()
		for k, v := range a {
			if reflect.DeepEqual(b[k], v) {
				delete(a, k)
				delete(b, k)
			}
		}
		ev.Details = map[string]any{"before": b, "after": a}
	}
	return recordEvent(txContext(db), db, ev)
}

// auditView is what a user.updated event shows of a user: the fields an operator may change, never the
// password hash.
func (r *userRow) auditView() map[string]any {
	var roles, extras any
	_ = json.Unmarshal([]byte(r.Roles), &roles)
	_ = json.Unmarshal([]byte(r.Extras), &extras)
	return map[string]any{"email": r.Email, "name": r.Name, "roles": roles, "extras": extras,
		"email_verified": r.EmailVerified, "disabled": r.Disabled}
}
