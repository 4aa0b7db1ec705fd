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

// exchangeFixture is the token API fixture with two exchanging clients and a signed-in user's tokens.
func exchangeFixture(t testing.TB) (*tokenAPIFixture, TokenSet) {
	t.Helper()
	f := newTokenAPIFixture(t)
	ctx := context.Background()
	for _, c := range []*models.Client{
		{ID: "orders", SecretHash: f.p.Hasher.HashSecret(backendSecret), Scopes: []string{"openid", "profile", "email"},
			GrantTypes: []string{GrantTypeTokenExchange}, TokenExchangeAudiences: []string{"https://api.example"}},
		{ID: "gateway", SecretHash: f.p.Hasher.HashSecret(backendSecret), Scopes: []string{"openid", "profile"},
			GrantTypes: []string{GrantTypeTokenExchange}, TokenExchangeAudiences: []string{"https://api.example"}, TokenExchangeDelegationOnly: true},
	} {
		if err := f.store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	subject, err := f.p.SignIn(ctx, "spa", f.session("spa", []string{"openid", "profile"}), []string{"openid", "profile"})
	if err != nil {
		t.Fatal(err)
	}
	return f, subject
}

func exchangeRequest(client string, form url.Values) *http.Request {
	form.Set("grant_type", GrantTypeTokenExchange)
	r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(client, backendSecret)
	return r
}

// The token exchange handler's refusals, each with RFC 8693's error, before anything is issued.
func TestTokenExchangeRefusals(t *testing.T) {
	f, subject := exchangeFixture(t)
	ctx := context.Background()
	request := func(client string, form url.Values) error {
		_, err := f.p.OAuth2.NewAccessRequest(ctx, exchangeRequest(client, form), NewSession())
		return err
	}
	valid := func(kv ...string) url.Values {
		v := url.Values{"subject_token": {subject.AccessToken}, "subject_token_type": {TokenTypeAccessToken}, "audience": {"https://api.example"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	if err := request("orders", valid()); err != nil {
		t.Fatalf("a valid exchange: %s", errDetail(err))
	}
	dir := f.p.options.Directory.(*fakeDirectory)
	for _, tc := range []struct {
		name, client string
		form         url.Values
		userGone     bool
		want         string
	}{
		{"a client without a policy", "thirdbackend", valid(), false, "unauthorized_client"},
		{"no subject token", "orders", valid("subject_token", ""), false, "invalid_request"},
		{"no subject token type", "orders", valid("subject_token_type", ""), false, "invalid_request"},
		{"an unknown token type", "orders", valid("subject_token_type", "urn:ietf:params:oauth:token-type:saml2"), false, "invalid_request"},
		{"an actor token without its type", "orders", valid("actor_token", subject.AccessToken), false, "invalid_request"},
		{"a refresh token asked for", "orders", valid("requested_token_type", TokenTypeRefreshToken), false, "invalid_request"},
		{"no audience", "orders", valid("audience", ""), false, "invalid_request"},
		{"an audience outside the policy", "orders", valid("audience", "https://other.example"), false, "invalid_target"},
		{"a token that is not ours", "orders", valid("subject_token", "lk_at_forged.forged"), false, "invalid_request"},
		{"an access token as a refresh token", "orders", valid("subject_token_type", TokenTypeRefreshToken), false, "invalid_request"},
		{"a scope the subject lacks", "orders", valid("scope", "openid email"), false, "invalid_scope"},
		{"an actor token of another client", "gateway", valid("actor_token", subject.AccessToken, "actor_token_type", TokenTypeAccessToken), false, "invalid_request"},
		{"impersonation by a delegation-only client", "gateway", valid(), false, "invalid_request"},
		{"the subject's user gone", "orders", valid(), true, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir.userErr = nil
			if tc.userGone {
				dir.userErr = ErrGrantEnded
			}
			if err := request(tc.client, tc.form); fosite.ErrorToRFC6749Error(err).ErrorField != tc.want {
				t.Errorf("err = %s, want %s", errDetail(err), tc.want)
			}
		})
	}
}

// One token exchange through fosite's token endpoint: client authentication, the subject token read and checked,
// the user read again, a JWT-or-opaque access token issued and stored.
func BenchmarkTokenExchange(b *testing.B) {
	f, subject := exchangeFixture(b)
	ctx := context.Background()
	form := url.Values{"subject_token": {subject.AccessToken}, "subject_token_type": {TokenTypeAccessToken}, "audience": {"https://api.example"}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ar, err := f.p.OAuth2.NewAccessRequest(ctx, exchangeRequest("orders", form), NewSession())
		if err != nil {
			b.Fatal(errDetail(err))
		}
		if _, err := f.p.OAuth2.NewAccessResponse(ctx, ar); err != nil {
			b.Fatal(errDetail(err))
		}
	}
}
