package provider

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

const backendSecret = "backend-secret-0123456789-0123456789"

// tokenAPIFixture is a provider composed over a real SQLite store, with first-party and third-party clients.
type tokenAPIFixture struct {
	p     *Provider
	store *models.Store
	now   time.Time
}

func newTokenAPIFixture(t testing.TB) *tokenAPIFixture {
	t.Helper()
	ctx := context.Background()
	store, err := models.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "latchkey.db"),
		models.Options{NewSession: func() fosite.Session { return NewSession() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// A clock ten minutes behind the wall clock, so a time taken from time.Now would show (fosite itself checks
	// expiry and auth_time against the wall clock, so it cannot be far off).
	f := &tokenAPIFixture{store: store, now: time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)}
	dir := &fakeDirectory{user: Identity{UserID: "usr_1", Email: "ada@example.com", Name: "Ada"}}
	f.p, err = New(Options{
		Issuer: "https://issuer.example", SystemSecret: []byte("0123456789abcdef0123456789abcdef"),
		Directory: dir, Now: func() time.Time { return f.now },
	}, store, newFakeKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	scopes := []string{"openid", "offline_access", "profile", "email"}
	for _, c := range []*models.Client{
		{ID: "spa", Public: true, FirstParty: true, GrantTypes: []string{"refresh_token"}, Scopes: scopes},
		{ID: "backend", FirstParty: true, SecretHash: f.p.Hasher.HashSecret(backendSecret),
			GrantTypes: []string{"refresh_token"}, Scopes: scopes},
		{ID: "norefresh", Public: true, FirstParty: true, GrantTypes: []string{"authorization_code"},
			ResponseTypes: []string{"code"}, RedirectURIs: []string{"https://app.example/cb"}, Scopes: scopes},
		{ID: "thirdparty", Public: true, GrantTypes: []string{"refresh_token"}, Scopes: scopes},
		{ID: "thirdbackend", SecretHash: f.p.Hasher.HashSecret(backendSecret), GrantTypes: []string{"refresh_token"}, Scopes: scopes},
		{ID: "postbackend", FirstParty: true, SecretHash: f.p.Hasher.HashSecret(backendSecret), TokenEndpointAuthMethod: "client_secret_post",
			GrantTypes: []string{"refresh_token"}, Scopes: scopes},
	} {
		if err := store.CreateClient(ctx, c); err != nil {
			t.Fatalf("create client %s: %v", c.ID, err)
		}
	}
	return f
}

func (f *tokenAPIFixture) session(clientID string, scopes []string) *Session {
	s := SessionFor(Identity{UserID: "usr_1", Email: "ada@example.com", Name: "Ada"}, scopes, "", f.now, f.now)
	s.ClientID = clientID
	return s
}

func (f *tokenAPIFixture) signIn(t *testing.T, clientID string, scopes ...string) TokenSet {
	t.Helper()
	tokens, err := f.p.SignIn(context.Background(), clientID, f.session(clientID, scopes), scopes)
	if err != nil {
		t.Fatalf("sign in with %s: %v", clientID, errDetail(err))
	}
	return tokens
}

// introspect answers whether an access token is active, and its stored request when it is.
func (f *tokenAPIFixture) introspect(t *testing.T, token string) (fosite.AccessRequester, bool) {
	t.Helper()
	_, ar, err := f.p.OAuth2.IntrospectToken(context.Background(), token, fosite.AccessToken, NewSession())
	switch {
	case err == nil:
		return ar, true
	case errors.Is(err, fosite.ErrInactiveToken), errors.Is(err, fosite.ErrTokenExpired), errors.Is(err, fosite.ErrRequestUnauthorized):
		return nil, false
	}
	t.Fatalf("introspect: %v", errDetail(err))
	return nil, false
}

// refreshActive reports whether a refresh token is stored and active.
func (f *tokenAPIFixture) refreshActive(t *testing.T, token string) bool {
	t.Helper()
	_, err := f.store.GetRefreshTokenSession(context.Background(), f.p.core.RefreshTokenSignature(context.Background(), token), NewSession())
	switch {
	case err == nil:
		return true
	case errors.Is(err, fosite.ErrInactiveToken), errors.Is(err, fosite.ErrNotFound):
		return false
	}
	t.Fatalf("read refresh token: %v", err)
	return false
}

func errDetail(err error) string {
	if err == nil {
		return "<nil>"
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	return rfc.ErrorField + ": " + rfc.WithExposeDebug(true).GetDescription()
}

func TestSignInGrantIssuesAndStores(t *testing.T) {
	f := newTokenAPIFixture(t)
	ctx := context.Background()

	tokens := f.signIn(t, "spa", "openid", "offline_access", "profile")
	if !strings.HasPrefix(tokens.AccessToken, prefixAccessToken) || !strings.HasPrefix(tokens.RefreshToken, prefixRefreshToken) || tokens.IDToken == "" {
		t.Fatalf("tokens = %+v, want an access, refresh and ID token", tokens)
	}
	if tokens.ExpiresIn != DefaultAccessTokenLifespan || !slices.Equal(tokens.Scopes, []string{"openid", "offline_access", "profile"}) {
		t.Errorf("expires in %v, scopes %v", tokens.ExpiresIn, tokens.Scopes)
	}
	ar, active := f.introspect(t, tokens.AccessToken)
	if !active {
		t.Fatal("the access token of a sign-in is not active")
	}
	if ar.GetClient().GetID() != "spa" || ar.GetSession().GetSubject() != "usr_1" {
		t.Errorf("stored grant: client %q subject %q", ar.GetClient().GetID(), ar.GetSession().GetSubject())
	}
	// Times come from the injected clock, not the wall clock.
	if got := ar.GetRequestedAt(); !got.Equal(f.now) {
		t.Errorf("requested at %v, want the injected clock's %v", got, f.now)
	}
	if got, want := ar.GetSession().GetExpiresAt(fosite.AccessToken), f.now.Add(DefaultAccessTokenLifespan); !got.Equal(want) {
		t.Errorf("access token expires %v, want %v", got, want)
	}
	if got, want := ar.GetSession().GetExpiresAt(fosite.RefreshToken), f.now.Add(DefaultRefreshTokenLifespan); !got.Equal(want) {
		t.Errorf("refresh token expires %v, want %v", got, want)
	}
	if id, err := f.p.RefreshTokenClient(ctx, tokens.RefreshToken); err != nil || id != "spa" {
		t.Errorf("refresh token's client = %q, %v", id, err)
	}
	if !f.refreshActive(t, tokens.RefreshToken) {
		t.Error("the refresh token of a sign-in is not stored active")
	}

	t.Run("without offline_access there is no refresh token", func(t *testing.T) {
		tokens := f.signIn(t, "spa", "openid")
		if tokens.RefreshToken != "" || tokens.IDToken == "" {
			t.Errorf("tokens = %+v", tokens)
		}
	})
	t.Run("without openid there is no ID token", func(t *testing.T) {
		tokens := f.signIn(t, "spa", "offline_access")
		if tokens.RefreshToken == "" || tokens.IDToken != "" {
			t.Errorf("tokens = %+v", tokens)
		}
	})
	t.Run("a client without the refresh_token grant gets no refresh token", func(t *testing.T) {
		tokens := f.signIn(t, "norefresh", "openid", "offline_access")
		if tokens.RefreshToken != "" || tokens.AccessToken == "" {
			t.Errorf("tokens = %+v", tokens)
		}
	})
	t.Run("a scope the client may not have is invalid_scope", func(t *testing.T) {
		_, err := f.p.SignIn(ctx, "spa", f.session("spa", []string{"roles"}), []string{"roles"})
		if !errors.Is(err, fosite.ErrInvalidScope) {
			t.Errorf("err = %s, want invalid_scope", errDetail(err))
		}
	})
	t.Run("a client that is not first-party may not sign in", func(t *testing.T) {
		for _, id := range []string{"thirdparty", "thirdbackend", "nosuchclient"} {
			_, err := f.p.SignIn(ctx, id, f.session(id, []string{"openid"}), []string{"openid"})
			if !errors.Is(err, fosite.ErrInvalidClient) {
				t.Errorf("%s: err = %s, want invalid_client", id, errDetail(err))
			}
		}
	})
}

// The sign-in grant exists only on the token API's endpoint: the public token endpoint neither lists nor runs it.
func TestSignInGrantRefusedAtPublicEndpoint(t *testing.T) {
	f := newTokenAPIFixture(t)
	if slices.Contains(f.p.GrantTypes(), GrantTypeFirstPartySignIn) {
		t.Fatalf("the public token endpoint lists the sign-in grant: %v", f.p.GrantTypes())
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		secret string
	}{
		{"public first-party client", url.Values{"client_id": {"spa"}}, ""},
		{"confidential first-party client with its secret", url.Values{}, backendSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("grant_type", GrantTypeFirstPartySignIn)
			tc.form.Set("scope", "openid offline_access")
			r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(tc.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.secret != "" {
				r.SetBasicAuth("backend", tc.secret)
			}
			sess := f.session("spa", []string{"openid", "offline_access"})
			ar, err := f.p.OAuth2.NewAccessRequest(context.Background(), r, sess)
			if err == nil {
				resp, rerr := f.p.OAuth2.NewAccessResponse(context.Background(), ar)
				t.Fatalf("the public endpoint accepted the sign-in grant (response %v, %v)", resp, rerr)
			}
			if rfc := fosite.ErrorToRFC6749Error(err); rfc.CodeField != http.StatusBadRequest {
				t.Errorf("err = %s (%d), want a 400", errDetail(err), rfc.CodeField)
			}
		})
	}
}

func TestTokenAPIRefresh(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, signInClient, client, secret string
		want                               *fosite.RFC6749Error // nil: refreshed
	}{
		{"public first-party app by client_id", "spa", "spa", "", nil},
		{"confidential first-party app by client_id alone", "backend", "backend", "", nil},
		{"confidential first-party app with its secret", "backend", "backend", backendSecret, nil},
		{"confidential first-party app with a wrong secret", "backend", "backend", "wrong-secret", fosite.ErrInvalidClient},
		{"client_secret_post first-party app with its secret", "postbackend", "postbackend", backendSecret, nil},
		{"client_secret_post first-party app with a wrong secret", "postbackend", "postbackend", "wrong-secret", fosite.ErrInvalidClient},
		{"public first-party app sending a secret", "spa", "spa", backendSecret, fosite.ErrInvalidClient},
		{"another first-party app's refresh token", "spa", "backend", "", fosite.ErrInvalidGrant},
		{"a third-party client", "spa", "thirdparty", "", fosite.ErrInvalidClient},
		{"a third-party client with its secret", "spa", "thirdbackend", backendSecret, fosite.ErrInvalidClient},
		{"an unknown client", "spa", "nosuchclient", "", fosite.ErrInvalidClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTokenAPIFixture(t)
			first := f.signIn(t, tc.signInClient, "openid", "offline_access", "email")
			f.now = f.now.Add(time.Minute)
			next, sess, err := f.p.Refresh(ctx, tc.client, tc.secret, first.RefreshToken)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %s, want %s", errDetail(err), tc.want.ErrorField)
				}
				if !f.refreshActive(t, first.RefreshToken) {
					t.Error("a refused refresh spent the refresh token")
				}
				return
			}
			if err != nil {
				t.Fatalf("refresh: %s", errDetail(err))
			}
			if next.AccessToken == "" || next.AccessToken == first.AccessToken || next.RefreshToken == "" ||
				next.RefreshToken == first.RefreshToken || next.IDToken == "" {
				t.Errorf("refreshed tokens = %+v", next)
			}
			if !slices.Equal(next.Scopes, []string{"openid", "offline_access", "email"}) || next.ExpiresIn <= 0 || next.ExpiresIn > DefaultAccessTokenLifespan {
				t.Errorf("scopes %v, expires in %v", next.Scopes, next.ExpiresIn)
			}
			if sess == nil || sess.Subject != "usr_1" || sess.ClientID != tc.client {
				t.Errorf("session = %+v", sess)
			}
			if f.refreshActive(t, first.RefreshToken) || !f.refreshActive(t, next.RefreshToken) {
				t.Error("the refresh did not rotate the refresh token")
			}
			if _, active := f.introspect(t, next.AccessToken); !active {
				t.Error("the refreshed access token is not active")
			}
		})
	}
}

