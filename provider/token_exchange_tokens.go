package provider

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/faults"
)

// exchangedToken is a subject or actor token as read for an exchange (token_exchange.go).
type exchangedToken struct {
	session   *Session
	scopes    fosite.Arguments
	clientID  string    // the client it was issued to
	expiresAt time.Time // zero: unknown
}

// errNotOurs is the refusal of a token that is not an active token of this server of the type it claims.
func errNotOurs(hint string) error { return fosite.ErrInvalidRequest.WithHint(hint) }

// readToken reads a subject or actor token of the given type (RFC 8693 §3). An actor token must have been issued
// to the requesting client; a subject token must be about a user (a client's own token from client_credentials
// is not). Refusals are invalid_request; a store or key lookup that failed is a server error.
func (h *tokenExchange) readToken(ctx context.Context, token, tokenType, clientID string, actor bool) (*exchangedToken, error) {
	var (
		t   *exchangedToken
		err error
	)
	switch tokenType {
	case TokenTypeAccessToken:
		t, err = h.readStored(ctx, token, fosite.AccessToken)
	case TokenTypeRefreshToken:
		t, err = h.readStored(ctx, token, fosite.RefreshToken)
	case TokenTypeIDToken:
		t, err = h.readIDToken(ctx, token, clientID)
	default:
		return nil, fosite.ErrInvalidRequest.WithHint("Unsupported token type; use urn:ietf:params:oauth:token-type:access_token, refresh_token or id_token.")
	}
	if err != nil {
		return nil, err
	}
	if !t.expiresAt.IsZero() && !t.expiresAt.After(h.now()) {
		return nil, errNotOurs("The token has expired.")
	}
	if actor && t.clientID != clientID {
		return nil, errNotOurs("The actor token must have been issued to the requesting client.")
	}
	if !actor && (t.session.Subject == "" || t.session.SID == "" && t.session.Subject == t.clientID) {
		return nil, errNotOurs("The token is not about a user.")
	}
	return t, nil
}

// readStored reads an access or refresh token from the store, where revoked tokens are absent and rotated refresh
// tokens inactive, and checks it as the token strategy does (signature; expiry below).
func (h *tokenExchange) readStored(ctx context.Context, token string, kind fosite.TokenType) (*exchangedToken, error) {
	var (
		req fosite.Requester
		err error
	)
	if kind == fosite.AccessToken {
		req, err = h.store.GetAccessTokenSession(ctx, h.core.AccessTokenSignature(ctx, token), NewSession())
	} else {
		req, err = h.store.GetRefreshTokenSession(ctx, h.core.RefreshTokenSignature(ctx, token), NewSession())
	}
	switch {
	case errors.Is(err, fosite.ErrNotFound), errors.Is(err, fosite.ErrInactiveToken):
		return nil, errNotOurs("It is not an active token of this server of that type.")
	case err != nil:
		return nil, fosite.ErrServerError.WithWrap(err).WithDebugf("read the token: %s", err)
	}
	if kind == fosite.AccessToken {
		err = h.core.ValidateAccessToken(ctx, req, token)
	} else {
		err = h.core.ValidateRefreshToken(ctx, req, token)
	}
	if errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		return nil, err
	} else if err != nil {
		return nil, errNotOurs("It is not a valid, unexpired token of this server of that type.")
	}
	sess, ok := req.GetSession().(*Session)
	if !ok || req.GetClient() == nil {
		return nil, fosite.ErrServerError.WithDebugf("unexpected stored session type %T", req.GetSession())
	}
	return &exchangedToken{session: sess, scopes: req.GetGrantedScopes(), clientID: req.GetClient().GetID(), expiresAt: sess.GetExpiresAt(kind)}, nil
}

// idTokenClaims are what an exchange reads of an ID token.
type idTokenClaims struct {
	Issuer   string          `json:"iss"`
	Subject  string          `json:"sub"`
	Audience json.RawMessage `json:"aud"`
	Expiry   int64           `json:"exp"`
	SID      string          `json:"sid"`
	AuthTime int64           `json:"auth_time"`
}

// readIDToken verifies an ID token we signed (any published key), issued by us to the requesting client and
// unexpired. It carries no scope: an exchange from it may ask for openid alone. An encrypted ID token is not
// ours to read (the client's key encrypts it).
func (h *tokenExchange) readIDToken(ctx context.Context, token, clientID string) (*exchangedToken, error) {
	if !isJWT(token) {
		return nil, errNotOurs("It is not a signed ID token.")
	}
	jws, err := jose.ParseSignedCompact(token, jwtAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errNotOurs("It is not a signed ID token.")
	}
	hdr := jws.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ == jwtAccessTokenType {
		return nil, errNotOurs("It is an access token, not an ID token.")
	}
	key, err := h.keys.LookupPublicKey(hdr.KeyID)
	if err != nil {
		faults.Note(ctx, err)
		return nil, fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	if key == nil {
		return nil, errNotOurs("It is not signed by this server.")
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, errNotOurs("It is not signed by this server.")
	}
	var c idTokenClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.Issuer != h.issuer || c.Subject == "" || c.Expiry == 0 {
		return nil, errNotOurs("It is not an ID token of this server.")
	}
	var aud []string
	if json.Unmarshal(c.Audience, &aud) != nil {
		var one string
		_ = json.Unmarshal(c.Audience, &one)
		aud = []string{one}
	}
	if !slices.Contains(aud, clientID) {
		return nil, errNotOurs("The ID token was not issued to the requesting client.")
	}
	sess := &Session{Subject: c.Subject, SID: c.SID}
	if c.AuthTime > 0 {
		sess.AuthTime = time.Unix(c.AuthTime, 0).UTC()
	}
	return &exchangedToken{session: sess, scopes: fosite.Arguments{ScopeOpenID}, clientID: clientID, expiresAt: time.Unix(c.Expiry, 0)}, nil
}
