package grant

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// ErrSignInRefused: the session could not start because the password that was checked is no longer the user's
// (changed meanwhile), the user was disabled meanwhile, or the new session was ended before its tokens were out.
// Callers answer it as a wrong password.
var ErrSignInRefused = errors.New("sign-in refused after the password check")

// SessionStore is what SignIn records a sign-in with.
type SessionStore interface {
	CreateBrowserSession(ctx context.Context, u *models.User, ip, userAgent string, now time.Time, idle, absolute time.Duration) (*models.BrowserSession, string, error)
	SessionConfirmer
}

// SessionConfirmer ends or confirms a session whose tokens are being issued.
type SessionConfirmer interface {
	ConfirmBrowserSession(ctx context.Context, id string, now time.Time) error
	EndBrowserSession(ctx context.Context, id string, now time.Time) error
}

// ErrSessionEnded: the session was ended (a password change, a disable, the session cap) while its tokens were
// being issued; the confirmation revoked them.
var ErrSessionEnded = errors.New("session ended while its tokens were issued")

// IssueInSession has issue make the tokens of bs, a session just created, and then confirms it. If issue fails
// the session is ended. A password change, a disable or the session cap may end the session while its tokens
// are being issued, after revoking the session's tokens; the confirmation revokes these too and the answer is
// ErrSessionEnded. Any other error is issue's own or a store fault.
func IssueInSession(ctx context.Context, store SessionConfirmer, bs *models.BrowserSession, now time.Time, issue func() error) error {
	if err := issue(); err != nil {
		if endErr := store.EndBrowserSession(ctx, bs.ID, now); endErr != nil && !errors.Is(endErr, models.ErrNotFound) {
			request.Logger(ctx).Error("end the session of a failed sign-in", "session", bs.ID, "error", endErr)
		}
		return err
	}
	switch err := store.ConfirmBrowserSession(ctx, bs.ID, now); {
	case errors.Is(err, models.ErrNotFound):
		request.Logger(ctx).Info("sign-in refused", "reason", "session ended while its tokens were issued", "user", bs.UserID, "session", bs.ID)
		return ErrSessionEnded
	case err != nil:
		return fmt.Errorf("confirm session: %w", err)
	}
	return nil
}

// SignIn is the one way a checked password becomes tokens outside the browser pages (the token API's login and
// sign-up, the password grant). It records the sign-in as a session, listed and revocable like browser ones,
// builds the grant's session for u and clientID tied to it, has issue make the tokens, then confirms the session:
// a password change (or the session cap) may have ended it while its tokens were being issued, after revoking
// the session's tokens, and the confirmation revokes these too. u must be the user whose password was just
// checked: the session starts only while that password is still the user's.
//
// An error is ErrSignInRefused, issue's own error (the session is ended), or a store fault.
func SignIn(r *http.Request, store SessionStore, u *models.User, clientID string, scopes []string, now time.Time,
	idle, absolute time.Duration, issue func(*provider.Session) error) (*models.BrowserSession, *provider.Session, error) {
	ctx := r.Context()
	bs, _, err := store.CreateBrowserSession(ctx, u, request.ClientIP(r), r.UserAgent(), now, idle, absolute)
	switch {
	case errors.Is(err, models.ErrInvalidCredentials), errors.Is(err, models.ErrUserDisabled):
		request.Logger(ctx).Info("sign-in refused", "reason", "password changed or account disabled since the check", "user", u.ID)
		return nil, nil, ErrSignInRefused
	case err != nil:
		return nil, nil, fmt.Errorf("create session: %w", err)
	}
	session := provider.SessionFor(IdentityOf(u), scopes, bs.ID, now, now)
	session.ClientID = clientID
	if err := IssueInSession(ctx, store, bs, now, func() error { return issue(session) }); err != nil {
		if errors.Is(err, ErrSessionEnded) {
			return nil, nil, ErrSignInRefused
		}
		return nil, nil, err
	}
	return bs, session, nil
}
