package oauth

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// passwordStore is what the password grant reads and writes besides fosite's storage.
type passwordStore interface {
	Authenticate(ctx context.Context, pool, email, password string) (*models.User, error)
	CreateBrowserSession(ctx context.Context, u *models.User, ip, userAgent string, now time.Time, idle, absolute time.Duration) (*models.BrowserSession, string, error)
	ConfirmBrowserSession(ctx context.Context, id string, now time.Time) error
	EndBrowserSession(ctx context.Context, id string, now time.Time) error
	grant.FactorStore
}

// PasswordGrant serves grant_type=password (RFC 6749 §4.3) at the token endpoint, for the first-party clients that
// register it (Bubble's "OAuth2 Password Flow"). It signs a user in exactly as the token API's login does: the
// attempt is reserved in the sign-in throttle (per IP and per account of the client's pool) before the password
// is hashed, the user is looked up in the client's pool, and the sign-in is a session listed and revocable like
// any other. The tokens are the provider's (password_grant.go), issued by fosite like every other grant.
type PasswordGrant struct {
	Store           passwordStore
	Throttle        *throttle.Throttle
	SessionIdle     time.Duration
	SessionAbsolute time.Duration
	Now             func() time.Time
}

// errWrongPassword is the one answer to a wrong password and an unknown or disabled account: it never tells which.
func errWrongPassword() error {
	return fosite.ErrInvalidGrant.WithHint("The username or password is incorrect.")
}

// exchange answers a password grant request. r must be detached (request.Detached): once the password is sent,
// the attempt runs to its end whatever the client does. The client is read fresh, not from the client cache: the
// request has side effects (the throttle, a session) that a second run must not repeat, and the password hash
// dwarfs a client row read.
//
//  1. fosite authenticates the client (a confidential client by its secret, a public one by client_id) and the
//     provider's password grant refuses what needs no hash: not first-party, not registered for the grant, no
//     username or password, a scope the client may not have.
//  2. The attempt is reserved (a refusal is 429 slow_down with Retry-After; a throttle that cannot be consulted,
//     503), then the password is checked in the client's pool: wrong, unknown or disabled is invalid_grant.
//  3. A session is started, put on the request, and fosite issues; the session is confirmed once the tokens are
//     stored (a password change meanwhile refuses the sign-in like a wrong password, as the token API's does).
func (g *PasswordGrant) exchange(w http.ResponseWriter, r *http.Request, oauth fosite.OAuth2Provider) (fosite.AccessRequester, fosite.AccessResponder, error) {
	ctx := r.Context()
	ar, err := oauth.NewAccessRequest(ctx, r, provider.NewSession())
	if err != nil {
		return ar, nil, err
	}
	client, ok := ar.GetClient().(*models.Client)
	if !ok {
		return ar, nil, fosite.ErrServerError.WithDebugf("unexpected client type %T", ar.GetClient())
	}
	form := ar.GetRequestForm()
	username, password := form.Get("username"), form.Get("password")
	// The password must never reach a stored form or a log.
	form.Del("password")

	attempt, wait, err := g.Throttle.Reserve(r, client.Pool, username, "")
	switch {
	case err != nil:
		return ar, nil, fosite.ErrTemporarilyUnavailable.WithHint("Sign-in is temporarily unavailable; try again shortly.").
			WithWrap(err).WithDebugf("sign-in throttle unavailable: %s", err)
	case wait > 0:
		request.Logger(ctx).Info("sign-in throttled", "grant", provider.GrantTypePassword, "retry_after", throttle.Seconds(wait))
		w.Header().Set("Retry-After", throttle.Seconds(wait))
		return ar, nil, &fosite.RFC6749Error{
			ErrorField:       "slow_down",
			DescriptionField: "Too many sign-in attempts.",
			HintField:        "Try again in " + throttle.Seconds(wait) + " seconds.",
			CodeField:        http.StatusTooManyRequests,
		}
	}
	ctx = attempt.Context()
	if throttle.Oversized(username, password) {
		return ar, nil, errWrongPassword()
	}
	u, err := g.Store.Authenticate(ctx, client.Pool, username, password)
	switch {
	case errors.Is(err, models.ErrInvalidCredentials), errors.Is(err, models.ErrUserDisabled):
		if errors.Is(err, models.ErrUserDisabled) {
			request.Logger(ctx).Info("password grant failed", "reason", "account disabled", "user", u.ID, "client", client.ID)
		} else {
			request.Logger(ctx).Info("password grant failed", "reason", "invalid credentials", "client", client.ID)
		}
		return ar, nil, errWrongPassword()
	case errors.Is(err, models.ErrEmailNotVerified):
		// The password was right; the pool requires a verified email first. No tokens.
		attempt.Succeeded()
		request.Logger(ctx).Info("password grant refused", "reason", "email not verified", "user", u.ID, "client", client.ID)
		return ar, nil, fosite.ErrInvalidGrant.WithHint("email_not_verified: verify the email address first (POST /api/v1/auth/email/resend sends a new mail).")
	case err != nil:
		attempt.Void()
		return ar, nil, fosite.ErrServerError.WithWrap(err).WithDebugf("authenticate: %s", err)
	}

	// A grant that can carry no second factor: a user who has one (or must enrol one) signs in through the token
	// API or the browser instead. The password was right, so the attempt counts as a success.
	demand, err := grant.SecondFactor(ctx, g.Store, u)
	if err != nil {
		attempt.Void()
		return ar, nil, fosite.ErrServerError.WithWrap(err).WithDebugf("second factor: %s", err)
	}
	if demand != grant.MFANone {
		attempt.Succeeded()
		request.Logger(ctx).Info("password grant refused", "reason", "mfa required", "user", u.ID, "client", client.ID)
		return ar, nil, fosite.ErrInvalidGrant.WithHint("Multi-factor authentication is required for this account; the password grant cannot carry a second factor. Sign in through the browser or the token API.")
	}
	resp, err := g.signIn(ctx, r, oauth, ar, client, u)
	if errors.Is(err, grant.ErrSignInRefused) {
		// The password was changed after it was checked: a wrong password now, and it stays counted as one.
		return ar, nil, errWrongPassword()
	}
	attempt.Succeeded()
	if err != nil {
		return ar, nil, err
	}
	return ar, resp, nil
}

// signIn records the sign-in as a session (grant.SignIn) and has fosite issue the tokens for the user's session
// tied to it.
func (g *PasswordGrant) signIn(ctx context.Context, r *http.Request, oauth fosite.OAuth2Provider, ar fosite.AccessRequester, client *models.Client, u *models.User) (fosite.AccessResponder, error) {
	var resp fosite.AccessResponder
	bs, _, err := grant.SignIn(r.WithContext(ctx), g.Store, u, client.ID, ar.GetGrantedScopes(), g.now(), g.SessionIdle, g.SessionAbsolute,
		func(s *provider.Session) (err error) {
			ar.SetSession(s)
			resp, err = oauth.NewAccessResponse(ctx, ar)
			return err
		})
	var oauthErr *fosite.RFC6749Error
	switch {
	case errors.Is(err, grant.ErrSignInRefused), errors.As(err, &oauthErr):
		return nil, err // fosite's own answer, as the token endpoint gives it
	case err != nil: // the session store's fault
		return nil, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	request.Logger(ctx).Info("password grant signed in", "user", u.ID, "client", client.ID, "session", bs.ID)
	return resp, nil
}

func (g *PasswordGrant) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}
