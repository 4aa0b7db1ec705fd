package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// What a user's own account page reads and changes beyond the profile: the other providers linked to the user,
// and a fresh set of recovery codes. Each guard is decided inside one transaction that holds the user's row.

// LinkedIdentity is an upstream account linked to a user (UserForUpstream made the link).
type LinkedIdentity struct {
	ProviderID   string
	ProviderName string // the provider's display name; its id if the provider is gone
	Subject      string // the upstream's id of the account
	CreatedAt    time.Time
}

// LinkedIdentities returns the upstream accounts linked to user userID, oldest first.
func (s *Store) LinkedIdentities(ctx context.Context, userID string) ([]LinkedIdentity, error) {
	var rows []struct {
		ProviderID  string    `gorm:"column:provider_id"`
		DisplayName *string   `gorm:"column:display_name"`
		Subject     string    `gorm:"column:subject"`
		CreatedAt   time.Time `gorm:"column:created_at"`
	}
	err := s.conn(ctx).Table("user_identities AS i").
		Select("i.provider_id, p.display_name, i.subject, i.created_at").
		Joins("LEFT JOIN upstream_providers AS p ON p.id = i.provider_id").
		Where("i.user_id = ?", userID).Order("i.created_at, i.provider_id, i.subject").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list linked identities: %w", mapErr(err))
	}
	out := make([]LinkedIdentity, 0, len(rows))
	for _, r := range rows {
		name := r.ProviderID
		if r.DisplayName != nil && *r.DisplayName != "" {
			name = *r.DisplayName
		}
		out = append(out, LinkedIdentity{ProviderID: r.ProviderID, ProviderName: name, Subject: r.Subject, CreatedAt: r.CreatedAt.UTC()})
	}
	return out, nil
}

// ErrLastSignIn: the change would leave the user no way to sign in.
var ErrLastSignIn = errors.New("the user's last way to sign in")

// UnlinkIdentity removes the link between user userID and the upstream account (providerID, subject), but only
// while the user keeps another way to sign in: passwordChecked (the caller has just checked the user's
// password, so it is known to work), or another linked account. A user made by another provider has a password
// nobody knows, so without either the link is the only way in: ErrLastSignIn. The user's row is held while the
// other links are counted, so two unlinks at once cannot each count on the other's link. ErrNotFound if there
// is no such link.
func (s *Store) UnlinkIdentity(ctx context.Context, userID, providerID, subject string, passwordChecked bool) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var u userRow
		if err := lockUser(tx, userID, &u); err != nil {
			return err
		}
		if !passwordChecked {
			var others int64
			if err := tx.Model(&userIdentityRow{}).Where("user_id = ? AND NOT (provider_id = ? AND subject = ?)", userID, providerID, subject).
				Count(&others).Error; err != nil {
				return mapErr(err)
			}
			if others == 0 {
				var n int64
				if err := tx.Model(&userIdentityRow{}).Where("user_id = ? AND provider_id = ? AND subject = ?", userID, providerID, subject).
					Count(&n).Error; err != nil {
					return mapErr(err)
				}
				if n == 0 {
					return ErrNotFound
				}
				return ErrLastSignIn
			}
		}
		res := tx.Where("user_id = ? AND provider_id = ? AND subject = ?", userID, providerID, subject).Delete(&userIdentityRow{})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected != 1 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("unlink identity: %w", err)
	}
	return nil
}

// ReplaceRecoveryCodes replaces user userID's recovery codes with recoveryHashes (the earlier ones stop working),
// only while the user has an active factor: recovery codes stand in for one. ErrNotFound if there is none.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, recoveryHashes []string) error {
	now := dbTime(s.now())
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var u userRow
		if err := lockUser(tx, userID, &u); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&factorRow{}).Where("user_id = ? AND confirmed_at IS NOT NULL", userID).Count(&n).Error; err != nil {
			return mapErr(err)
		}
		if n == 0 {
			return ErrNotFound
		}
		return replaceRecoveryCodes(tx, userID, recoveryHashes, now)
	})
	if err != nil {
		return fmt.Errorf("replace recovery codes: %w", err)
	}
	return nil
}
