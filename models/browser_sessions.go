package models

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// BrowserSession is a signed-in browser: the cookie carries a secret token, the store keeps only its hash.
type BrowserSession struct {
	ID            string     `json:"id"` // "ses_" + 26 base32 characters of 128 random bits; safe to show
	UserID        string     `json:"user_id"`
	IP            string     `json:"ip"`
	UserAgent     string     `json:"user_agent"`
	AuthTime      time.Time  `json:"auth_time"` // when the user last entered their password
	CreatedAt     time.Time  `json:"created_at"`
	LastActiveAt  time.Time  `json:"last_active_at"`
	IdleExpiresAt time.Time  `json:"idle_expires_at"` // never after ExpiresAt
	ExpiresAt     time.Time  `json:"expires_at"`
	EndedAt       *time.Time `json:"ended_at,omitempty"`
	// MintedBy is the admin client that started the session by minting tokens for the user (the admin API's
	// POST /users/{id}/tokens); empty for a session the user signed in to.
	MintedBy string `json:"minted_by,omitempty"`
	// AuthMethod is how the user last authenticated: AuthMethodPassword (""), AuthMethodUpstream, or, after a
	// second factor, the amr values separated by spaces (AuthMethodOf).
	AuthMethod string `json:"auth_method,omitempty"`
}

// How a browser session's user authenticated (BrowserSession.AuthMethod).
const (
	AuthMethodPassword = ""
	AuthMethodUpstream = "fed" // through another provider (sign in with OpenID Connect or GitHub)
	AuthMethodOTP      = "otp" // a one-time code or link mailed to the user (passwordless sign-in)
)

// AMR is the session's amr claim (OpenID Connect Core §2; values from RFC 8176).
func (bs *BrowserSession) AMR() []string {
	if bs.AuthMethod == AuthMethodPassword {
		return []string{"pwd"}
	}
	return strings.Fields(bs.AuthMethod)
}

// AuthMethodOf is the AuthMethod recording amr: ["pwd"] is AuthMethodPassword, anything else its values joined
// by spaces (["fed"] is AuthMethodUpstream), so the one column says how the user authenticated.
func AuthMethodOf(amr []string) string {
	if len(amr) == 1 && amr[0] == "pwd" {
		return AuthMethodPassword
	}
	return strings.Join(amr, " ")
}

// Limits on what is recorded of the request that created or touched a session.
const (
	maxUserAgentBytes = 512
	maxIPBytes        = 64
)

// browserSessionRetention is how long an ended or expired session is kept (for the record) before
// DeleteExpiredRound removes it.
const browserSessionRetention = 7 * 24 * time.Hour

type browserSessionRow struct {
	ID            string     `gorm:"column:id;primaryKey"`
	TokenHash     string     `gorm:"column:token_hash"`
	UserID        string     `gorm:"column:user_id"`
	IP            string     `gorm:"column:ip"`
	UserAgent     string     `gorm:"column:user_agent"`
	AuthTime      time.Time  `gorm:"column:auth_time"`
	CreatedAt     time.Time  `gorm:"column:created_at"`
	LastActiveAt  time.Time  `gorm:"column:last_active_at"`
	IdleExpiresAt time.Time  `gorm:"column:idle_expires_at"`
	ExpiresAt     time.Time  `gorm:"column:expires_at"`
	EndedAt       *time.Time `gorm:"column:ended_at"`
	MintedBy      string     `gorm:"column:minted_by"`
	AuthMethod    string     `gorm:"column:auth_method"`
}

func (browserSessionRow) TableName() string { return "browser_sessions" }

func (r *browserSessionRow) session() *BrowserSession {
	return &BrowserSession{
		ID: r.ID, UserID: r.UserID, IP: r.IP, UserAgent: r.UserAgent,
		AuthTime: r.AuthTime.UTC(), CreatedAt: r.CreatedAt.UTC(), LastActiveAt: r.LastActiveAt.UTC(),
		IdleExpiresAt: r.IdleExpiresAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(), EndedAt: utcPtr(r.EndedAt),
		MintedBy: r.MintedBy, AuthMethod: r.AuthMethod,
	}
}

