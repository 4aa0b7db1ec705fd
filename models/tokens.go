package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

// Token tables, one per kind.
const (
	tableAccess  = "oauth2_access"
	tableRefresh = "oauth2_refresh"
	tableCode    = "oauth2_code"
	tablePKCE    = "oauth2_pkce"
	tableOIDC    = "oauth2_oidc"
	tablePAR     = "oauth2_par"
)

// defaultPARLifespan bounds a pushed authorization request whose session carries no expiry.
const defaultPARLifespan = 5 * time.Minute

// secretFormKeys are removed from a request's form before it is stored.
var secretFormKeys = []string{
	"client_secret", "client_assertion", "password", "code", "code_verifier", "refresh_token", "token", "assertion",
}

// tokenRow is one row of any token table. Columns a table lacks are left zero on read.
type tokenRow struct {
	Signature            string     `gorm:"column:signature;primaryKey"`
	RequestID            string     `gorm:"column:request_id"`
	RequestedAt          time.Time  `gorm:"column:requested_at"`
	ClientID             string     `gorm:"column:client_id"`
	Subject              string     `gorm:"column:subject"`
	RequestedScopes      string     `gorm:"column:requested_scopes"`
	GrantedScopes        string     `gorm:"column:granted_scopes"`
	RequestedAudience    string     `gorm:"column:requested_audience"`
	GrantedAudience      string     `gorm:"column:granted_audience"`
	Form                 string     `gorm:"column:form"`
	Session              string     `gorm:"column:session"`
	Active               bool       `gorm:"column:active"`
	ExpiresAt            *time.Time `gorm:"column:expires_at"`
	AccessTokenSignature string     `gorm:"column:access_token_signature"` // oauth2_refresh only
	RotatedAt            *time.Time `gorm:"column:rotated_at"`             // oauth2_refresh only
	AuthorizeParams      string     `gorm:"column:authorize_params"`       // oauth2_par only
}

// authorizeParams is what a pushed authorization request carries beyond fosite.Request.
type authorizeParams struct {
	ResponseTypes        []string `json:"response_types"`
	RedirectURI          string   `json:"redirect_uri,omitempty"`
	State                string   `json:"state,omitempty"`
	HandledResponseTypes []string `json:"handled_response_types,omitempty"`
	ResponseMode         string   `json:"response_mode,omitempty"`
	DefaultResponseMode  string   `json:"default_response_mode,omitempty"`
}

// encodeList stores a list as JSON text; nil is stored as [].
func encodeList(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v) // a []string always marshals
	return string(b)
}

func decodeList(s string) ([]string, error) {
	if s == "" {
		return []string{}, nil
	}
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode list column: %w", err)
	}
	if v == nil {
		v = []string{}
	}
	return v, nil
}

// storedForm is the request form without secrets, url-encoded.
func storedForm(form url.Values) string {
	clean := url.Values{}
	for k, v := range form {
		clean[k] = append([]string(nil), v...)
	}
	for _, k := range secretFormKeys {
		clean.Del(k)
	}
	return clean.Encode()
}

// newTokenRow builds the columns common to every token table, with their values in the same order.
func newTokenRow(key string, req fosite.Requester, expiresAt time.Time) ([]string, []any, error) {
	if req == nil {
		return nil, nil, errors.New("nil requester")
	}
	if req.GetClient() == nil {
		return nil, nil, errors.New("requester has no client")
	}
	sess := req.GetSession()
	sessJSON := []byte("{}")
	subject := ""
	if sess != nil {
		var err error
		if sessJSON, err = json.Marshal(sess); err != nil {
			return nil, nil, fmt.Errorf("encode session: %w", err)
		}
		subject = sess.GetSubject()
	}
	requestedAt := req.GetRequestedAt()
	if requestedAt.IsZero() {
		requestedAt = time.Now()
	}
	cols := []string{"signature", "request_id", "requested_at", "client_id", "subject", "requested_scopes",
		"granted_scopes", "requested_audience", "granted_audience", "form", "session", "active", "expires_at"}
	args := []any{key, req.GetID(), dbTime(requestedAt), req.GetClient().GetID(), subject,
		encodeList(req.GetRequestedScopes()), encodeList(req.GetGrantedScopes()),
		encodeList(req.GetRequestedAudience()), encodeList(req.GetGrantedAudience()),
		storedForm(req.GetRequestForm()), string(sessJSON), true, nullTime(expiresAt)}
	return cols, args, nil
}

