package provider

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

// The password grant's two halves: fosite's request refuses what needs no password, and nothing is issued unless
// the caller put a signed-in user's session on the request.
func TestPasswordGrantIssuesOnlyForASignedInUser(t *testing.T) {
	f := newTokenAPIFixture(t)
	ctx := context.Background()
	if err := f.store.CreateClient(ctx, &models.Client{ID: "bubble", Public: true, FirstParty: true,
		GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"openid", "offline_access", "profile"}}); err != nil {
		t.Fatal(err)
	}
	request := func(t *testing.T, form url.Values) (fosite.AccessRequester, error) {
		t.Helper()
		form.Set("grant_type", "password")
		r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return f.p.OAuth2.NewAccessRequest(ctx, r, NewSession())
	}
	creds := func(client string) url.Values {
		return url.Values{"client_id": {client}, "username": {"ada@example.com"}, "password": {"secret"}}
	}

	t.Run("refused before any password is checked", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			form url.Values
			want string
		}{
			{"a first-party client not registered for it", creds("spa"), "unauthorized_client"},
			{"a third-party client", creds("thirdparty"), "unauthorized_client"},
			{"no password", url.Values{"client_id": {"bubble"}, "username": {"ada@example.com"}}, "invalid_request"},
			{"a scope the client may not have", func() url.Values { v := creds("bubble"); v.Set("scope", "email"); return v }(), "invalid_scope"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := request(t, tc.form); fosite.ErrorToRFC6749Error(err).ErrorField != tc.want {
					t.Errorf("err = %s, want %s", errDetail(err), tc.want)
				}
			})
		}
	})

	t.Run("no signed-in user, nothing issued", func(t *testing.T) {
		ar, err := request(t, creds("bubble"))
		if err != nil {
			t.Fatalf("request: %s", errDetail(err))
		}
		resp, err := f.p.OAuth2.NewAccessResponse(ctx, ar)
		if fosite.ErrorToRFC6749Error(err).ErrorField != "server_error" || resp != nil {
			t.Fatalf("response %v, err %s; want server_error and nothing", resp, errDetail(err))
		}
	})

	t.Run("a signed-in user gets the client's every scope when none is asked for", func(t *testing.T) {
		ar, err := request(t, creds("bubble"))
		if err != nil {
			t.Fatalf("request: %s", errDetail(err))
		}
		if got := strings.Join(ar.GetGrantedScopes(), " "); got != "openid offline_access profile" {
			t.Errorf("granted %q, want every scope of the client", got)
		}
		s := SessionFor(Identity{UserID: "usr_1", Email: "ada@example.com", Name: "Ada"}, ar.GetGrantedScopes(), "ses_1", f.now, f.now)
		s.ClientID = "bubble"
		ar.SetSession(s)
		resp, err := f.p.OAuth2.NewAccessResponse(ctx, ar)
		if err != nil {
			t.Fatalf("response: %s", errDetail(err))
		}
		if resp.GetExtra("refresh_token") == nil || resp.GetExtra("id_token") == nil {
			t.Errorf("want a refresh token and an ID token: %v", resp.ToMap())
		}
		stored, ok := f.introspect(t, resp.GetAccessToken())
		if !ok {
			t.Fatal("the access token is not active")
		}
		if sess := stored.GetSession().(*Session); sess.Subject != "usr_1" || sess.SID != "ses_1" {
			t.Errorf("stored session %+v, want the user's and its sid", sess)
		}
		if stored.GetRequestForm().Has("password") {
			t.Error("the stored request keeps the password")
		}
		if got := stored.GetSession().GetExpiresAt(fosite.AccessToken); !got.Equal(f.now.Add(DefaultAccessTokenLifespan)) {
			t.Errorf("access token expires %v, want the injected clock's now + lifespan", got)
		}
	})
}
