package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/provider"
)

// Introspect serves RFC 7662 token introspection. The caller authenticates as a client (HTTP Basic) or with a
// bearer access token; fosite enforces that.
type Introspect struct {
	OAuth   fosite.OAuth2Provider
	Clients ClientCache
}

func (h *Introspect) Mount(r *mux.Router) { r.Handle(provider.PathIntrospect, h) }

func (h *Introspect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var ir fosite.IntrospectionResponder
	err := withClientCache(ctx, h.Clients, func(ctx context.Context) error {
		var err error
		ir, err = h.OAuth.NewIntrospectionRequest(ctx, r, provider.NewSession())
		return err
	})
	if err != nil {
		if !errorIsInactive(err) {
			noteOAuthError(ctx, w, "introspect", err)
		}
		h.OAuth.WriteIntrospectionError(ctx, w, err)
		return
	}
	writeIntrospection(w, ir)
}

func errorIsInactive(err error) bool {
	return fosite.ErrorToRFC6749Error(err).ErrorField == fosite.ErrInactiveToken.ErrorField
}

// writeIntrospection writes an active token's RFC 7662 response. Unlike fosite's writer it reports the expiry of
// the token actually introspected (refresh or access) and its real type.
func writeIntrospection(w http.ResponseWriter, ir fosite.IntrospectionResponder) {
	ar := ir.GetAccessRequester()
	sess := ar.GetSession()
	resp := map[string]any{}
	if extra, ok := sess.(fosite.ExtraClaimsSession); ok {
		for k, v := range extra.GetExtraClaims() {
			resp[k] = v
		}
	}
	tokenType := fosite.AccessToken
	if ir.GetTokenUse() == fosite.RefreshToken {
		tokenType = fosite.RefreshToken
		resp["token_type"] = "refresh_token"
	} else {
		resp["token_type"] = ir.GetAccessTokenType()
	}
	if exp := sess.GetExpiresAt(tokenType); !exp.IsZero() {
		resp["exp"] = exp.Unix()
	}
	if !ar.GetRequestedAt().IsZero() {
		resp["iat"] = ar.GetRequestedAt().Unix()
	}
	resp["client_id"] = ar.GetClient().GetID()
	if scopes := ar.GetGrantedScopes(); len(scopes) > 0 {
		resp["scope"] = strings.Join(scopes, " ")
	}
	if sub := sess.GetSubject(); sub != "" {
		resp["sub"] = sub
	}
	if aud := ar.GetGrantedAudience(); len(aud) > 0 {
		resp["aud"] = []string(aud)
	}
	if u := sess.GetUsername(); u != "" {
		resp["username"] = u
	}
	resp["active"] = true

	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(resp)
}
