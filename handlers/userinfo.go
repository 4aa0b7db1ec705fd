package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-jose/go-jose/v4"
	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

type userLookup interface {
	UserByID(ctx context.Context, id string) (*models.User, error)
}

// userinfoEncryption is implemented by clients that registered userinfo encryption (models.Client): the key,
// alg and enc to encrypt the response with, and ok=false when responses are plain JSON.
type userinfoEncryption interface {
	UserinfoEncryption() (key *jose.JSONWebKey, alg, enc string, ok bool)
}

// UserInfo is the OpenID Connect userinfo endpoint: the user behind a bearer access token, with the claims its
// scopes release, read fresh from the database so role changes show at once. A client that registered userinfo
// encryption gets the claims as a compact JWE (application/jwt, OpenID Connect Core §5.3.2).
type UserInfo struct {
	OAuth fosite.OAuth2Provider
	Users userLookup
	CORS  *CORS
}

func (h *UserInfo) Mount(r *mux.Router) { r.Handle(provider.PathUserInfo, h.CORS.Wrap(h)) }

func (h *UserInfo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "Use GET or POST.")
		return
	}
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			writeJSONError(w, http.StatusBadRequest, "invalid_request", "The request body could not be read.")
			return
		}
	}
	token := bearerToken(r)
	if token == "" {
		// RFC 6750 §3.1: no credentials at all gets a bare challenge, no error code.
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey"`)
		writeJSONError(w, http.StatusUnauthorized, "invalid_token", "A bearer access token is required.")
		return
	}
	ar, _, err := activeAccessToken(ctx, h.OAuth, token)
	if err != nil {
		if tokenStoreFailed(r.Context(), err) {
			serverFault(w, r, "userinfo: look up access token", err)
			return
		}
		h.invalidToken(w, r, "The access token is invalid, expired or revoked.")
		return
	}
	if !ar.GetGrantedScopes().Has(provider.ScopeOpenID) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", error="insufficient_scope", scope="openid"`)
		writeJSONError(w, http.StatusForbidden, "insufficient_scope", "The access token lacks the openid scope.")
		return
	}
	user, err := h.Users.UserByID(ctx, ar.GetSession().GetSubject())
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		serverFault(w, r, "userinfo: load user", err)
		return
	}
	if err != nil || user.Disabled {
		h.invalidToken(w, r, "The user behind this token no longer exists or is disabled.")
		return
	}
	claims := provider.UserClaims(identityOf(user), ar.GetGrantedScopes())
	body, err := json.Marshal(claims)
	if err != nil {
		Logger(ctx).Error("userinfo: encode claims", "error", err)
		writeJSONError(w, http.StatusInternalServerError, "server_error", "The claims could not be encoded.")
		return
	}
	contentType := "application/json"
	if c, ok := ar.GetClient().(userinfoEncryption); ok {
		if key, alg, enc, ok := c.UserinfoEncryption(); ok {
			jwe, err := provider.EncryptCompact(body, key, alg, enc, "")
			if err != nil {
				// Registration validates the key, so this is a broken stored registration. Never fall back to
				// plain JSON: the client asked for its claims to be hidden.
				Logger(ctx).Error("userinfo: encrypt response", "client_id", ar.GetClient().GetID(), "error", err)
				writeJSONError(w, http.StatusInternalServerError, "server_error", "The userinfo response could not be encrypted.")
				return
			}
			body, contentType = []byte(jwe), "application/jwt"
		}
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

func (h *UserInfo) invalidToken(w http.ResponseWriter, r *http.Request, desc string) {
	Logger(r.Context()).Info("userinfo refused", "error", "invalid_token")
	w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token", error_description="`+desc+`"`)
	writeJSONError(w, http.StatusUnauthorized, "invalid_token", desc)
}