func sessionExpiry(req fosite.Requester, kind fosite.TokenType) time.Time {
	if req == nil || req.GetSession() == nil {
		return time.Time{}
	}
	return req.GetSession().GetExpiresAt(kind)
}

// sidSession is a session that knows the browser session it was issued through.
type sidSession interface{ GetSID() string }

// request rebuilds a fosite.Request from a row, decoding the stored session into session (a fresh default
// session when nil). The client is loaded again, so a deleted client makes the token unusable.
func (s *Store) request(ctx context.Context, row *tokenRow, session fosite.Session) (*fosite.Request, error) {
	client, err := s.storedRequestClient(ctx, row.ClientID, false)
	if err != nil {
		return nil, err
	}
	if session == nil {
		session = s.newSession()
	}
	if row.Session != "" {
		if err := json.Unmarshal([]byte(row.Session), session); err != nil {
			return nil, fmt.Errorf("decode session: %w", err)
		}
	}
	form, err := url.ParseQuery(row.Form)
	if err != nil {
		return nil, fmt.Errorf("decode form: %w", err)
	}
	lists := make([][]string, 4)
	for i, col := range []string{row.RequestedScopes, row.GrantedScopes, row.RequestedAudience, row.GrantedAudience} {
		if lists[i], err = decodeList(col); err != nil {
			return nil, err
		}
	}
	return &fosite.Request{
		ID:                row.RequestID,
		RequestedAt:       row.RequestedAt.UTC(),
		Client:            client,
		RequestedScope:    lists[0],
		GrantedScope:      lists[1],
		RequestedAudience: lists[2],
		GrantedAudience:   lists[3],
		Form:              form,
		Session:           session,
	}, nil
}

// getToken loads a row and its requester. An inactive row returns the requester together with inactiveErr.
func (s *Store) getToken(ctx context.Context, table, rawKey string, session fosite.Session, inactiveErr error) (fosite.Requester, error) {
	row, err := s.findToken(ctx, table, rawKey)
	if err != nil {
		return nil, err
	}
	req, err := s.request(ctx, row, session)
	if err != nil {
		return nil, err
	}
	if !row.Active && inactiveErr != nil {
		return req, inactiveErr
	}
	return req, nil
}

func (s *Store) deleteToken(ctx context.Context, table, rawKey string) error {
	return s.conn(ctx).Table(table).Where("signature = ?", hashKey(rawKey)).Delete(&tokenRow{}).Error
}

// Authorization codes.

// CreateAuthorizeCodeSession stores the authorization request under the code's signature.
func (s *Store) CreateAuthorizeCodeSession(ctx context.Context, code string, req fosite.Requester) error {
	if err := s.insertToken(ctx, tableCode, code, req, fosite.AuthorizeCode, nil); err != nil {
		return fmt.Errorf("create authorize code: %w", err)
	}
	return nil
}

// GetAuthorizeCodeSession returns the authorization request of a code. For a used (invalidated) code it
// returns the request together with fosite.ErrInvalidatedAuthorizeCode, so fosite can revoke the grant.
func (s *Store) GetAuthorizeCodeSession(ctx context.Context, code string, session fosite.Session) (fosite.Requester, error) {
	req, err := s.getToken(ctx, tableCode, code, session, fosite.ErrInvalidatedAuthorizeCode)
	if err != nil {
		if errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
			return req, err
		}
		return nil, fmt.Errorf("get authorize code: %w", err)
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession marks a code used. It is a compare-and-swap: if the code was already used
// (say, by a concurrent exchange of the same code) it returns fosite.ErrInvalidatedAuthorizeCode, so the
// code is exchanged at most once. An unknown code is fosite.ErrNotFound.
func (s *Store) InvalidateAuthorizeCodeSession(ctx context.Context, code string) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Table(tableCode).Where("signature = ? AND active = ?", hashKey(code), true).Update("active", false)
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 1 {
			return nil
		}
		var n int64
		if err := tx.Table(tableCode).Where("signature = ?", hashKey(code)).Count(&n).Error; err != nil {
			return mapErr(err)
		}
		if n == 0 {
			return fosite.ErrNotFound
		}
		return fosite.ErrInvalidatedAuthorizeCode
	})
	if err != nil {
		return fmt.Errorf("invalidate authorize code: %w", err)
	}
	return nil
}

// Access tokens.

