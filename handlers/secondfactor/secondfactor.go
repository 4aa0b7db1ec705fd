// Package secondfactor is the browser's second sign-in step: after a checked password (or another provider that
// vouched for the user), the page that asks for the code of the user's authenticator app or a recovery code.
// What the sign-in needs to go on is kept in a single-use MFA challenge (models.Store.CreateMFAChallenge, 5
// minutes), never in the form: the form carries the challenge's token, and the challenge is bound to the browser
// that passed the first step by the hash of a cookie of that browser, so a token copied elsewhere opens nothing.
// The code is checked by grant.CheckCode behind throttle.ReserveCode, as the token API checks it. A user with a
// passkey may answer with it instead: the page carries the assertion options (a ceremony bound to the challenge),
// and its script posts the assertion in field credential.
package secondfactor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/passkey"
	"github.com/latchkey/latchkey/templates"
)

// Path is where the code page posts.
const Path = "/login/mfa"

// Purpose marks the browser's challenges: the token API's /mfa/verify never takes one, nor this page an API one.
const Purpose = "browser-login"

// cookie holds the browser's binding secret; one per browser, so two tabs signing in both keep theirs.
const cookie = "lk_mfa"

// Store is what the second step reads and writes.
type Store interface {
	grant.FactorStore
	CreateMFAChallenge(ctx context.Context, c models.MFAChallenge, ttl time.Duration) (string, error)
	PeekMFAChallenge(ctx context.Context, token, purpose string) (*models.MFAChallenge, error)
	ReserveMFAChallenge(ctx context.Context, token, purpose string) (*models.MFAChallenge, error)
	ReleaseMFAChallenge(ctx context.Context, token string) error
}

// Resume is what the sign-in needs to go on once the code is right; the caller's, kept in the challenge.
type Resume struct {
	Federated bool   `json:"f,omitempty"` // the first factor was another provider, not a password
	Stamp     string `json:"s,omitempty"` // the checked password's stamp (models.User.CredentialStamp)
	Pending   string `json:"p,omitempty"` // the sealed authorization request being signed in to
	ReturnTo  string `json:"r,omitempty"` // a direct sign-in's local return path
	Browser   string `json:"b"`           // hash of the browser's binding cookie
	// Redirect is the client's redirect URI (the browser's, from Pending): the page's form ends in a redirect
	// there, which its CSP must allow.
	Redirect string `json:"u,omitempty"`
}

// Passed is a second step whose code was right: its challenge is used up.
type Passed struct {
	UserID, ClientID string
	Resume           Resume
	AMR              []string // RFC 8176 values: the first factor's ("pwd" or "fed"), then "otp" and "mfa", "hwk" and "mfa", or "mfa" alone
}

// Step serves the code page.
type Step struct {
	Store    Store
	Sealer   *mfa.Sealer
	Passkeys *passkey.RP        // nil: codes only
	Throttle *throttle.Throttle // nil: unthrottled (tests only)
	Kit      *page.Kit
	Now      func() time.Time
}

