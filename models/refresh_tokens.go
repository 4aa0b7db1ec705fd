package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

// CreateRefreshTokenSession stores a refresh token's request, with the (hashed) signature of the access
// token issued alongside it.
func (s *Store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	extra := map[string]any{"access_token_signature": ""}
	if accessSignature != "" {
		extra["access_token_signature"] = hashKey(accessSignature)
	}
	if err := s.insertToken(ctx, tableRefresh, signature, req, fosite.RefreshToken, extra); err != nil {
		return fmt.Errorf("create refresh token: %w", err)
	}
	return nil
}

// GetRefreshTokenSession returns a refresh token's request. For a rotated or revoked token it returns the
// request together with fosite.ErrInactiveToken, so fosite can detect reuse and revoke the grant; except that a
// token rotated within its client's reuse interval (Client.RefreshTokenReuseInterval) reads as active, so a second
// tab presenting it is not taken for a thief. RotateRefreshToken claims that interval again, atomically.
func (s *Store) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, err := func() (fosite.Requester, error) {
		row, err := s.findToken(ctx, tableRefresh, signature)
		if err != nil {
			return nil, err
		}
		req, err := s.request(ctx, row, session)
		if err != nil {
			return nil, err
		}
		if !row.Active && !s.withinReuseInterval(row.RotatedAt, req.Client) {
			return req, fosite.ErrInactiveToken
		}
		return req, nil
	}()
	if err != nil {
		if errors.Is(err, fosite.ErrInactiveToken) {
			return req, err
		}
		return nil, fmt.Errorf("get refresh token: %w", err)
	}
	return req, nil
}

// withinReuseInterval: a refresh token rotated at rotatedAt (nil: not rotated, or since revoked) may still be
// presented now under client's refresh policy.
func (s *Store) withinReuseInterval(rotatedAt *time.Time, client fosite.Client) bool {
	c, ok := client.(*Client)
	if rotatedAt == nil || !ok || c.RefreshTokenReuseInterval <= 0 {
		return false
	}
	return !s.now().After(rotatedAt.Add(c.RefreshTokenReuseInterval))
}

// DeleteRefreshTokenSession deletes a refresh token; deleting a missing one is not an error.
func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := s.lockRefreshFamily(tx, "(SELECT request_id FROM oauth2_refresh WHERE signature = ?)", hashKey(signature)); err != nil {
			return err
		}
		return tx.Table(tableRefresh).Where("signature = ?", hashKey(signature)).Delete(&tokenRow{}).Error
	})
	if err != nil {
		return fmt.Errorf("delete refresh token: %w", mapErr(err))
	}
	return nil
}

// revokedRefresh is what revoking does to a refresh token row: inactive, and no longer within a reuse interval.
var revokedRefresh = map[string]any{"active": false, "rotated_at": nil, "successor": nil}

// RevokeRefreshToken marks every refresh token of the grant requestID inactive, ending any reuse interval.
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := s.lockRefreshFamily(tx, "?", requestID); err != nil {
			return err
		}
		var gone []revokedToken
		err := tx.Raw("UPDATE "+tableRefresh+" SET active = ?, rotated_at = NULL, successor = NULL WHERE request_id = ? AND (active = ? OR rotated_at IS NOT NULL) RETURNING client_id, subject, form",
			false, requestID, true).Scan(&gone).Error
		if err != nil {
			return err
		}
		return recordRevocation(ctx, tx, gone, "refresh_token")
	})
	if err != nil {
		return fmt.Errorf("revoke refresh tokens: %w", mapErr(err))
	}
	return nil
}

// lockRefreshFamily takes the row locks of one grant's refresh tokens in signature order (PostgreSQL; SQLite
// has one writer). Reuse detection deletes the presented token and revokes its grant in one transaction while a
// concurrent redemption revokes the same grant: locking the whole family first, always in the same order, makes
// them queue instead of deadlocking. grant is SQL for the request id, with its argument.
func (s *Store) lockRefreshFamily(tx *gorm.DB, grant string, arg any) error {
	if s.dialect != dialectPostgres {
		return nil
	}
	return tx.Exec("SELECT 1 FROM oauth2_refresh WHERE request_id = "+grant+" ORDER BY signature FOR UPDATE", arg).Error
}

