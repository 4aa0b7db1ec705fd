package models

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// AuthChallenge is an authorization request that a signed-in browser session is finishing: it is created when
// the user signs in for the request, or when a signed-in user is asked for consent, and it is bound to that
// browser session. Before anyone signs in, the pending request is not stored at all (the handlers carry it in
// a sealed value), so anonymous callers cannot create these rows.
type AuthChallenge struct {
	ID               string     `json:"id"` // 256 random bits, base64url; only its hash is stored
	Query            string     `json:"query"`
	ClientID         string     `json:"client_id"`
	BrowserSessionID string     `json:"browser_session_id"`
	LoginAt          *time.Time `json:"login_at,omitempty"` // set when the user signed in for this request
	ConsentAt        *time.Time `json:"consent_at,omitempty"`
	CreatedAt        time.Time  `json:"created_at"` // when the authorization request was made, before any sign-in
	ExpiresAt        time.Time  `json:"expires_at"`
}

// MaxChallengeQuery bounds an authorization request's parameters, encoded as a query string.
const MaxChallengeQuery = 8 << 10

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

// CreateAuthChallenge stores c (its ID is ignored) and returns it with a new ID, the only copy of the id: the
// store keeps its hash. ConsentAt starts unset. ErrInvalid if c has no browser session, expires before it was
// created, or its query is over MaxChallengeQuery bytes or not UTF-8 text.
func (s *Store) CreateAuthChallenge(ctx context.Context, c AuthChallenge) (*AuthChallenge, error) {
	switch {
	case len(c.Query) > MaxChallengeQuery:
		return nil, fmt.Errorf("create auth challenge: %w: query is %d bytes, over the limit of %d", ErrInvalid, len(c.Query), MaxChallengeQuery)
	case !utf8.ValidString(c.Query) || strings.ContainsRune(c.Query, 0) || !utf8.ValidString(c.ClientID) || strings.ContainsRune(c.ClientID, 0):
		return nil, fmt.Errorf("create auth challenge: %w: query or client id is not UTF-8 text", ErrInvalid)
	case c.BrowserSessionID == "":
		return nil, fmt.Errorf("create auth challenge: %w: only a signed-in browser session has challenges", ErrInvalid)
	case !c.ExpiresAt.After(c.CreatedAt):
		return nil, fmt.Errorf("create auth challenge: %w: it expires before it was created", ErrInvalid)
	}
	id, err := newSecretToken()
	if err != nil {
		return nil, fmt.Errorf("create auth challenge: %w", err)
	}
	row := authChallengeRow{
		ID: hashKey(id), Query: c.Query, ClientID: c.ClientID, BrowserSessionID: c.BrowserSessionID,
		LoginAt: nullTimePtr(c.LoginAt), CreatedAt: dbTime(c.CreatedAt), ExpiresAt: dbTime(c.ExpiresAt),
	}
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		// A signed-in person opening authorization requests without finishing them keeps only the newest few:
		// rows a caller can create are bounded by something they cannot multiply for free.
		return tx.Exec(`DELETE FROM auth_challenges WHERE browser_session_id = ? AND id NOT IN (
	SELECT id FROM auth_challenges WHERE browser_session_id = ? ORDER BY created_at DESC, id LIMIT ?)`,
			c.BrowserSessionID, c.BrowserSessionID, MaxChallengesPerSession).Error
	})
	if err != nil {
		return nil, fmt.Errorf("create auth challenge: %w", mapErr(err))
	}
	return row.challenge(id), nil
}

// MaxChallengesPerSession is how many unfinished authorization requests one browser session keeps; opening
// another drops the oldest.
const MaxChallengesPerSession = 16

func nullTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	return nullTime(*t)
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

// MarkChallengeConsent records that the user of browserSessionID consented at at. Only the browser session the
// challenge is bound to can: ErrNotFound if the challenge does not exist, has expired, or belongs to another
// session.
func (s *Store) MarkChallengeConsent(ctx context.Context, id, browserSessionID string, at time.Time) error {
	res := s.conn(ctx).Model(&authChallengeRow{}).
		Where("id = ? AND browser_session_id = ? AND expires_at > ?", hashKey(id), browserSessionID, dbTime(at)).
		UpdateColumn("consent_at", dbTime(at))
	if res.Error != nil {
		return fmt.Errorf("mark auth challenge consent: %w", mapErr(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("mark auth challenge consent: %w", ErrNotFound)
	}
	return nil
}

// TakeAuthChallenge deletes the challenge as its browser session finishes it, so it is finished once: of
// concurrent calls one succeeds and the others get ErrNotFound, as they do for a challenge that does not exist,
// has expired at now, or belongs to another session.
func (s *Store) TakeAuthChallenge(ctx context.Context, id, browserSessionID string, now time.Time) error {
	res := s.conn(ctx).Where("id = ? AND browser_session_id = ? AND expires_at > ?", hashKey(id), browserSessionID, dbTime(now)).
		Delete(&authChallengeRow{})
	if res.Error != nil {
		return fmt.Errorf("take auth challenge: %w", mapErr(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("take auth challenge: %w", ErrNotFound)
	}
	return nil
}
