package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// minter issues a minted grant through the provider's token API endpoint, the path a password sign-in takes.
type minter interface {
	SignIn(ctx context.Context, clientID string, session *provider.Session, scopes []string) (provider.TokenSet, error)
	CheckAccessTokenLifespan(ctx context.Context, d time.Duration) error
}

// sessionStore is what minting and the admin's view of a user's sessions read and write.
type sessionStore interface {
	CreateMintedSession(ctx context.Context, userID, mintedBy, ip, userAgent string, now time.Time, idle, absolute time.Duration) (*models.BrowserSession, error)
	ConfirmBrowserSession(ctx context.Context, id string, now time.Time) error
	BrowserSessionByID(ctx context.Context, id string) (*models.BrowserSession, error)
	ListBrowserSessions(ctx context.Context, userID string, now time.Time) ([]models.BrowserSession, error)
	EndBrowserSession(ctx context.Context, id string, now time.Time) error
}

// UserDisabled is the code of a request about a disabled user that needs an enabled one (409).
const UserDisabled jsonapi.Code = "user_disabled"

// mintResponse is a token-API login's answer: the same fields, so a backend hands it to its app as it is.
type mintResponse struct {
	AccessToken  string       `json:"access_token"`
	RefreshToken string       `json:"refresh_token,omitempty"`
	IDToken      string       `json:"id_token,omitempty"`
	TokenType    string       `json:"token_type"`
	ExpiresIn    int64        `json:"expires_in"`
	ExpiresAt    int64        `json:"expires_at"` // Unix seconds
	Scope        string       `json:"scope,omitempty"`
	SessionID    string       `json:"session_id"`
	User         jsonapi.User `json:"user"`
}

type mintBody struct {
	ClientID  string         `json:"client_id"`
	Scope     string         `json:"scope"`
	Extras    map[string]any `json:"extras"`
	ExpiresIn *int64         `json:"expires_in"`
}

// mint answers POST /users/{id}/tokens: tokens for the user as from a token-API login through client_id (a
// first-party client of a pool this admin client administers, the user's pool), in a new session marked as
// minted by the admin client. extras ride in this grant's tokens only; expires_in shortens its access tokens.
func (h *API) mint(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	r = request.Detached(r)
	ctx := r.Context()
	var body mintBody
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	app, err := h.mintClient(ctx, admin, body.ClientID)
	if err != nil {
		return err
	}
	scopes, err := mintScopes(app, body.Scope)
	if err != nil {
		return err
	}
	if err := models.ValidateExtras(body.Extras); err != nil {
		return storeError("admin api: check extras", err)
	}
	var lifespan time.Duration
	if body.ExpiresIn != nil {
		// In range for a Duration: zero and negatives are refused as zero, anything huge as too long.
		const maxSeconds = int64(1<<63-1) / int64(time.Second)
		lifespan = time.Duration(min(max(*body.ExpiresIn, 0), maxSeconds)) * time.Second
		if err := h.Issuer.CheckAccessTokenLifespan(ctx, lifespan); err != nil {
			return jsonapi.FromOAuth(ctx, err)
		}
	}
	u, err := h.user(r, admin, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	if u.Pool != app.Pool {
		return jsonapi.BadRequest(fmt.Sprintf("The user is in the pool %q, not in the pool %q of client %q.", u.Pool, app.Pool, app.ID))
	}

	now := h.Now()
	bs, err := h.Store.CreateMintedSession(ctx, u.ID, admin.ID, request.ClientIP(r), r.UserAgent(), now, h.SessionIdle, h.SessionAbsolute)
	switch {
	case errors.Is(err, models.ErrUserDisabled):
		return jsonapi.New(http.StatusConflict, UserDisabled, "The user is disabled; enable them before minting tokens.")
	case err != nil:
		return storeError("admin api: create minted session", err)
	}
	session := provider.MintedSessionFor(grant.IdentityOf(u), scopes, bs.ID, now, body.Extras, lifespan)
	session.ClientID = app.ID
	var tokens provider.TokenSet
	err = grant.IssueInSession(ctx, h.Store, bs, now, func() (err error) {
		tokens, err = h.Issuer.SignIn(ctx, app.ID, session, scopes)
		return err
	})
	switch {
	case errors.Is(err, grant.ErrSessionEnded):
		return jsonapi.New(http.StatusConflict, UserDisabled, "The session ended while its tokens were issued (the user was disabled meanwhile?).")
	case err != nil:
		return jsonapi.FromOAuth(ctx, fmt.Errorf("admin api: mint tokens: %w", err))
	}
	if h.Issued != nil {
		h.Issued.TokenIssued(provider.GrantTypeFirstPartySignIn)
	}
	request.Logger(ctx).Info("admin minted tokens", "user", u.ID, "client", app.ID, "admin_client", admin.ID, "session", bs.ID)
	jsonapi.Respond(w, http.StatusOK, mintResponse{
		AccessToken: tokens.AccessToken, RefreshToken: tokens.RefreshToken, IDToken: tokens.IDToken,
		TokenType: "Bearer", ExpiresIn: int64(tokens.ExpiresIn / time.Second),
		ExpiresAt: now.Add(tokens.ExpiresIn).Unix(), Scope: strings.Join(tokens.Scopes, " "),
		SessionID: bs.ID, User: jsonapi.UserOf(u),
	})
	return nil
}

// mintClient loads the client tokens are minted through: a first-party client of a pool the admin administers.
func (h *API) mintClient(ctx context.Context, admin *models.Client, id string) (*models.Client, error) {
	if id == "" {
		return nil, jsonapi.BadRequest("client_id is required.")
	}
	c, err := h.Store.ClientByID(ctx, id)
	switch {
	case err != nil && !errors.Is(err, models.ErrNotFound):
		return nil, fmt.Errorf("admin api: load client: %w", err)
	case err != nil || !c.FirstParty:
		return nil, jsonapi.New(http.StatusBadRequest, jsonapi.InvalidClient, "client_id must name a first-party client.")
	case !admin.AdministersPool(c.Pool):
		return nil, grant.InsufficientScope(Scope, "This client does not administer the pool "+strconv.Quote(c.Pool)+" of client "+strconv.Quote(c.ID)+".")
	}
	return c, nil
}

// mintScopes is what a mint asks for: scope, or every scope of the client when it is empty; each must be the
// client's (the sign-in grant checks again).
func mintScopes(c *models.Client, scope string) ([]string, error) {
	scopes := strings.Fields(scope)
	if len(scopes) == 0 {
		return c.Scopes, nil
	}
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return nil, jsonapi.New(http.StatusBadRequest, jsonapi.InvalidScope, fmt.Sprintf("The client may not request scope %q.", s[:min(len(s), 64)]))
		}
	}
	return scopes, nil
}