// activeSession is the condition for a session usable at now: not ended and not expired (idle_expires_at
// never exceeds expires_at; both are checked anyway).
const activeSession = "ended_at IS NULL AND idle_expires_at > ? AND expires_at > ?"

// clip makes a request header value storable: valid UTF-8 without NUL (PostgreSQL text accepts neither),
// at most max bytes, not cutting a character.
func clip(v string, max int) string {
	v = strings.ReplaceAll(strings.ToValidUTF8(v, "\uFFFD"), "\x00", "")
	if len(v) <= max {
		return v
	}
	v = v[:max]
	for len(v) > 0 && !utf8.ValidString(v) {
		v = v[:len(v)-1]
	}
	return v
}

// MaxActiveSessions is how many active browser sessions a user may have. Creating one more ends the oldest (by
// creation), revoking its tokens, so a user (or whoever has their password) cannot pile up sessions and grants
// without bound.
const MaxActiveSessions = 50

// CreateBrowserSession starts a session for u, authenticated at now, idle-expiring after idle and expiring
// after absolute. u must come from Authenticate, CreateUserWith or SignInWithMailToken (the session then records
// AuthMethodOTP): in the same transaction, under the user's row lock, the password hash that was checked must still be the user's, so a sign-in racing a password
// change never outlives it (see ChangePassword); if it is not, or u carries no checked password, the answer
// is ErrInvalidCredentials, as for a wrong password. An unknown user is ErrNotFound, a disabled one
// ErrUserDisabled (a concurrent SetDisabled cannot miss the new session either). Beyond MaxActiveSessions
// the oldest active sessions are ended and their tokens revoked, in the same transaction. It returns the
// session and the cookie token (256 random bits, base64url); only the token's hash is stored.
func (s *Store) CreateBrowserSession(ctx context.Context, u *User, ip, userAgent string, now time.Time, idle, absolute time.Duration) (*BrowserSession, string, error) {
	return s.CreateBrowserSessionAuth(ctx, u, AuthMethodPassword, ip, userAgent, now, idle, absolute)
}

