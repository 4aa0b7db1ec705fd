package models

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Device authorization (RFC 8628): a device without a browser asks for a device code and a user code; a person
// enters the user code on the /device page, signs in and approves or denies; the device polls the token endpoint
// with the device code. Only the hashes of both codes are stored.

// DeviceStatus is where a device authorization stands.
type DeviceStatus string

const (
	DevicePending  DeviceStatus = "pending"
	DeviceApproved DeviceStatus = "approved"
	DeviceDenied   DeviceStatus = "denied"
	DeviceRedeemed DeviceStatus = "redeemed" // its tokens were issued: the device code is spent
)

// DeviceAuthorization is one device authorization request.
type DeviceAuthorization struct {
	ClientID string
	Scopes   []string
	Status   DeviceStatus
	// Interval is how long the device must wait between polls; slow_down raises it by DeviceSlowDownStep.
	Interval  time.Duration
	CreatedAt time.Time
	ExpiresAt time.Time
}

// DeviceSlowDownStep is what each slow_down adds to a device's polling interval (RFC 8628 §3.5).
const DeviceSlowDownStep = 5 * time.Second

type deviceAuthorizationRow struct {
	DeviceCodeHash   string     `gorm:"column:device_code_hash;primaryKey"`
	UserCodeHash     string     `gorm:"column:user_code_hash"`
	ClientID         string     `gorm:"column:client_id"`
	Scopes           string     `gorm:"column:scopes"`
	Status           string     `gorm:"column:status"`
	UserID           string     `gorm:"column:user_id"`
	BrowserSessionID string     `gorm:"column:browser_session_id"`
	Session          string     `gorm:"column:session"`
	IntervalSeconds  int64      `gorm:"column:interval_seconds"`
	Polls            int64      `gorm:"column:polls"`
	LastPolledAt     *time.Time `gorm:"column:last_polled_at"`
	CreatedAt        time.Time  `gorm:"column:created_at"`
	ExpiresAt        time.Time  `gorm:"column:expires_at"`
}

func (deviceAuthorizationRow) TableName() string { return "device_authorizations" }

func (r *deviceAuthorizationRow) authorization() *DeviceAuthorization {
	return &DeviceAuthorization{
		ClientID: r.ClientID, Scopes: strings.Fields(r.Scopes), Status: DeviceStatus(r.Status),
		Interval: time.Duration(r.IntervalSeconds) * time.Second, CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(),
	}
}

// userCodeAlphabet is RFC 8628 §6.1's example: consonants only (no vowels, so no words; no look-alikes such as
// 0/O or 1/I), 20 letters. Eight of them are about 34.6 bits, guessed only at the throttled /device page.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// UserCodeLength is how many letters a user code has; it is shown as two groups of four (FormatUserCode).
const UserCodeLength = 8

// NewUserCode returns a random user code, uniformly drawn from userCodeAlphabet, in canonical form (no dash).
func NewUserCode() (string, error) {
	out := make([]byte, 0, UserCodeLength)
	var buf [16]byte
	for len(out) < UserCodeLength {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", fmt.Errorf("user code: %w", err)
		}
		for _, b := range buf {
			// 240 is the largest multiple of 20 a byte holds: rejecting the rest keeps every letter equally likely.
			if b < 240 && len(out) < UserCodeLength {
				out = append(out, userCodeAlphabet[b%20])
			}
		}
	}
	return string(out), nil
}

