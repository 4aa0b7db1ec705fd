package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/keys"
)

type signingKeyRow struct {
	KID           string     `gorm:"column:kid;primaryKey"`
	Alg           string     `gorm:"column:alg"`
	PublicJWK     []byte     `gorm:"column:public_jwk"`
	SealedPrivate []byte     `gorm:"column:sealed_private"`
	CreatedAt     time.Time  `gorm:"column:created_at"`
	ActivatesAt   *time.Time `gorm:"column:activates_at"` // NULL only in rows written before migration 5
	RetiredAt     *time.Time `gorm:"column:retired_at"`
	NotAfter      *time.Time `gorm:"column:not_after"`
}

func (signingKeyRow) TableName() string { return "signing_keys" }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// ListSigningKeys implements keys.Store: every key whose not_after is unset or after now, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context, now time.Time) ([]keys.Record, error) {
	var rows []signingKeyRow
	err := s.conn(ctx).Where("not_after IS NULL OR not_after > ?", dbTime(now)).Order("created_at, kid").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", mapErr(err))
	}
	out := make([]keys.Record, 0, len(rows))
	for _, r := range rows {
		activates := r.CreatedAt
		if r.ActivatesAt != nil {
			activates = *r.ActivatesAt
		}
		out = append(out, keys.Record{
			KID: r.KID, Alg: r.Alg, PublicJWK: r.PublicJWK, SealedPrivate: r.SealedPrivate,
			CreatedAt: r.CreatedAt.UTC(), ActivatesAt: activates.UTC(), RetiredAt: utcPtr(r.RetiredAt), NotAfter: utcPtr(r.NotAfter),
		})
	}
	return out, nil
}

// ReplaceActiveKey implements keys.Store as a compare-and-swap in one transaction: the newest key for next.Alg
// (retired_at IS NULL: active, or next when a rotation is already scheduled) must be currentKID ("" = none),
// else keys.ErrRotationConflict and nothing changes. That key, and any older one still due to retire later,
// retires when next activates. A unique index on the newest key per algorithm backs this up against
// concurrent first inserts.
func (s *Store) ReplaceActiveKey(ctx context.Context, currentKID string, next keys.Record, now, retireUntil time.Time) error {
	if next.KID == "" || next.Alg == "" {
		return fmt.Errorf("replace signing key: %w: kid and alg are required", ErrInvalid)
	}
	activates := next.ActivatesAt
	if activates.IsZero() {
		activates = now
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if currentKID == "" {
			var n int64
			if err := tx.Model(&signingKeyRow{}).Where("alg = ? AND retired_at IS NULL", next.Alg).Count(&n).Error; err != nil {
				return mapErr(err)
			}
			if n > 0 {
				return keys.ErrRotationConflict
			}
		} else {
			res := tx.Model(&signingKeyRow{}).Where("kid = ? AND alg = ? AND retired_at IS NULL", currentKID, next.Alg).
				UpdateColumns(map[string]any{"retired_at": dbTime(activates), "not_after": dbTime(retireUntil)})
			if res.Error != nil {
				return mapErr(res.Error)
			}
			if res.RowsAffected != 1 {
				return keys.ErrRotationConflict
			}
			// An immediate rotation overtaking a scheduled one: the key that was to retire at the scheduled
			// moment retires now, so exactly one key is active at any instant. Its not_after, set from the later
			// moment, only keeps it published longer.
			err := tx.Model(&signingKeyRow{}).Where("alg = ? AND kid <> ? AND retired_at > ?", next.Alg, currentKID, dbTime(activates)).
				UpdateColumn("retired_at", dbTime(activates)).Error
			if err != nil {
				return mapErr(err)
			}
		}
		created := next.CreatedAt
		if created.IsZero() {
			created = now
		}
		activatesAt := dbTime(activates)
		err := tx.Create(&signingKeyRow{
			KID: next.KID, Alg: next.Alg, PublicJWK: next.PublicJWK, SealedPrivate: next.SealedPrivate,
			CreatedAt: dbTime(created), ActivatesAt: &activatesAt,
		}).Error
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return keys.ErrRotationConflict
		} else if err != nil {
			return mapErr(err)
		}
		return recordEvent(ctx, tx, Event{Type: EventKeyRotated, Details: map[string]any{"kid": next.KID, "alg": next.Alg,
			"replaces": currentKID, "activates_at": activatesAt}})
	})
	if err != nil {
		return fmt.Errorf("replace signing key: %w", err)
	}
	return nil
}