// The first-party rule belongs to the token API alone: at the public token endpoint a confidential client must
// still authenticate to refresh.
func TestFirstPartyRuleStaysOffThePublicEndpoint(t *testing.T) {
	f := newTokenAPIFixture(t)
	tokens := f.signIn(t, "backend", "openid", "offline_access")
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken}, "client_id": {"backend"}}
	r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := f.p.OAuth2.NewAccessRequest(context.Background(), r, NewSession()); !errors.Is(err, fosite.ErrInvalidClient) {
		t.Fatalf("err = %s, want invalid_client", errDetail(err))
	}
	if !f.refreshActive(t, tokens.RefreshToken) {
		t.Error("a refused refresh spent the refresh token")
	}

	// With its secret the same refresh goes through at the public endpoint: one grant, either endpoint.
	form.Del("client_id")
	r = httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("backend", backendSecret)
	ar, err := f.p.OAuth2.NewAccessRequest(context.Background(), r, NewSession())
	if err == nil {
		_, err = f.p.OAuth2.NewAccessResponse(context.Background(), ar)
	}
	if err != nil {
		t.Fatalf("authenticated refresh at the public endpoint: %s", errDetail(err))
	}
}

func TestTokenAPIRefreshReuseRevokesTheGrant(t *testing.T) {
	f := newTokenAPIFixture(t)
	ctx := context.Background()
	first := f.signIn(t, "spa", "openid", "offline_access")
	second, _, err := f.p.Refresh(ctx, "spa", "", first.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %s", errDetail(err))
	}
	_, _, err = f.p.Refresh(ctx, "spa", "", first.RefreshToken)
	if !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Fatalf("reused refresh token: err = %s, want invalid_grant", errDetail(err))
	}
	if f.refreshActive(t, second.RefreshToken) {
		t.Error("the rotated refresh token survived the reuse of its predecessor")
	}
	for name, token := range map[string]string{"first": first.AccessToken, "second": second.AccessToken} {
		if _, active := f.introspect(t, token); active {
			t.Errorf("the %s access token of the grant is still active", name)
		}
	}
	if _, _, err := f.p.Refresh(ctx, "spa", "", second.RefreshToken); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Errorf("refresh with the revoked rotated token: err = %s, want invalid_grant", errDetail(err))
	}
}
