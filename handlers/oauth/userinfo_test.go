package oauth

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

type fakeOAuth struct {
	fosite.OAuth2Provider
	ar  fosite.AccessRequester
	err error
}

func (f *fakeOAuth) IntrospectToken(ctx context.Context, token string, use fosite.TokenUse, s fosite.Session, scopes ...string) (fosite.TokenUse, fosite.AccessRequester, error) {
	if f.err != nil {
		return "", nil, f.err
	}
	return fosite.AccessToken, f.ar, nil
}

type fakeUsers struct {
	user *models.User
	err  error
}

func (f *fakeUsers) UserByID(context.Context, string) (*models.User, error) { return f.user, f.err }

func userToken(scopes ...string) fosite.AccessRequester {
	sess := provider.NewSession()
	sess.Subject = "u1"
	return &fosite.AccessRequest{Request: fosite.Request{Client: &fosite.DefaultClient{ID: "app"}, Session: sess, GrantedScope: scopes}}
}

func TestUserInfoAnswers(t *testing.T) {
	dbDown := fmt.Errorf("select: %w", driver.ErrBadConn)
	for _, tc := range []struct {
		name   string
		method string
		token  string
		oauth  fakeOAuth
		users  fakeUsers
		status int
		code   string // "" = success
		header string
	}{
		{name: "PUT", method: "PUT", status: 405, code: "invalid_request"},
		{name: "no token", method: "GET", status: 401, code: "invalid_token", header: `Bearer realm="latchkey"`},
		{name: "token the store could not look up", method: "GET", token: "x", oauth: fakeOAuth{err: fosite.ErrRequestUnauthorized.WithWrap(dbDown)},
			status: 503, code: "temporarily_unavailable"},
		{name: "expired token", method: "GET", token: "x", oauth: fakeOAuth{err: fosite.ErrTokenExpired}, status: 401, code: "invalid_token",
			header: `Bearer realm="latchkey", error="invalid_token", error_description="The access token is invalid, expired or revoked."`},
		{name: "without openid", method: "GET", token: "x", oauth: fakeOAuth{ar: userToken("email")}, status: 403, code: "insufficient_scope",
			header: `Bearer realm="latchkey", error="insufficient_scope", scope="openid"`},
		{name: "user gone", method: "GET", token: "x", oauth: fakeOAuth{ar: userToken("openid")}, users: fakeUsers{err: models.ErrNotFound},
			status: 401, code: "invalid_token"},
		{name: "user lookup failed", method: "GET", token: "x", oauth: fakeOAuth{ar: userToken("openid")}, users: fakeUsers{err: dbDown},
			status: 503, code: "temporarily_unavailable"},
		{name: "claims", method: "GET", token: "x", oauth: fakeOAuth{ar: userToken("openid", "email")},
			users: fakeUsers{user: &models.User{ID: "u1", Email: "ada@example.com"}}, status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &UserInfo{OAuth: &tc.oauth, Users: &tc.users}
			req := httptest.NewRequest(tc.method, provider.PathUserInfo, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var body map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tc.status || (tc.code != "" && body["error"] != tc.code) {
				t.Fatalf("%d %v, want %d %s", rec.Code, body, tc.status, tc.code)
			}
			if tc.header != "" && rec.Header().Get("WWW-Authenticate") != tc.header {
				t.Errorf("WWW-Authenticate = %q, want %q", rec.Header().Get("WWW-Authenticate"), tc.header)
			}
			if tc.status == 503 && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if tc.code == "" && (body["sub"] != "u1" || body["email"] != "ada@example.com") {
				t.Errorf("claims %v", body)
			}
		})
	}
}
