package admin

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// fakeOAuth answers introspection with one grant (or error); anything else panics.
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

type fakeStore struct {
	store
	client  *models.Client
	user    *models.User
	userErr error
}

func (f *fakeStore) ClientByID(context.Context, string) (*models.Client, error) { return f.client, nil }

func (f *fakeStore) UserByID(context.Context, string) (*models.User, error) { return f.user, f.userErr }

// clientToken is an admin client's client_credentials grant with the admin scope.
func clientToken(id string, scopes ...string) fosite.AccessRequester {
	sess := provider.NewSession()
	sess.Subject = id
	ar := &fosite.AccessRequest{Request: fosite.Request{
		Client: &fosite.DefaultClient{ID: id}, Session: sess, GrantedScope: scopes,
		Form: url.Values{"grant_type": {"client_credentials"}},
	}}
	return ar
}

func TestAdminAPIErrors(t *testing.T) {
	dbDown := fmt.Errorf("select: %w", driver.ErrBadConn)
	admin := &models.Client{ID: "ops", Admin: true}
	for _, tc := range []struct {
		name   string
		oauth  fakeOAuth
		store  fakeStore
		token  string
		status int
		code   string
		header string // WWW-Authenticate, when set
	}{
		{name: "no token", status: 401, code: "invalid_token", header: `Bearer realm="latchkey"`},
		{name: "unknown token", token: "x", oauth: fakeOAuth{err: fosite.ErrRequestUnauthorized.WithWrap(fosite.ErrNotFound)},
			status: 401, code: "invalid_token", header: `Bearer realm="latchkey", error="invalid_token"`},
		{name: "token the store could not look up is 503", token: "x", oauth: fakeOAuth{err: fosite.ErrRequestUnauthorized.WithWrap(dbDown)},
			status: 503, code: "temporarily_unavailable"},
		{name: "admin client without the scope", token: "x", oauth: fakeOAuth{ar: clientToken("ops")}, store: fakeStore{client: admin},
			status: 403, code: "insufficient_scope", header: `Bearer realm="latchkey", error="insufficient_scope", scope="latchkey.admin"`},
		{name: "a user that does not exist", token: "x", oauth: fakeOAuth{ar: clientToken("ops", Scope)},
			store: fakeStore{client: admin, userErr: models.ErrNotFound}, status: 404, code: "not_found"},
		{name: "a user of a pool the client does not administer looks missing", token: "x", oauth: fakeOAuth{ar: clientToken("ops", Scope)},
			store:  fakeStore{client: &models.Client{ID: "ops", Admin: true, AdminPools: []string{"staff"}}, user: &models.User{ID: "u1", Pool: "customers"}},
			status: 404, code: "not_found"},
		{name: "loading the user failed: 503", token: "x", oauth: fakeOAuth{ar: clientToken("ops", Scope)},
			store: fakeStore{client: admin, userErr: dbDown}, status: 503, code: "temporarily_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mux.NewRouter()
			(&API{OAuth: &tc.oauth, Store: &tc.store}).Mount(r)
			req := httptest.NewRequest(http.MethodGet, Prefix+"/users/u1", nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			var body map[string]string
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tc.status || body["error"] != tc.code {
				t.Fatalf("%d %v, want %d %s", rec.Code, body, tc.status, tc.code)
			}
			if tc.header != "" && rec.Header().Get("WWW-Authenticate") != tc.header {
				t.Errorf("WWW-Authenticate = %q, want %q", rec.Header().Get("WWW-Authenticate"), tc.header)
			}
			if strings.Contains(rec.Body.String(), "bad connection") {
				t.Errorf("the cause reached the client: %s", rec.Body.String())
			}
		})
	}
}