// CreateBrowserSessionAuth is CreateBrowserSession for a sign-in that authenticated by method (AuthMethodOf its
// amr), e.g. a password and a second factor.
func (s *Store) CreateBrowserSessionAuth(ctx context.Context, u *User, method, ip, userAgent string, now time.Time, idle, absolute time.Duration) (*BrowserSession, string, error) {
	if u == nil {
		return nil, "", fmt.Errorf("create browser session: %w: no user", ErrInvalid)
	}
	if u.byMailCode && method == AuthMethodPassword {
		method = AuthMethodOTP
	}
	if u.byPasskey && method == AuthMethodPassword {
		method = AuthMethodPasskey
	}
	bs, token, err := s.startSession(ctx, u.ID, "", method, ip, userAgent, now, idle, absolute, func(cur userRow) error {
		if (u.credential == "" && !u.byMailCode && !u.byPasskey) || subtle.ConstantTimeCompare([]byte(u.credential), []byte(cur.PasswordHash)) != 1 {
			return ErrInvalidCredentials
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("create browser session: %w", err)
	}
	return bs, token, nil
}

// CreateMintedSession starts a session for the user userID without a password: an admin client (mintedBy, its
// id) mints tokens for the user through the admin API. The session is listed and revocable like any other and
// records who started it; it has no cookie (its token is never handed out). An unknown user is ErrNotFound, a
// disabled one ErrUserDisabled; the session cap holds as for CreateBrowserSession.
func (s *Store) CreateMintedSession(ctx context.Context, userID, mintedBy, ip, userAgent string, now time.Time, idle, absolute time.Duration) (*BrowserSession, error) {
	if mintedBy == "" {
		return nil, fmt.Errorf("create minted session: %w: no admin client", ErrInvalid)
	}
	bs, _, err := s.startSession(ctx, userID, mintedBy, AuthMethodPassword, ip, userAgent, now, idle, absolute, func(userRow) error { return nil })
	if err != nil {
		return nil, fmt.Errorf("create minted session: %w", err)
	}
	return bs, nil
}

// startSession creates a session row for userID in one transaction: under the user's row lock it refuses a
// disabled user and runs check on the user as locked, then ends the oldest active sessions beyond
// MaxActiveSessions.
func (s *Store) startSession(ctx context.Context, userID, mintedBy, authMethod, ip, userAgent string, now time.Time, idle, absolute time.Duration, check func(cur userRow) error) (*BrowserSession, string, error) {
	if idle <= 0 || absolute <= 0 {
		return nil, "", fmt.Errorf("%w: idle and absolute lifetimes must be positive", ErrInvalid)
	}
	id, err := newPublicID("ses_")
	if err != nil {
		return nil, "", err
	}
	token, err := newSecretToken()
	if err != nil {
		return nil, "", err
	}
	now = dbTime(now)
	expires := dbTime(now.Add(absolute))
	row := browserSessionRow{
		ID: id, TokenHash: hashKey(token), UserID: userID, IP: clip(ip, maxIPBytes),
		UserAgent: clip(userAgent, maxUserAgentBytes), AuthTime: now, CreatedAt: now, LastActiveAt: now,
		IdleExpiresAt: minTime(dbTime(now.Add(idle)), expires), ExpiresAt: expires, MintedBy: mintedBy, AuthMethod: authMethod,
	}
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		// An exclusive lock on PostgreSQL (SQLite has one writer): it orders this sign-in against a password
		// change or a disable of the user, and serializes the user's session creations so the cap holds.
		q := tx.Select("id", "disabled", "password_hash").Where("id = ?", userID)
		if s.dialect == dialectPostgres {
			q = q.Clauses(clause.Locking{Strength: "NO KEY UPDATE"})
		}
		var cur userRow
		if err := q.Take(&cur).Error; err != nil {
			return mapErr(err)
		}
		if cur.Disabled {
			return ErrUserDisabled
		}
		if err := check(cur); err != nil {
			return err
		}
		if err := tx.Create(&row).Error; err != nil {
			return mapErr(err)
		}
		method := cmp.Or(authMethod, "password")
		started := []Event{{Type: EventSessionStarted, UserID: userID, ClientID: mintedBy,
			Details: map[string]any{"session_id": id, "auth_method": method}}}
		if mintedBy == "" {
			started = append(started, Event{Type: EventSignedIn, UserID: userID, Details: map[string]any{"session_id": id, "auth_method": method}})
		}
		if err := recordEvents(ctx, tx, started); err != nil {
			return err
		}
		var surplus []string
		err := tx.Model(&browserSessionRow{}).Where("user_id = ? AND id <> ? AND "+activeSession, userID, id, now, now).
			Order("created_at DESC, id DESC").Offset(MaxActiveSessions-1).Pluck("id", &surplus).Error
		if err != nil {
			return mapErr(err)
		}
		_, err = endSessions(tx, surplus, now)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return row.session(), token, nil
}

// ConfirmBrowserSession is called after tokens were issued through a new session, outside its transaction: if
// the session ended meanwhile (a password change, the session cap), those tokens escaped the revocation, so it
// revokes them and returns ErrNotFound. The session row is locked while it looks, so a concurrent end either
// finished first (and is seen here) or revokes after this, when the tokens exist.
func (s *Store) ConfirmBrowserSession(ctx context.Context, id string, now time.Time) error {
	t := dbTime(now)
	ended := false
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		q := tx.Select("id").Where("id = ? AND "+activeSession, id, t, t)
		if s.dialect == dialectPostgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		var row browserSessionRow
		err := q.Take(&row).Error
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return mapErr(err)
		}
		ended = true
		return revokeTokensWhere(tx, "sid = ?", id)
	})
	switch {
	case err != nil:
		return fmt.Errorf("confirm browser session: %w", err)
	case ended:
		return fmt.Errorf("confirm browser session: %w", ErrNotFound)
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// BrowserSessionByToken returns the session of a cookie token; ErrNotFound if there is none or it has
// ended or expired at now.
func (s *Store) BrowserSessionByToken(ctx context.Context, token string, now time.Time) (*BrowserSession, error) {
	var row browserSessionRow
	t := dbTime(now)
	err := s.conn(ctx).Where("token_hash = ? AND "+activeSession, hashKey(token), t, t).Take(&row).Error
	if err != nil {
		return nil, fmt.Errorf("get browser session: %w", mapErr(err))
	}
	return row.session(), nil
}

// BrowserSessionByID returns a session in any state; ErrNotFound if there is none.
func (s *Store) BrowserSessionByID(ctx context.Context, id string) (*BrowserSession, error) {
	var row browserSessionRow
	if err := s.conn(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("get browser session: %w", mapErr(err))
	}
	return row.session(), nil
}

// TouchBrowserSession records activity at now from ip: last_active_at = now and idle_expires_at =
// min(now+idle, expires_at). ErrNotFound if the session is not active at now.
func (s *Store) TouchBrowserSession(ctx context.Context, id, ip string, now time.Time, idle time.Duration) error {
	if err := s.touchBrowserSession(ctx, id, now, idle, map[string]any{"ip": clip(ip, maxIPBytes)}); err != nil {
		return fmt.Errorf("touch browser session: %w", err)
	}
	return nil
}

// UseBrowserSession records that a grant made in the session was used at now (a code exchange or a refresh), as
// TouchBrowserSession does but keeping the recorded IP: the caller may be the app's backend, not the person's
// device. A session used less than a minute (or a tenth of idle) ago is only read, so a burst of refreshes costs
// no writes. ErrNotFound if the session is not active at now: ended, idle or absolutely expired, or unknown.
func (s *Store) UseBrowserSession(ctx context.Context, id string, now time.Time, idle time.Duration) error {
	var row browserSessionRow
	t := dbTime(now)
	err := s.conn(ctx).Select("last_active_at").Where("id = ? AND "+activeSession, id, t, t).Take(&row).Error
	if err != nil {
		return fmt.Errorf("use browser session: %w", mapErr(err))
	}
	if now.Sub(row.LastActiveAt) < min(time.Minute, idle/10) {
		return nil
	}
	if err := s.touchBrowserSession(ctx, id, now, idle, map[string]any{}); err != nil {
		return fmt.Errorf("use browser session: %w", err)
	}
	return nil
}

// touchBrowserSession moves an active session's idle expiry in one statement, so a session that ends or expires
// concurrently is either touched while still active or reported as not found.
func (s *Store) touchBrowserSession(ctx context.Context, id string, now time.Time, idle time.Duration, cols map[string]any) error {
	t, idleUntil := dbTime(now), dbTime(now.Add(idle))
	cols["last_active_at"] = t
	cols["idle_expires_at"] = gorm.Expr("CASE WHEN expires_at < ? THEN expires_at ELSE ? END", idleUntil, idleUntil)
	res := s.conn(ctx).Model(&browserSessionRow{}).Where("id = ? AND "+activeSession, id, t, t).UpdateColumns(cols)
	if res.Error != nil {
		return mapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// SetBrowserSessionAuthTime records that the user authenticated again, with a password, at at (prompt=login,
// max_age) on a session that has not ended; ErrNotFound otherwise.
func (s *Store) SetBrowserSessionAuthTime(ctx context.Context, id string, at time.Time) error {
	return s.SetBrowserSessionAuth(ctx, id, at, AuthMethodPassword)
}

// SetBrowserSessionUpstreamAuthTime is SetBrowserSessionAuthTime for a user who authenticated again through
// another provider.
func (s *Store) SetBrowserSessionUpstreamAuthTime(ctx context.Context, id string, at time.Time) error {
	return s.SetBrowserSessionAuth(ctx, id, at, AuthMethodUpstream)
}

// SetBrowserSessionAuth is SetBrowserSessionAuthTime for a user who authenticated again by method (AuthMethodOf).
func (s *Store) SetBrowserSessionAuth(ctx context.Context, id string, at time.Time, method string) error {
	res := s.conn(ctx).Model(&browserSessionRow{}).Where("id = ? AND ended_at IS NULL", id).
		UpdateColumns(map[string]any{"auth_time": dbTime(at), "auth_method": method})
	if res.Error != nil {
		return fmt.Errorf("set browser session auth time: %w", mapErr(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("set browser session auth time: %w", ErrNotFound)
	}
	return nil
}

// ListBrowserSessions returns the user's sessions active at now, most recently active first.
func (s *Store) ListBrowserSessions(ctx context.Context, userID string, now time.Time) ([]BrowserSession, error) {
	var rows []browserSessionRow
	t := dbTime(now)
	err := s.conn(ctx).Where("user_id = ? AND "+activeSession, userID, t, t).
		Order("last_active_at DESC, id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list browser sessions: %w", mapErr(err))
	}
	out := make([]BrowserSession, len(rows))
	for i := range rows {
		out[i] = *rows[i].session()
	}
	return out, nil
}

// EndBrowserSession ends a session (sign-out) and, in the same transaction, revokes every token issued
// through it: its refresh tokens become inactive, its access tokens are deleted, its unused authorization
// codes become used. ErrNotFound if there is no such session or it has already ended; an expired session
// can still be ended.
func (s *Store) EndBrowserSession(ctx context.Context, id string, now time.Time) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		n, err := endSessions(tx, []string{id}, now)
		if err == nil && n == 0 {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("end browser session: %w", err)
	}
	return nil
}

// EndUserBrowserSessions ends every session of the user that has not ended, except exceptID ("" for
// none), revoking their tokens as EndBrowserSession does, in one transaction. Expired sessions are ended
// too, so refresh tokens issued through them are revoked. It returns how many sessions it ended.
func (s *Store) EndUserBrowserSessions(ctx context.Context, userID, exceptID string, now time.Time) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *gorm.DB) (err error) {
		n, err = endUserSessions(tx, userID, exceptID, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("end user browser sessions: %w", err)
	}
	return n, nil
}

// endUserSessions is EndUserBrowserSessions inside tx.
func endUserSessions(tx *gorm.DB, userID, exceptID string, now time.Time) (int, error) {
	var ids []string
	err := tx.Model(&browserSessionRow{}).Where("user_id = ? AND ended_at IS NULL AND id <> ?", userID, exceptID).
		Order("id").Pluck("id", &ids).Error
	if err != nil {
		return 0, mapErr(err)
	}
	return endSessions(tx, ids, now)
}

// endSessions ends the sessions ids inside tx and revokes their tokens; it returns how many it ended. It is the
// one place a session ends (sign-out, the sessions page, the token API, a password change, a disable, the session
// cap, an operator's revocation), so it is where logout is sent on to the clients that took part: a back-channel
// logout message for each is enqueued here, for exactly the sessions this call ended, and commits or rolls back
// with the rest.
func endSessions(tx *gorm.DB, ids []string, now time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var endedRows []struct{ ID, UserID string }
	err := tx.Raw("UPDATE browser_sessions SET ended_at = ? WHERE id IN ? AND ended_at IS NULL RETURNING id, user_id", dbTime(now), ids).
		Scan(&endedRows).Error
	if err != nil {
		return 0, mapErr(err)
	}
	ended := make([]string, len(endedRows))
	for i, r := range endedRows {
		ended[i] = r.ID
		ev := Event{Type: EventSessionEnded, UserID: r.UserID, Details: map[string]any{"session_id": r.ID}}
		if err := recordEvent(txContext(tx), tx, ev); err != nil {
			return 0, err
		}
	}
	if len(ended) > 0 {
		if err := enqueueBackchannelLogouts(tx, ended, now); err != nil {
			return 0, err
		}
	}
	return len(ended), revokeTokensWhere(tx, "sid IN ?", ids)
}

// revokeTokensWhere revokes the tokens matching cond (on the token tables' columns): refresh tokens become
// inactive (kept, so reuse is still detected) and leave any reuse interval, access tokens are deleted, unused codes become used.
func revokeTokensWhere(tx *gorm.DB, cond string, args ...any) error {
	if err := tx.Table(tableRefresh).Where(cond, args...).Where("(active = ? OR rotated_at IS NOT NULL)", true).Updates(revokedRefresh).Error; err != nil {
		return mapErr(err)
	}
	if err := tx.Table(tableAccess).Where(cond, args...).Delete(&tokenRow{}).Error; err != nil {
		return mapErr(err)
	}
	return mapErr(tx.Table(tableCode).Where(cond, args...).Where("active = ?", true).Update("active", false).Error)
}
