package models

import (
	"context"
	"fmt"
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
	var row userRow
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if p.Unmodified != nil {
			cols["updated_at"] = stamp(now, *p.Unmodified)
			res := tx.Model(&userRow{}).Where("id = ? AND updated_at = ?", id, dbTime(*p.Unmodified)).UpdateColumns(cols)
			if res.Error != nil {
				return mapErr(res.Error)
			}
			if res.RowsAffected == 0 {
				return unlessGone(tx, &userRow{}, "id = ?", id)
			}
			if now.Before(cols["updated_at"].(time.Time)) {
				now = cols["updated_at"].(time.Time) // disabling below stamps no earlier than this
			}
		} else if len(cols) > 0 {
			if err := updateUser(tx, id, cols, now); err != nil {
				return err
			}
		}
		if p.Disabled != nil {
			// setDisabled owns what disabling ends (sessions, tokens).
			if err := setDisabled(tx, id, *p.Disabled, now); err != nil {
				return err
			}
		}
		if len(cols) > 0 || p.Disabled != nil {
			if err := fanOutWebhooks(tx, userEvent(WebhookUserUpdated, id), now); err != nil {
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
