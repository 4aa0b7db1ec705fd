// Package passkeys serves passkeys (WebAuthn, package passkey) over HTTP: the account page where a signed-in
// person lists, adds and removes them (/account/passkeys), the sign-in page's "Sign in with a passkey"
// (/login/passkey), the token API's JSON for apps (/api/v1/auth/passkeys/...), and the script the pages load.
// The second factor is not here: /login/mfa (handlers/secondfactor) and /api/v1/auth/mfa/verify take a passkey
// as they take a code. What a passkey proves becomes a session only through the browser pages and the token
// API, which this family reaches through the small interfaces below, wired by the application.
//
// Adding or removing a passkey needs a sign-in less than grant.FreshSignIn old (the token API: or the current
// password), as adding an authenticator app does. A pool whose MFA policy is off takes no new passkeys.
package passkeys

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/passkey"
	"github.com/latchkey/latchkey/templates"
)

// Paths of the family.
const (
	PathAccount        = "/account/passkeys"
	PathAccountOptions = PathAccount + "/options"
	PathSignIn         = "/login/passkey"
	PathSignInOptions  = PathSignIn + "/options"
	// apiPrefix is the token API's (handlers/tokenapi.Prefix).
	apiPrefix = "/api/v1/auth/passkeys"
)

// store is what the family reads and writes itself.
type store interface {
	UserByID(ctx context.Context, id string) (*models.User, error)
	GetPool(ctx context.Context, name string) (*models.Pool, error)
	Factors(ctx context.Context, userID string) ([]models.Factor, error)
	DeleteFactor(ctx context.Context, userID, id string) error
}

// tokenAPI is the token API (handlers/tokenapi.API): its callers, and its one way to sign in.
type tokenAPI interface {
	FreshCaller(r *http.Request, password string) (*models.User, error)
	Caller(r *http.Request) (*models.User, error)
	SignInWith(w http.ResponseWriter, r *http.Request, clientID, scope string, check func(r *http.Request, pool string) (*models.User, []string, error)) error
}

// browserPages are the browser's sign-in pages (handlers/browser.Browser): its session, and its one way to start
// one.
type browserPages interface {
	SignedIn(r *http.Request) (*models.BrowserSession, error)
	SignInPool(w http.ResponseWriter, r *http.Request) (string, bool)
	SignedInWith(w http.ResponseWriter, r *http.Request, u *models.User, method string)
}

// Passkeys serves the family.
type Passkeys struct {
	RP       *passkey.RP
	Store    store
	API      tokenAPI
	Browser  browserPages
	Pages    *templates.Renderer
	Issuer   string
	Secret   []byte // keys the CSRF tokens, as the other pages'
	Throttle *throttle.Throttle
	CORS     *request.CORS
	Now      func() time.Time

	kitOnce sync.Once
	kit     *page.Kit
}

func (h *Passkeys) page() *page.Kit {
	h.kitOnce.Do(func() { h.kit = &page.Kit{Issuer: h.Issuer, Secret: h.Secret, Pages: h.Pages} })
	return h.kit
}

// handler is a JSON endpoint: what it returns, jsonapi.Write answers.
type handler func(w http.ResponseWriter, r *http.Request) error

// Mount mounts the family; with no relying party (passkeys are off) nothing.
func (h *Passkeys) Mount(r *mux.Router) {
	if h.RP == nil {
		return
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	script := h.Pages.PasskeyScript()
	r.HandleFunc(templates.PasskeyScriptPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(script)
	}).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathAccount, h.accountPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathAccount, h.accountSubmit).Methods(http.MethodPost)
	r.Handle(PathAccountOptions, h.json(h.accountOptions)).Methods(http.MethodPost)
	r.Handle(PathSignInOptions, h.json(h.signInOptions)).Methods(http.MethodPost)
	r.HandleFunc(PathSignIn, h.signInSubmit).Methods(http.MethodPost)

	api := func(path string, fn handler, methods ...string) {
		r.Handle(apiPrefix+path, h.CORS.WrapRoute(h.json(func(w http.ResponseWriter, r *http.Request) error {
			for _, m := range methods {
				if r.Method == m {
					return fn(w, r)
				}
			}
			return jsonapi.New(http.StatusMethodNotAllowed, jsonapi.InvalidRequest, "Method not allowed.")
		}), request.CORSRoute{Methods: methods}))
	}
	api("", h.apiList, http.MethodGet)
	api("/{id}", h.apiDelete, http.MethodDelete)
	api("/register/begin", h.apiRegisterBegin, http.MethodPost)
	api("/register/finish", h.apiRegisterFinish, http.MethodPost)
	api("/signin/begin", h.apiSignInBegin, http.MethodPost)
	api("/signin/finish", h.apiSignInFinish, http.MethodPost)
}

func (h *Passkeys) json(fn handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			jsonapi.Write(w, r, err)
		}
	})
}

// passkeysOf are the user's passkeys.
func passkeysOf(factors []models.Factor) []models.Factor {
	var out []models.Factor
	for _, f := range factors {
		if f.Kind == models.FactorWebAuthn && f.Active() {
			out = append(out, f)
		}
	}
	return out
}

// errPoolOff answers a user of a pool whose MFA policy is off.
func errPoolOff() error {
	return jsonapi.New(http.StatusForbidden, "mfa_disabled", "Passkeys and other second factors are turned off for this app.")
}

// enrolmentAllowed says whether u's pool takes new passkeys.
func (h *Passkeys) enrolmentAllowed(ctx context.Context, u *models.User) (bool, error) {
	pool, err := h.Store.GetPool(ctx, u.Pool)
	if err != nil {
		return false, err
	}
	return pool.MFA != models.MFAOff, nil
}

// finishError is the client's answer to a ceremony's finish that failed on the client's side; nil for a fault.
func finishError(err error, ceremony string) *jsonapi.Error {
	switch {
	case errors.Is(err, passkey.ErrMalformed):
		return jsonapi.BadRequest("credential is not a WebAuthn " + ceremony + " response.")
	case errors.Is(err, passkey.ErrCeremony):
		return jsonapi.New(http.StatusBadRequest, jsonapi.InvalidGrant, "This passkey challenge is unknown, expired or already used; begin again.")
	case errors.Is(err, passkey.ErrRejected):
		return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidGrant, "The passkey was not accepted.")
	case errors.Is(err, models.ErrConflict):
		return jsonapi.New(http.StatusConflict, "passkey_exists", "This passkey is registered already.")
	case errors.Is(err, models.ErrTooManyPasskeys):
		return jsonapi.New(http.StatusConflict, "too_many_passkeys", "This account has as many passkeys as it may; remove one first.")
	}
	return nil
}