// CreateAccessTokenSession stores an access token's request.
func (s *Store) CreateAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	if err := s.insertToken(ctx, tableAccess, signature, req, fosite.AccessToken, nil); err != nil {
		return fmt.Errorf("create access token: %w", err)
	}
	return nil
}

// GetAccessTokenSession returns an access token's request, expired or not (fosite checks expiry).
func (s *Store) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, err := s.getToken(ctx, tableAccess, signature, session, fosite.ErrInactiveToken)
	if err != nil {
		if errors.Is(err, fosite.ErrInactiveToken) {
			return req, err
		}
		return nil, fmt.Errorf("get access token: %w", err)
	}
	return req, nil
}

// DeleteAccessTokenSession deletes an access token; deleting a missing one is not an error.
func (s *Store) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	if err := s.deleteToken(ctx, tableAccess, signature); err != nil {
		return fmt.Errorf("delete access token: %w", mapErr(err))
	}
	return nil
}

// RevokeAccessToken deletes every access token of the grant requestID.
func (s *Store) RevokeAccessToken(ctx context.Context, requestID string) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var gone []revokedToken
		if err := tx.Raw("DELETE FROM "+tableAccess+" WHERE request_id = ? RETURNING client_id, subject, form", requestID).Scan(&gone).Error; err != nil {
			return mapErr(err)
		}
		return recordRevocation(ctx, tx, gone, "access_token")
	})
	if err != nil {
		return fmt.Errorf("revoke access tokens: %w", err)
	}
	return nil
}

// revokedToken is what a revocation reads back of the tokens it revoked, for the event.
type revokedToken struct {
	ClientID string `gorm:"column:client_id"`
	Subject  string `gorm:"column:subject"`
	Form     string `gorm:"column:form"`
}

// recordRevocation records token.revoked for one grant's tokens of kind that a revocation took (none: nothing
// to record).
func recordRevocation(ctx context.Context, tx *gorm.DB, gone []revokedToken, kind string) error {
	if len(gone) == 0 {
		return nil
	}
	t := gone[0]
	form, _ := url.ParseQuery(t.Form)
	grant := form.Get("grant_type")
	ev := Event{Type: EventTokenRevoked, ClientID: t.ClientID, Details: map[string]any{"token_type": kind, "grant_type": grant}}
	if grant != "client_credentials" {
		ev.UserID = t.Subject
	}
	return recordEvent(ctx, tx, ev)
}

// PKCE.

// CreatePKCERequestSession stores the PKCE request (its form holds code_challenge) under the code's signature.
func (s *Store) CreatePKCERequestSession(ctx context.Context, signature string, req fosite.Requester) error {
	if err := s.insertToken(ctx, tablePKCE, signature, req, fosite.AuthorizeCode, nil); err != nil {
		return fmt.Errorf("create pkce request: %w", err)
	}
	return nil
}

// GetPKCERequestSession returns the PKCE request of a code.
func (s *Store) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, err := s.getToken(ctx, tablePKCE, signature, session, nil)
	if err != nil {
		return nil, fmt.Errorf("get pkce request: %w", err)
	}
	return req, nil
}

// DeletePKCERequestSession deletes the PKCE request of a code; deleting a missing one is not an error.
func (s *Store) DeletePKCERequestSession(ctx context.Context, signature string) error {
	if err := s.deleteToken(ctx, tablePKCE, signature); err != nil {
		return fmt.Errorf("delete pkce request: %w", mapErr(err))
	}
	return nil
}

// OpenID Connect.

// CreateOpenIDConnectSession stores the OpenID Connect request of an authorization code. fosite passes the
// raw code here; only its hash is stored.
func (s *Store) CreateOpenIDConnectSession(ctx context.Context, authorizeCode string, req fosite.Requester) error {
	if err := s.insertToken(ctx, tableOIDC, authorizeCode, req, fosite.AuthorizeCode, nil); err != nil {
		return fmt.Errorf("create openid connect session: %w", err)
	}
	return nil
}

// GetOpenIDConnectSession returns the OpenID Connect request of a code, decoding its session into
// requester's session; fosite.ErrNotFound (= openid.ErrNoSessionFound) when there is none.
func (s *Store) GetOpenIDConnectSession(ctx context.Context, authorizeCode string, requester fosite.Requester) (fosite.Requester, error) {
	var session fosite.Session
	if requester != nil {
		session = requester.GetSession()
	}
	req, err := s.getToken(ctx, tableOIDC, authorizeCode, session, nil)
	if err != nil {
		return nil, fmt.Errorf("get openid connect session: %w", err)
	}
	return req, nil
}

