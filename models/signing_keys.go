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

// ListSigningKeys implements keys.Store: active keys and retired keys whose NotAfter is after now, oldest
// first.
func (s *Store) ListSigningKeys(ctx context.Context, now time.Time) ([]keys.Record, error) {
	var rows []signingKeyRow
	err := s.conn(ctx).Where("retired_at IS NULL OR not_after > ?", dbTime(now)).Order("created_at, kid").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", mapErr(err))
	}
	out := make([]keys.Record, 0, len(rows))
	for _, r := range rows {
		out = append(out, keys.Record{
			KID: r.KID, Alg: r.Alg, PublicJWK: r.PublicJWK, SealedPrivate: r.SealedPrivate,
			CreatedAt: r.CreatedAt.UTC(), RetiredAt: utcPtr(r.RetiredAt), NotAfter: utcPtr(r.NotAfter),
		})
	}
	return out, nil
}

// ReplaceActiveKey implements keys.Store as a compare-and-swap in one transaction: the active key for
// next.Alg must be currentKID ("" = none), else keys.ErrRotationConflict and nothing changes. A unique
// index on the active key per algorithm backs this up against concurrent first inserts.
func (s *Store) ReplaceActiveKey(ctx context.Context, currentKID string, next keys.Record, now, retireUntil time.Time) error {
	if next.KID == "" || next.Alg == "" {
		return fmt.Errorf("replace signing key: %w: kid and alg are required", ErrInvalid)
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
				UpdateColumns(map[string]any{"retired_at": dbTime(now), "not_after": dbTime(retireUntil)})
			if res.Error != nil {
				return mapErr(res.Error)
			}
			if res.RowsAffected != 1 {
				return keys.ErrRotationConflict
			}
		}
		created := next.CreatedAt
		if created.IsZero() {
			created = now
		}
		err := tx.Create(&signingKeyRow{
			KID: next.KID, Alg: next.Alg, PublicJWK: next.PublicJWK, SealedPrivate: next.SealedPrivate,
			CreatedAt: dbTime(created),
		}).Error
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return keys.ErrRotationConflict
		}
		return mapErr(err)
	})
	if err != nil {
		return fmt.Errorf("replace signing key: %w", err)
	}
	return nil
}
