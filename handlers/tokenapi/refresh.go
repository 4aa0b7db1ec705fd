package tokenapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
)

// refresh exchanges a refresh token through fosite's refresh_token grant (the provider's token API endpoint): rotation and reuse detection are
// exactly the token endpoint's. A refusal of fosite's is answered with its code; a storage failure, however
// fosite named it ("invalid client", "invalid grant"), is 503 (jsonapi.FromOAuth).
func (h *API) refresh(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var body struct {
		RefreshToken string `json:"refresh_token"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	if body.RefreshToken == "" {
		return jsonapi.BadRequest("refresh_token is required.")
	}
	r, tokenType, err := h.withDPoP(w, r)
	if err != nil {
		return err
	}
	ctx = r.Context()
	clientID := body.ClientID
	if clientID == "" {
		// The refresh token names its client (even once used, so fosite still detects reuse); no-code tools
		// need send only the token.
		id, err := h.Issuer.RefreshTokenClient(ctx, body.RefreshToken)
		if err != nil && !errors.Is(err, fosite.ErrNotFound) {
			return fmt.Errorf("look up the refresh token's client: %w", err)
		}
		clientID = id
	}
	if clientID == "" {
		return jsonapi.New(http.StatusBadRequest, jsonapi.InvalidGrant, "The refresh token is invalid, expired or revoked.")
	}
	c, err := h.Store.ClientByID(ctx, clientID)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("load client: %w", err)
	}
	if err != nil || !c.FirstParty {
		return errNotFirstParty()
	}
	if err := h.originAllowed(r, c); err != nil {
		return err
	}
	// A backend that holds the secret sends it and authenticates properly; an app without one is identified by
	// client_id (the provider's first-party rule for the token API's endpoint).
	now := h.Now()
	tokens, session, err := h.Issuer.Refresh(ctx, clientID, body.ClientSecret, body.RefreshToken)
	if err != nil {
		return jsonapi.FromOAuth(ctx, fmt.Errorf("api refresh: %w", err))
	}
	h.issued("refresh_token")
	if sid := session.SID; sid != "" {
		_ = h.Store.TouchBrowserSession(ctx, sid, request.ClientIP(r), now, h.SessionIdle)
	}
	out := tokenResponse{
		AccessToken: tokens.AccessToken, RefreshToken: tokens.RefreshToken, IDToken: tokens.IDToken,
		TokenType: tokenType, ExpiresIn: int64(tokens.ExpiresIn / time.Second), ExpiresAt: expiresAt(session, now, tokens.ExpiresIn),
		Scope: strings.Join(tokens.Scopes, " "), SessionID: session.SID,
	}
	jsonapi.Respond(w, http.StatusOK, out)
	return nil
}
