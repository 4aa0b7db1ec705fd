package models

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// AuthChallenge is a pending authorization request waiting for the user to sign in and consent.
type AuthChallenge struct {
	ID               string     `json:"id"` // 256 random bits, base64url; only its hash is stored
	Query            string     `json:"query"`
	ClientID         string     `json:"client_id"`
	BrowserSessionID string     `json:"browser_session_id"` // "" until the user signed in
	LoginAt          *time.Time `json:"login_at,omitempty"`
	ConsentAt        *time.Time `json:"consent_at,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
	ExpiresAt        time.Time  `json:"expires_at"`
}

// maxChallengeQuery bounds an authorization challenge's stored query.
const maxChallengeQuery = 8 << 10

type authChallengeRow struct {
	ID               string     `gorm:"column:id;primaryKey"` // hashKey of the challenge id
	Query            string     `gorm:"column:query"`
	ClientID         string     `gorm:"column:client_id"`
	BrowserSessionID string     `gorm:"column:browser_session_id"`
	LoginAt          *time.Time `gorm:"column:login_at"`
	ConsentAt        *time.Time `gorm:"column:consent_at"`
	CreatedAt        time.Time  `gorm:"column:created_at"`
	ExpiresAt        time.Time  `gorm:"column:expires_at"`
}

func (authChallengeRow) TableName() string { return "auth_challenges" }

func (r *authChallengeRow) challenge(id string) *AuthChallenge {
	return &AuthChallenge{
		ID: id, Query: r.Query, ClientID: r.ClientID, BrowserSessionID: r.BrowserSessionID,
		LoginAt: utcPtr(r.LoginAt), ConsentAt: utcPtr(r.ConsentAt),
		CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(),
	}
}

// CreateAuthChallenge stores a pending authorization request (its query string) for ttl. The returned
// challenge's ID is the only copy of the id; the store keeps its hash. A query over 8 KiB, or not UTF-8
// text, is ErrInvalid.
func (s *Store) CreateAuthChallenge(ctx context.Context, query, clientID string, now time.Time, ttl time.Duration) (*AuthChallenge, error) {
	switch {
	case len(query) > maxChallengeQuery:
		return nil, fmt.Errorf("create auth challenge: %w: query is %d bytes, over the limit of %d", ErrInvalid, len(query), maxChallengeQuery)
	case !utf8.ValidString(query) || strings.ContainsRune(query, 0) || !utf8.ValidString(clientID) || strings.ContainsRune(clientID, 0):
		return nil, fmt.Errorf("create auth challenge: %w: query or client id is not UTF-8 text", ErrInvalid)
	case ttl <= 0:
		return nil, fmt.Errorf("create auth challenge: %w: ttl must be positive", ErrInvalid)
	}
	id, err := newSecretToken()
	if err != nil {
		return nil, fmt.Errorf("create auth challenge: %w", err)
	}
	t := dbTime(now)
	row := authChallengeRow{ID: hashKey(id), Query: query, ClientID: clientID, CreatedAt: t, ExpiresAt: dbTime(now.Add(ttl))}
	if err := s.conn(ctx).Create(&row).Error; err != nil {
		return nil, fmt.Errorf("create auth challenge: %w", mapErr(err))
	}
	return row.challenge(id), nil
}

// AuthChallenge returns a pending authorization request; ErrNotFound if there is none or it has expired
// at now.
func (s *Store) AuthChallenge(ctx context.Context, id string, now time.Time) (*AuthChallenge, error) {
	var row authChallengeRow
	if err := s.conn(ctx).Where("id = ? AND expires_at > ?", hashKey(id), dbTime(now)).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("get auth challenge: %w", mapErr(err))
	}
	return row.challenge(id), nil
}

// markChallenge sets cols on the challenge if it has not expired at at; ErrNotFound otherwise.
func (s *Store) markChallenge(ctx context.Context, id string, at time.Time, cols map[string]any) error {
	res := s.conn(ctx).Model(&authChallengeRow{}).Where("id = ? AND expires_at > ?", hashKey(id), dbTime(at)).UpdateColumns(cols)
	if res.Error != nil {
		return mapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// MarkChallengeLogin records that the user signed in at at, in browser session browserSessionID. A consent
// recorded earlier on the challenge is cleared: it was given in another sign-in. ErrNotFound if the
// challenge does not exist or has expired.
func (s *Store) MarkChallengeLogin(ctx context.Context, id, browserSessionID string, at time.Time) error {
	err := s.markChallenge(ctx, id, at, map[string]any{
		"login_at": dbTime(at), "browser_session_id": browserSessionID, "consent_at": gorm.Expr("NULL"),
	})
	if err != nil {
		return fmt.Errorf("mark auth challenge login: %w", err)
	}
	return nil
}

// MarkChallengeConsent records that the user of browserSessionID consented at at. The consent counts only for
// that browser session, so a challenge approved in one browser cannot be completed by another user's session.
// ErrNotFound if the challenge does not exist or has expired.
func (s *Store) MarkChallengeConsent(ctx context.Context, id, browserSessionID string, at time.Time) error {
	if err := s.markChallenge(ctx, id, at, map[string]any{"consent_at": dbTime(at), "browser_session_id": browserSessionID}); err != nil {
		return fmt.Errorf("mark auth challenge consent: %w", err)
	}
	return nil
}

// DeleteAuthChallenge deletes a challenge; deleting a missing one is not an error.
func (s *Store) DeleteAuthChallenge(ctx context.Context, id string) error {
	if err := s.conn(ctx).Where("id = ?", hashKey(id)).Delete(&authChallengeRow{}).Error; err != nil {
		return fmt.Errorf("delete auth challenge: %w", mapErr(err))
	}
	return nil
}