// RotateRefreshToken marks the refresh token inactive, records when (rotated_at), and deletes the grant's access
// tokens. The update is a compare-and-swap on active: of concurrent rotations of one token exactly one wins; a
// loser, or a later use, gets fosite.ErrSerializationFailure (its grant is then revoked as reuse). An unknown
// token is fosite.ErrNotFound. Clients with a reuse interval rotate through RotateRefreshTokenWithin instead.
func (s *Store) RotateRefreshToken(ctx context.Context, requestID string, refreshSignature string) error {
	key := hashKey(refreshSignature)
	now := dbTime(s.now())
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Table(tableRefresh).Where("signature = ? AND active = ?", key, true).
			Updates(map[string]any{"active": false, "rotated_at": now})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 1 {
			return mapErr(tx.Table(tableAccess).Where("request_id = ?", requestID).Delete(&tokenRow{}).Error)
		}
		return s.refreshTokenGone(tx, key)
	})
	if err != nil {
		return fmt.Errorf("rotate refresh token: %w", err)
	}
	return nil
}

// RotateRefreshTokenWithin rotates a refresh token of a client with a reuse interval (Client
// RefreshTokenReuseInterval > 0), in the transaction of ctx. sealedSuccessor is the refresh token the caller
// will issue if this rotation wins, sealed so that only the holder of the rotated token can open it.
//
// The first use wins a compare-and-swap on active: the token is spent (rotated_at, sealedSuccessor recorded),
// the access token issued with it is deleted (not the grant's others: another tab holds them), and the answer
// is nil: the caller stores its new tokens. A later or concurrent use within interval of that rotation gets the
// winner's sealed successor instead, and the caller answers that same refresh token: the grant keeps one live
// chain however often the spent token is replayed. The claim is one update conditional on rotated_at, which a
// revocation clears, so it holds the row against a concurrent revocation until the transaction ends. Outside the
// interval, or once revoked, the answer is fosite.ErrSerializationFailure (reuse: the grant is revoked); an
// unknown token is fosite.ErrNotFound.
func (s *Store) RotateRefreshTokenWithin(ctx context.Context, refreshSignature string, interval time.Duration, sealedSuccessor string) (successor string, err error) {
	key := hashKey(refreshSignature)
	now := dbTime(s.now())
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Table(tableRefresh).Where("signature = ? AND active = ?", key, true).
			Updates(map[string]any{"active": false, "rotated_at": now, "successor": sealedSuccessor})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 1 {
			return mapErr(tx.Exec("DELETE FROM "+tableAccess+" WHERE signature = (SELECT access_token_signature FROM "+
				tableRefresh+" WHERE signature = ?)", key).Error)
		}
		res = tx.Table(tableRefresh).
			Where("signature = ? AND active = ? AND rotated_at >= ? AND successor IS NOT NULL", key, false, now.Add(-interval)).
			Update("rotated_at", gorm.Expr("rotated_at"))
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 0 {
			return s.refreshTokenGone(tx, key)
		}
		var sealed []string
		if err := tx.Table(tableRefresh).Where("signature = ?", key).Pluck("successor", &sealed).Error; err != nil {
			return mapErr(err)
		}
		if len(sealed) == 0 || sealed[0] == "" {
			return fosite.ErrSerializationFailure
		}
		successor = sealed[0]
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("rotate refresh token: %w", err)
	}
	return successor, nil
}

// refreshTokenGone is the answer for a refresh token a rotation could not spend or claim: fosite.ErrNotFound if
// there is no such token, else fosite.ErrSerializationFailure (already spent, or revoked).
func (s *Store) refreshTokenGone(tx *gorm.DB, key string) error {
	var n int64
	if err := tx.Table(tableRefresh).Where("signature = ?", key).Count(&n).Error; err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return fosite.ErrNotFound
	}
	return fosite.ErrSerializationFailure
}

// KeepRefreshToken is RotateRefreshToken for a client that does not rotate (Client.RotatesRefreshTokens): the
// token stays active, with its expiry, and nothing already issued is deleted. The update confirms the token is
// still active and holds its row lock until the transaction ends, so a concurrent revocation of the grant waits
// and then reaches the access token issued with it. fosite.ErrInactiveToken if the token was revoked meanwhile,
// fosite.ErrNotFound if there is no such token.
func (s *Store) KeepRefreshToken(ctx context.Context, refreshSignature string) error {
	key := hashKey(refreshSignature)
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Table(tableRefresh).Where("signature = ? AND active = ?", key, true).Update("active", true)
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 1 {
			return nil
		}
		var n int64
		if err := tx.Table(tableRefresh).Where("signature = ?", key).Count(&n).Error; err != nil {
			return mapErr(err)
		}
		if n == 0 {
			return fosite.ErrNotFound
		}
		return fosite.ErrInactiveToken
	})
	if err != nil {
		return fmt.Errorf("keep refresh token: %w", err)
	}
	return nil
}