func browserHash(secret string) string {
	sum := sha256.Sum256([]byte("latchkey/mfa-browser\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Begin starts the second step of userID's sign-in (through clientID, "" for a direct one): it records the
// challenge, binds it to this browser and shows the code page.
func (s *Step) Begin(w http.ResponseWriter, r *http.Request, userID, clientID string, res Resume) error {
	secret := ""
	if c, err := r.Cookie(s.Kit.CookieName(cookie)); err == nil && len(c.Value) == 43 {
		secret = c.Value
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		secret = base64.RawURLEncoding.EncodeToString(b)
	}
	res.Browser = browserHash(secret)
	data, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode second step: %w", err)
	}
	token, err := s.Store.CreateMFAChallenge(r.Context(), models.MFAChallenge{UserID: userID, ClientID: clientID, Purpose: Purpose, Data: string(data)}, grant.MFATTL)
	if err != nil {
		return fmt.Errorf("create mfa challenge: %w", err)
	}
	s.Kit.SetCookie(w, cookie, secret, grant.MFATTL)
	request.Logger(r.Context()).Info("sign-in needs a second factor", "user", userID, "federated", res.Federated)
	s.render(w, r, http.StatusOK, userID, res.Redirect, token, "")
	return nil
}

// EnrolFirst answers a sign-in whose pool requires a second factor the user has not set up: the browser cannot
// enrol one yet, the app can (the token API's enrolment).
func (s *Step) EnrolFirst(w http.ResponseWriter, r *http.Request, userID string) {
	request.Logger(r.Context()).Info("sign-in refused", "reason", "mfa enrolment required; enrol in the app", "user", userID)
	page.LogRender(r, s.Kit.Pages.MFA(w, http.StatusForbidden, templates.MFAPage{Enrol: true}))
}

func (s *Step) render(w http.ResponseWriter, r *http.Request, status int, userID, redirect, token, msg string) {
	p := templates.MFAPage{Action: Path, CSRFToken: s.Kit.CSRFToken(w, r), Token: token, Error: msg}
	if redirect != "" {
		p.FormActionExtra = []string{redirect}
	}
	if s.Passkeys != nil {
		// Each page its own ceremony: an assertion answers once, and a page shown again offers a fresh one.
		begun, err := s.Passkeys.BeginSecondFactor(r.Context(), userID, passkey.Bind(Purpose, token))
		if err == nil {
			opts, _ := json.Marshal(begun.Options)
			p.Passkey = string(opts)
		} else if !errors.Is(err, passkey.ErrNoPasskey) {
			request.Logger(r.Context()).Warn("offer a passkey on the second step", "error", err)
		}
	}
	page.LogRender(r, s.Kit.Pages.MFA(w, status, p))
}

func (s *Step) expired(w http.ResponseWriter, r *http.Request) {
	s.Kit.Error(w, r, http.StatusBadRequest, "This sign-in has expired", "It was used already, took too long, or was started in another browser. Go back to the application and sign in again.")
}

// Check takes the code page's form. The try is reserved first (per IP, user and challenge), then the challenge
// for this request alone, then the code checked: a wrong code gives the challenge back and shows the page again;
// a right one keeps it used and returns what passed. When ok is false the browser has been answered.
func (s *Step) Check(w http.ResponseWriter, r *http.Request) (*Passed, bool) {
	if !s.Kit.ParsePost(w, r) {
		return nil, false
	}
	r = request.Detached(r) // a code spent must not be lost to a client that went away
	ctx := r.Context()
	token := r.PostForm.Get("mfa_token")
	code, recovery, credential := mfa.NormalizeCode(r.PostForm.Get("code")), r.PostForm.Get("recovery_code"), r.PostForm.Get("credential")
	ch, err := s.Store.PeekMFAChallenge(ctx, token, Purpose)
	if errors.Is(err, models.ErrNotFound) {
		request.Logger(ctx).Info("second step refused", "reason", "unknown, used or expired challenge")
		s.expired(w, r)
		return nil, false
	} else if err != nil {
		s.Kit.Fault(w, r, "load mfa challenge", err)
		return nil, false
	}
	var res Resume
	c, cerr := r.Cookie(s.Kit.CookieName(cookie))
	if json.Unmarshal([]byte(ch.Data), &res) != nil || cerr != nil ||
		subtle.ConstantTimeCompare([]byte(browserHash(c.Value)), []byte(res.Browser)) != 1 {
		request.Logger(ctx).Info("second step refused", "reason", "challenge of another browser", "user", ch.UserID)
		s.expired(w, r)
		return nil, false
	}
	if credential != "" && (code != "" || recovery != "" || s.Passkeys == nil) ||
		credential == "" && ((code == "") == (recovery == "") || len(code) > 64 || len(recovery) > 64) {
		s.render(w, r, http.StatusBadRequest, ch.UserID, res.Redirect, token, "Enter the 6-digit code from your authenticator app, or a recovery code.")
		return nil, false
	}
	attempt, wait, err := s.Throttle.ReserveCode(r, ch.UserID, token)
	switch {
	case err != nil:
		request.Logger(ctx).Error("second-factor throttle unavailable", "error", err)
		w.Header().Set("Retry-After", "5")
		s.render(w, r, http.StatusServiceUnavailable, ch.UserID, res.Redirect, token, "Sign-in is temporarily unavailable. Please try again in a moment.")
		return nil, false
	case wait > 0:
		request.Logger(ctx).Info("second step throttled", "retry_after", throttle.Seconds(wait))
		w.Header().Set("Retry-After", throttle.Seconds(wait))
		s.render(w, r, http.StatusTooManyRequests, ch.UserID, res.Redirect, token, "Too many attempts. Try again in "+throttle.Seconds(wait)+" seconds.")
		return nil, false
	}
	ctx = attempt.Context()
	if _, err := s.Store.ReserveMFAChallenge(ctx, token, Purpose); errors.Is(err, models.ErrNotFound) {
		attempt.Void()
		s.expired(w, r)
		return nil, false
	} else if err != nil {
		attempt.Void()
		s.Kit.Fault(w, r, "reserve mfa challenge", err)
		return nil, false
	}
	var amr []string
	if credential != "" {
		amr, err = s.checkPasskey(ctx, ch.UserID, token, credential)
	} else {
		amr, err = grant.CheckCode(ctx, s.Store, s.Sealer, ch.UserID, code, recovery, s.Now())
	}
	if err != nil {
		if relErr := s.Store.ReleaseMFAChallenge(ctx, token); relErr != nil {
			request.Logger(ctx).Error("release mfa challenge", "error", relErr)
		}
		if errors.Is(err, grant.ErrWrongCode) {
			request.Logger(ctx).Info("second factor failed", "user", ch.UserID)
			msg := "That code is not right. Check your authenticator app and try again."
			if credential != "" {
				msg = "That passkey was not accepted. Try again, or enter a code."
			}
			s.render(w, r, http.StatusUnauthorized, ch.UserID, res.Redirect, token, msg)
			return nil, false
		}
		attempt.Void()
		s.Kit.Fault(w, r, "check code", err)
		return nil, false
	}
	attempt.Succeeded()
	s.Kit.ClearCookie(w, cookie)
	if res.Federated {
		amr = append([]string{models.AuthMethodUpstream}, slices.DeleteFunc(slices.Clone(amr), func(v string) bool { return v == "pwd" })...)
	}
	return &Passed{UserID: ch.UserID, ClientID: ch.ClientID, Resume: res, AMR: amr}, true
}

// checkPasskey checks credential, a passkey assertion, as user userID's second factor on challenge token: an
// assertion that does not verify is grant.ErrWrongCode.
func (s *Step) checkPasskey(ctx context.Context, userID, token, credential string) ([]string, error) {
	_, err := s.Passkeys.FinishSecondFactor(ctx, userID, passkey.Bind(Purpose, token), []byte(credential))
	switch {
	case errors.Is(err, passkey.ErrMalformed), errors.Is(err, passkey.ErrCeremony), errors.Is(err, passkey.ErrRejected):
		return nil, fmt.Errorf("%w: %w", grant.ErrWrongCode, err)
	case err != nil:
		return nil, err
	}
	return grant.AMRPasskeyMFA, nil
}