// NormalizeUserCode turns what a person typed into the canonical code: letters upper-cased, dashes and spaces
// dropped. ok is false when the result cannot be a user code (wrong length or a letter outside the alphabet).
func NormalizeUserCode(typed string) (code string, ok bool) {
	if len(typed) > 4*UserCodeLength {
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(typed) {
		switch {
		case r == '-' || r == ' ' || r == '\t':
		case r < 128 && strings.ContainsRune(userCodeAlphabet, r):
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	if b.Len() != UserCodeLength {
		return "", false
	}
	return b.String(), true
}

// FormatUserCode shows a canonical user code as people read it: BCDF-GHJK.
func FormatUserCode(code string) string {
	if len(code) != UserCodeLength {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// CreateDeviceAuthorization stores a pending device authorization for d's client, scopes, interval and expiry
// and returns its device code and user code (canonical form), the only copies: the store keeps their hashes.
func (s *Store) CreateDeviceAuthorization(ctx context.Context, d DeviceAuthorization) (deviceCode, userCode string, err error) {
	if !d.ExpiresAt.After(d.CreatedAt) || d.Interval < time.Second {
		return "", "", fmt.Errorf("create device authorization: %w: bad expiry or interval", ErrInvalid)
	}
	if deviceCode, err = newSecretToken(); err != nil {
		return "", "", fmt.Errorf("create device authorization: %w", err)
	}
	// A live user code is unique; a collision (about one in 10^10 per live code) draws again.
	for range 3 {
		if userCode, err = NewUserCode(); err != nil {
			return "", "", fmt.Errorf("create device authorization: %w", err)
		}
		row := deviceAuthorizationRow{
			DeviceCodeHash: hashKey(deviceCode), UserCodeHash: hashKey(userCode), ClientID: d.ClientID,
			Scopes: strings.Join(d.Scopes, " "), Status: string(DevicePending), IntervalSeconds: int64(d.Interval / time.Second),
			CreatedAt: dbTime(d.CreatedAt), ExpiresAt: dbTime(d.ExpiresAt),
		}
		var taken bool
		err = s.inTx(ctx, func(tx *gorm.DB) error {
			// An expired row may still hold the code until cleanup takes it.
			if err := tx.Exec(`DELETE FROM device_authorizations WHERE user_code_hash = ? AND expires_at <= ?`, row.UserCodeHash, dbTime(d.CreatedAt)).Error; err != nil {
				return err
			}
			var n int64
			if err := tx.Model(&deviceAuthorizationRow{}).Where("user_code_hash = ?", row.UserCodeHash).Count(&n).Error; err != nil {
				return err
			}
			if taken = n > 0; taken {
				return nil
			}
			return tx.Create(&row).Error
		})
		if err != nil {
			return "", "", fmt.Errorf("create device authorization: %w", mapErr(err))
		}
		if !taken {
			return deviceCode, userCode, nil
		}
	}
	return "", "", errors.New("create device authorization: no free user code after 3 draws")
}

// PendingDeviceAuthorization returns the pending, unexpired device authorization of a user code (canonical
// form); ErrNotFound otherwise, whatever the reason.
func (s *Store) PendingDeviceAuthorization(ctx context.Context, userCode string, now time.Time) (*DeviceAuthorization, error) {
	var row deviceAuthorizationRow
	err := s.conn(ctx).Where("user_code_hash = ? AND status = ? AND expires_at > ?", hashKey(userCode), string(DevicePending), dbTime(now)).Take(&row).Error
	if err != nil {
		return nil, fmt.Errorf("get device authorization: %w", mapErr(err))
	}
	return row.authorization(), nil
}

// DeviceDecision is a person's answer to a device authorization: approved with the grant's session (opaque
// JSON the provider reads back when the device polls), or denied.
type DeviceDecision struct {
	Approve          bool
	UserID           string
	BrowserSessionID string
	Session          []byte
}

// DecideDeviceAuthorization records the decision on a pending, unexpired device authorization, once: ErrNotFound
// if the code is unknown, expired or already decided.
func (s *Store) DecideDeviceAuthorization(ctx context.Context, userCode string, d DeviceDecision, now time.Time) error {
	status := DeviceDenied
	if d.Approve {
		status = DeviceApproved
	}
	res := s.conn(ctx).Model(&deviceAuthorizationRow{}).
		Where("user_code_hash = ? AND status = ? AND expires_at > ?", hashKey(userCode), string(DevicePending), dbTime(now)).
		Updates(map[string]any{"status": string(status), "user_id": d.UserID, "browser_session_id": d.BrowserSessionID, "session": string(d.Session)})
	if res.Error != nil {
		return fmt.Errorf("decide device authorization: %w", mapErr(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("decide device authorization: %w", ErrNotFound)
	}
	return nil
}

// DevicePoll is what a device's poll found.
type DevicePoll struct {
	// Outcome: DevicePending (authorization_pending), DeviceApproved (this poll redeemed it: issue the tokens),
	// DeviceDenied, or DeviceRedeemed (already spent).
	Outcome DeviceStatus
	// SlowDown: a pending authorization polled before its interval had passed; Interval is the raised one.
	SlowDown bool
	Expired  bool
	Interval time.Duration
	// Session and Scopes are the approved grant's, set when Outcome is DeviceApproved.
	Session []byte
	Scopes  []string
}

// PollDeviceAuthorization is one poll of deviceCode by clientID at now. ErrNotFound: no such device code for this
// client. An approved authorization is redeemed by exactly one poll (a conditional update: reserve, then act),
// without regard to pacing; every other poll sees it spent. A pending one is paced in the database, so every
// node sees the same last poll: a poll that comes too soon, or races another poll, raises the interval.
func (s *Store) PollDeviceAuthorization(ctx context.Context, deviceCode, clientID string, now time.Time) (DevicePoll, error) {
	var row deviceAuthorizationRow
	db := s.conn(ctx)
	key := hashKey(deviceCode)
	if err := db.Where("device_code_hash = ? AND client_id = ?", key, clientID).Take(&row).Error; err != nil {
		return DevicePoll{}, fmt.Errorf("poll device authorization: %w", mapErr(err))
	}
	p := DevicePoll{Outcome: DeviceStatus(row.Status), Interval: time.Duration(row.IntervalSeconds) * time.Second}
	if !now.Before(row.ExpiresAt) && p.Outcome != DeviceRedeemed {
		p.Expired = true
		return p, nil
	}
	switch p.Outcome {
	case DeviceApproved:
		res := db.Model(&deviceAuthorizationRow{}).Where("device_code_hash = ? AND status = ?", key, string(DeviceApproved)).
			Updates(map[string]any{"status": string(DeviceRedeemed), "last_polled_at": dbTime(now)})
		if res.Error != nil {
			return DevicePoll{}, fmt.Errorf("redeem device authorization: %w", mapErr(res.Error))
		}
		if res.RowsAffected == 0 {
			p.Outcome = DeviceRedeemed // another poll won
			return p, nil
		}
		p.Session, p.Scopes = []byte(row.Session), strings.Fields(row.Scopes)
		return p, nil
	case DevicePending:
	default:
		return p, nil
	}
	// Compare-and-swap on the poll count: of polls racing from the same count one goes through.
	tooSoon := row.LastPolledAt != nil && now.Sub(*row.LastPolledAt) < p.Interval
	if !tooSoon {
		res := db.Model(&deviceAuthorizationRow{}).Where("device_code_hash = ? AND polls = ?", key, row.Polls).
			Updates(map[string]any{"polls": row.Polls + 1, "last_polled_at": dbTime(now)})
		if res.Error != nil {
			return DevicePoll{}, fmt.Errorf("poll device authorization: %w", mapErr(res.Error))
		}
		if res.RowsAffected == 1 {
			return p, nil
		}
	}
	res := db.Model(&deviceAuthorizationRow{}).Where("device_code_hash = ?", key).
		Updates(map[string]any{"interval_seconds": gorm.Expr("interval_seconds + ?", int64(DeviceSlowDownStep/time.Second)),
			"polls": gorm.Expr("polls + 1"), "last_polled_at": dbTime(now)})
	if res.Error != nil {
		return DevicePoll{}, fmt.Errorf("slow down device authorization: %w", mapErr(res.Error))
	}
	p.SlowDown, p.Interval = true, p.Interval+DeviceSlowDownStep
	return p, nil
}

// ReleaseDeviceAuthorization puts a device authorization this poll redeemed back to approved, when its tokens
// could not be issued after all, so the next poll can try again.
func (s *Store) ReleaseDeviceAuthorization(ctx context.Context, deviceCode string) error {
	err := s.conn(ctx).Model(&deviceAuthorizationRow{}).Where("device_code_hash = ? AND status = ?", hashKey(deviceCode), string(DeviceRedeemed)).
		UpdateColumn("status", string(DeviceApproved)).Error
	if err != nil {
		return fmt.Errorf("release device authorization: %w", mapErr(err))
	}
	return nil
}
