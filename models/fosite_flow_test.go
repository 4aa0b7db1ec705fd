package models_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/models"
)

// TestFositeFlows drives fosite's own handlers against the SQLite store: authorization code with PKCE and
// OpenID Connect, refresh rotation, refresh token reuse, and code reuse.
func TestFositeFlows(t *testing.T) {
	ctx := context.Background()
	s := newSQLiteStore(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	getKey := func(context.Context) (interface{}, error) { return key, nil }
	cfg := &fosite.Config{
		GlobalSecret:         []byte("0123456789abcdef0123456789abcdef"),
		AccessTokenLifespan:  time.Hour,
		RefreshTokenLifespan: 24 * time.Hour,
		IDTokenIssuer:        "https://issuer.example",
		EnforcePKCE:          true,
	}
	f := compose.Compose(cfg, s, &compose.CommonStrategy{
		CoreStrategy:               compose.NewOAuth2HMACStrategy(cfg),
		OpenIDConnectTokenStrategy: compose.NewOpenIDConnectStrategy(getKey, cfg),
		Signer:                     &jwt.DefaultSigner{GetPrivateKey: getKey},
	},
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OAuth2PKCEFactory,
		compose.OAuth2TokenIntrospectionFactory,
	)
	client := &models.Client{
		ID: "spa", Public: true,
		RedirectURIs:  []string{"https://app.example/cb"},
		GrantTypes:    []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"},
		Scopes:        []string{"openid", "offline_access"},
	}
	if err := s.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}

	verifier := "verifier-0123456789-0123456789-0123456789-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	authorize := func() string {
		q := url.Values{
			"client_id": {"spa"}, "response_type": {"code"}, "scope": {"openid offline_access"},
			"redirect_uri": {"https://app.example/cb"}, "state": {"state-123456789"}, "nonce": {"nonce-123456789"},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		}
		ar, err := f.NewAuthorizeRequest(ctx, httptest.NewRequest(http.MethodGet, "https://issuer.example/auth?"+q.Encode(), nil))
		if err != nil {
			t.Fatalf("authorize request: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
		}
		ar.GrantScope("openid")
		ar.GrantScope("offline_access")
		sess := &openid.DefaultSession{
			Claims:  &jwt.IDTokenClaims{Subject: "usr_1", AuthTime: time.Now().UTC(), RequestedAt: time.Now().UTC()},
			Headers: &jwt.Headers{}, Subject: "usr_1",
		}
		resp, err := f.NewAuthorizeResponse(ctx, ar, sess)
		if err != nil {
			t.Fatalf("authorize response: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
		}
		return resp.GetParameters().Get("code")
	}
	token := func(form url.Values) (fosite.AccessResponder, error) {
		r := httptest.NewRequest(http.MethodPost, "https://issuer.example/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req, err := f.NewAccessRequest(ctx, r, new(openid.DefaultSession))
		if err != nil {
			return nil, err
		}
		return f.NewAccessResponse(ctx, req)
	}
	active := func(tok string) bool {
		_, _, err := f.IntrospectToken(ctx, tok, fosite.AccessToken, new(openid.DefaultSession))
		return err == nil
	}
	refreshActive := func(tok string) bool {
		_, _, err := f.IntrospectToken(ctx, tok, fosite.RefreshToken, new(openid.DefaultSession))
		return err == nil
	}
	exchange := func(code string) (fosite.AccessResponder, error) {
		return token(url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"spa"},
			"redirect_uri": {"https://app.example/cb"}, "code_verifier": {verifier},
		})
	}
	refresh := func(rt string) (fosite.AccessResponder, error) {
		return token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"spa"}})
	}
	describe := func(err error) string {
		return fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription()
	}

	t.Run("code exchange, rotation and refresh token reuse", func(t *testing.T) {
		resp, err := exchange(authorize())
		if err != nil {
			t.Fatalf("exchange: %s", describe(err))
		}
		at, rt := resp.GetAccessToken(), resp.GetExtra("refresh_token").(string)
		if idt, _ := resp.GetExtra("id_token").(string); idt == "" {
			t.Error("no id_token")
		}
		if !active(at) || !refreshActive(rt) {
			t.Fatal("fresh tokens are not active")
		}
		resp2, err := refresh(rt)
		if err != nil {
			t.Fatalf("refresh: %s", describe(err))
		}
		at2, rt2 := resp2.GetAccessToken(), resp2.GetExtra("refresh_token").(string)
		if active(at) {
			t.Error("access token of the rotated grant is still active")
		}
		if !active(at2) || !refreshActive(rt2) {
			t.Fatal("rotated tokens are not active")
		}
		_, err = refresh(rt)
		if err == nil {
			t.Fatal("reusing a rotated refresh token succeeded")
		}
		if active(at2) || refreshActive(rt2) {
			t.Error("refresh token reuse did not revoke the grant")
		}
	})

	t.Run("code reuse fails and revokes the grant", func(t *testing.T) {
		code := authorize()
		resp, err := exchange(code)
		if err != nil {
			t.Fatalf("exchange: %s", describe(err))
		}
		_, err = exchange(code)
		if !errors.Is(err, fosite.ErrInvalidGrant) {
			t.Fatalf("second exchange: %v, want invalid_grant", err)
		}
		if active(resp.GetAccessToken()) || refreshActive(resp.GetExtra("refresh_token").(string)) {
			t.Error("code reuse did not revoke the grant's tokens")
		}
	})
}
