package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// consentRow is the consents table: the scopes a user has granted a client.
type consentRow struct {
	UserID    string    `gorm:"column:user_id;primaryKey"`
	ClientID  string    `gorm:"column:client_id;primaryKey"`
	Scopes    string    `gorm:"column:scopes"`
	CreatedAt time.Time `gorm:"column:created_at"`
	UpdatedAt time.Time `gorm:"column:updated_at"`
}

func (consentRow) TableName() string { return "consents" }

// ConsentedScopes returns the scopes userID has granted clientID; nil if none.
func (s *Store) ConsentedScopes(ctx context.Context, userID, clientID string) ([]string, error) {
	var rows []consentRow
	if err := s.conn(ctx).Where("user_id = ? AND client_id = ?", userID, clientID).Limit(1).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("get consent: %w", mapErr(err))
	}
	if len(rows) == 0 {
		return nil, nil
	}
	scopes, err := decodeList(rows[0].Scopes)
	if err != nil {
		return nil, fmt.Errorf("get consent: %w", err)
	}
	if len(scopes) == 0 {
		return nil, nil
	}
	return scopes, nil
}

// SaveConsent records that userID granted clientID scopes, adding them to what was granted before. It is
// safe under concurrency: the row is created if missing, then locked while the union is written, so two
// concurrent saves both land.
func (s *Store) SaveConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) error {
	if userID == "" || clientID == "" {
		return fmt.Errorf("save consent: %w: user and client ids are required", ErrInvalid)
	}
	t := dbTime(now)
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		row := consentRow{UserID: userID, ClientID: clientID, Scopes: "[]", CreatedAt: t, UpdatedAt: t}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
			return mapErr(err)
		}
		q := tx.Where("user_id = ? AND client_id = ?", userID, clientID)
		if s.dialect == dialectPostgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		var cur consentRow
		if err := q.Take(&cur).Error; err != nil {
			return mapErr(err)
		}
		have, err := decodeList(cur.Scopes)
		if err != nil {
			return err
		}
		err = tx.Model(&consentRow{}).Where("user_id = ? AND client_id = ?", userID, clientID).
			UpdateColumns(map[string]any{"scopes": encodeList(unionScopes(have, scopes)), "updated_at": t}).Error
		if err != nil {
			return mapErr(err)
		}
		return recordEvent(ctx, tx, Event{Type: EventConsentGranted, UserID: userID, ClientID: clientID,
			Details: map[string]any{"scopes": scopes}})
	})
	if err != nil {
		return fmt.Errorf("save consent: %w", err)
	}
	return nil
}

// unionScopes is have followed by the scopes of add it lacks, without duplicates or empty strings.
func unionScopes(have, add []string) []string {
	out := make([]string, 0, len(have)+len(add))
	seen := map[string]bool{}
	for _, list := range [][]string{have, add} {
		for _, sc := range list {
			if sc != "" && !seen[sc] {
				seen[sc] = true
				out = append(out, sc)
			}
		}
	}
	return out
}