// adminSession is a user's session as the admin API shows it.
type adminSession struct {
	ID           string    `json:"id"`
	Device       string    `json:"device"`
	IP           string    `json:"ip"`
	CreatedAt    time.Time `json:"created_at"`
	LastActiveAt time.Time `json:"last_active_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	MintedBy     string    `json:"minted_by,omitempty"`
}

// sessions answers GET /users/{id}/sessions: the user's active sessions, minted ones marked with their admin
// client.
func (h *API) sessions(w http.ResponseWriter, r *http.Request) error {
	c, err := h.authorize(r)
	if err != nil {
		return err
	}
	u, err := h.user(r, c, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	list, err := h.Store.ListBrowserSessions(r.Context(), u.ID, h.Now())
	if err != nil {
		return fmt.Errorf("admin api: list sessions: %w", err)
	}
	out := make([]adminSession, 0, len(list))
	for _, s := range list {
		out = append(out, adminSession{ID: s.ID, Device: request.DeviceName(s.UserAgent), IP: s.IP, CreatedAt: s.CreatedAt,
			LastActiveAt: s.LastActiveAt, ExpiresAt: s.ExpiresAt, MintedBy: s.MintedBy})
	}
	jsonapi.Respond(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}

// endSession answers DELETE /users/{id}/sessions/{sid}: ends one session of the user, revoking its tokens.
func (h *API) endSession(w http.ResponseWriter, r *http.Request) error {
	c, err := h.authorize(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	u, err := h.user(r, c, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	sid := mux.Vars(r)["sid"]
	s, err := h.Store.BrowserSessionByID(ctx, sid)
	if errors.Is(err, models.ErrNotFound) || (err == nil && (s.UserID != u.ID || s.EndedAt != nil)) {
		return jsonapi.New(http.StatusNotFound, jsonapi.NotFound, "No such active session.")
	} else if err != nil {
		return fmt.Errorf("admin api: load session: %w", err)
	}
	if err := h.Store.EndBrowserSession(ctx, sid, h.Now()); err != nil && !errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("admin api: end session: %w", err)
	}
	request.Logger(ctx).Info("admin ended a session", "user", u.ID, "session", sid, "client", c.ID)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