// DeleteOpenIDConnectSession deletes the OpenID Connect request of a code; a missing one is not an error.
func (s *Store) DeleteOpenIDConnectSession(ctx context.Context, authorizeCode string) error {
	if err := s.deleteToken(ctx, tableOIDC, authorizeCode); err != nil {
		return fmt.Errorf("delete openid connect session: %w", mapErr(err))
	}
	return nil
}

// Pushed authorization requests.

// CreatePARSession stores a pushed authorization request under the hash of its request_uri. It expires at
// the session's PushedAuthorizeRequestContext expiry, or defaultPARLifespan after it was requested.
func (s *Store) CreatePARSession(ctx context.Context, requestURI string, request fosite.AuthorizeRequester) error {
	err := func() error {
		if request == nil {
			return errors.New("nil request")
		}
		expiresAt := sessionExpiry(request, fosite.PushedAuthorizeRequestContext)
		if expiresAt.IsZero() {
			from := request.GetRequestedAt()
			if from.IsZero() {
				from = s.now()
			}
			expiresAt = from.Add(defaultPARLifespan)
		}
		params := authorizeParams{
			ResponseTypes:       request.GetResponseTypes(),
			State:               request.GetState(),
			ResponseMode:        string(request.GetResponseMode()),
			DefaultResponseMode: string(request.GetDefaultResponseMode()),
		}
		if u := request.GetRedirectURI(); u != nil {
			params.RedirectURI = u.String()
		}
		if ar, ok := request.(*fosite.AuthorizeRequest); ok {
			params.HandledResponseTypes = ar.HandledResponseTypes
		}
		paramsJSON, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("encode authorize parameters: %w", err)
		}
		cols, args, err := newTokenRow(hashKey(requestURI), request, expiresAt)
		if err != nil {
			return err
		}
		return s.insertRow(ctx, tablePAR, append(cols, "authorize_params"), append(args, string(paramsJSON)))
	}()
	if err != nil {
		return fmt.Errorf("create par session: %w", err)
	}
	return nil
}

// GetPARSession returns a pushed authorization request. fosite does not check its expiry, so an expired one
// is fosite.ErrNotFound here. The session is decoded into Options.NewSession().
func (s *Store) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	ar, err := func() (*fosite.AuthorizeRequest, error) {
		row, err := s.findToken(ctx, tablePAR, requestURI)
		if err != nil {
			return nil, err
		}
		if row.ExpiresAt != nil && !row.ExpiresAt.After(s.now()) {
			return nil, fosite.ErrNotFound
		}
		req, err := s.request(ctx, row, nil)
		if err != nil {
			return nil, err
		}
		var params authorizeParams
		if err := json.Unmarshal([]byte(row.AuthorizeParams), &params); err != nil {
			return nil, fmt.Errorf("decode authorize parameters: %w", err)
		}
		ar := &fosite.AuthorizeRequest{
			ResponseTypes:        fosite.Arguments(params.ResponseTypes),
			State:                params.State,
			HandledResponseTypes: fosite.Arguments(params.HandledResponseTypes),
			ResponseMode:         fosite.ResponseModeType(params.ResponseMode),
			DefaultResponseMode:  fosite.ResponseModeType(params.DefaultResponseMode),
			Request:              *req,
		}
		if ar.ResponseTypes == nil {
			ar.ResponseTypes = fosite.Arguments{}
		}
		if ar.HandledResponseTypes == nil {
			ar.HandledResponseTypes = fosite.Arguments{}
		}
		if params.RedirectURI != "" {
			if ar.RedirectURI, err = url.Parse(params.RedirectURI); err != nil {
				return nil, fmt.Errorf("decode redirect_uri: %w", err)
			}
		}
		return ar, nil
	}()
	if err != nil {
		return nil, fmt.Errorf("get par session: %w", err)
	}
	return ar, nil
}

// DeletePARSession deletes a pushed authorization request; deleting a missing one is not an error.
func (s *Store) DeletePARSession(ctx context.Context, requestURI string) error {
	if err := s.deleteToken(ctx, tablePAR, requestURI); err != nil {
		return fmt.Errorf("delete par session: %w", mapErr(err))
	}
	return nil
}
