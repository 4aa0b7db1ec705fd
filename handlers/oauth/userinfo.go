package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-jose/go-jose/v4"
	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
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
	CORS  *request.CORS
	// DPoP verifies the proof of a DPoP-bound access token (RFC 9449); nil: DPoP-bound tokens are refused.
	DPoP grant.Proofs
}

func (h *UserInfo) Mount(r *mux.Router) { r.Handle(provider.PathUserInfo, h.CORS.Wrap(h)) }

func (h *UserInfo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		jsonapi.Write(w, r, err)
	}
}

func (h *UserInfo) serve(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return jsonapi.New(http.StatusMethodNotAllowed, jsonapi.InvalidRequest, "Use GET or POST.")
	}
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			return jsonapi.BadRequest("The request body could not be read.")
		}
	}
	token := grant.Bearer(r)
	if token == "" {
		// RFC 6750 §3.1: no credentials at all gets a bare challenge, no error code.
		return grant.Missing("A bearer access token is required.")
	}
	ar, _, err := grant.ActiveAccessToken(r, h.OAuth, h.DPoP, token)
	if err != nil {
		if refused := grant.Refusal(err); refused != nil {
			return refused
		}
		if grant.StoreFailed(ctx, err) {
			return fmt.Errorf("userinfo: look up access token: %w", err)
		}
		return invalidToken("The access token is invalid, expired or revoked.")
	}
	if !ar.GetGrantedScopes().Has(provider.ScopeOpenID) {
		return grant.InsufficientScope(provider.ScopeOpenID, "The access token lacks the openid scope.")
	}
	user, err := h.Users.UserByID(ctx, ar.GetSession().GetSubject())
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("userinfo: load user: %w", err)
	}
	if err != nil || user.Disabled {
		return invalidToken("The user behind this token no longer exists or is disabled.")
	}
	claims := provider.UserClaims(grant.IdentityOf(user), ar.GetGrantedScopes())
	body, err := json.Marshal(claims)
	if err != nil {
		return jsonapi.New(http.StatusInternalServerError, jsonapi.ServerError, "The claims could not be encoded.").
			WithCause(fmt.Errorf("userinfo: encode claims: %w", err))
	}
	contentType := "application/json"
	if c, ok := ar.GetClient().(userinfoEncryption); ok {
		if key, alg, enc, ok := c.UserinfoEncryption(); ok {
			jwe, err := provider.EncryptCompact(body, key, alg, enc, "")
			if err != nil {
				// Registration validates the key, so this is a broken stored registration. Never fall back to
				// plain JSON: the client asked for its claims to be hidden.
				return jsonapi.New(http.StatusInternalServerError, jsonapi.ServerError, "The userinfo response could not be encrypted.").
					WithCause(fmt.Errorf("userinfo: encrypt response for client %s: %w", ar.GetClient().GetID(), err))
			}
			body, contentType = []byte(jwe), "application/jwt"
		}
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
	return nil
}

// invalidToken answers a token userinfo will not serve, with the description in the challenge too.
func invalidToken(desc string) *jsonapi.Error {
	return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidToken, desc).
		WithHeader("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token", error_description="`+desc+`"`)
}
