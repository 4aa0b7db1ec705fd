package tokenapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// refresh exchanges a refresh token through fosite's refresh_token grant: rotation and reuse detection are
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
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body.RefreshToken}, "client_id": {clientID}}
	refreshCtx := provider.WithFirstPartyRefresh(ctx, clientID)
	if body.ClientSecret != "" {
		// A backend that holds the secret authenticates properly.
		form.Del("client_id")
		refreshCtx = ctx
	}
	req, _ := http.NewRequestWithContext(refreshCtx, http.MethodPost, provider.PathToken, strings.NewReader(""))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if body.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(body.ClientSecret))
	}
	req.PostForm, req.Form = form, form
	ctx = refreshCtx
	session := provider.NewSession()
	ar, err := h.OAuth.NewAccessRequest(ctx, req, session)
	if err != nil {
		return jsonapi.FromOAuth(ctx, fmt.Errorf("api refresh: %w", err))
	}
	resp, err := h.OAuth.NewAccessResponse(ctx, ar)
	if err != nil {
		return jsonapi.FromOAuth(ctx, fmt.Errorf("api refresh: %w", err))
	}
	if sid := session.SID; sid != "" {
		_ = h.Store.TouchBrowserSession(ctx, sid, request.ClientIP(r), h.Now(), h.SessionIdle)
	}
	out := tokenResponse{AccessToken: resp.GetAccessToken(), TokenType: "Bearer", SessionID: session.SID}
	if v, ok := resp.GetExtra("refresh_token").(string); ok {
		out.RefreshToken = v
	}
	if v, ok := resp.GetExtra("id_token").(string); ok {
		out.IDToken = v
	}
	if v, ok := resp.GetExtra("expires_in").(int64); ok {
		out.ExpiresIn = v
	}
	if v, ok := resp.GetExtra("scope").(string); ok {
		out.Scope = v
	}
	jsonapi.Respond(w, http.StatusOK, out)
	return nil
}
