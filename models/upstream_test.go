package models_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

func TestUpstreamProviderValidate(t *testing.T) {
	good := models.UpstreamProvider{ID: "corp", Kind: models.UpstreamKindOIDC, DisplayName: "Corp", Issuer: "https://id.example.com",
		ClientID: "c", SealedSecret: "s", Scopes: []string{"openid", "email"}, ClaimEmail: "email"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good provider: %v", err)
	}
	for _, tc := range []struct {
		field  string
		change func(p *models.UpstreamProvider)
	}{
		{"id", func(p *models.UpstreamProvider) { p.ID = "../x" }},
		{"kind", func(p *models.UpstreamProvider) { p.Kind = "saml" }},
		{"issuer_url", func(p *models.UpstreamProvider) { p.Issuer = "http://id.example.com" }},
		{"scopes", func(p *models.UpstreamProvider) { p.Scopes = []string{"email"} }},
		{"claim_email", func(p *models.UpstreamProvider) { p.ClaimEmail = "" }},
		{"client_secret", func(p *models.UpstreamProvider) { p.SealedSecret = "" }},
		{"display_name", func(p *models.UpstreamProvider) { p.DisplayName = "a\nb" }},
		{"github_auth_url", func(p *models.UpstreamProvider) { p.APIURL = "https://api.example.com" }},
	} {
		p := good
		tc.change(&p)
		var ve models.ValidationError
		if err := p.Validate(); !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: Validate = %v", tc.field, err)
		}
	}
}

func newUpstreamStore(t testing.TB) (*models.Store, models.UpstreamAccount) {
	s := newSQLiteStore(t)
	ctx := context.Background()
	p := &models.UpstreamProvider{ID: "corp", Kind: models.UpstreamKindOIDC, DisplayName: "Corp", Issuer: "https://id.example.com",
		ClientID: "c", SealedSecret: "s", Scopes: []string{"openid"}, ClaimEmail: "email"}
	if err := s.CreateUpstreamProvider(ctx, p); err != nil {
		t.Fatal(err)
	}
	return s, models.UpstreamAccount{ProviderID: "corp", Subject: "sub-1", Email: "ada@example.com", EmailVerified: true}
}

// Concurrent first sign-ins of one account make one user and one link.
func TestUserForUpstreamConcurrentFirstSignIn(t *testing.T) {
	s, acct := newUpstreamStore(t)
	ctx := context.Background()
	if err := s.UpdatePool(ctx, models.Pool{Name: models.DefaultPool, SignupEnabled: true}); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 4)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			u, err := s.UserForUpstream(ctx, acct)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = u.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("users = %v; want one", ids)
		}
	}
	if _, _, err := s.CreateUpstreamSession(ctx, ids[0], "", "", time.Now(), time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkUserForUpstream is the callback's local storage work for a linked account: find the user, start
// its session.
func BenchmarkUserForUpstream(b *testing.B) {
	s, acct := newUpstreamStore(b)
	ctx := context.Background()
	if _, err := s.CreateUserWith(ctx, models.NewUser{Email: acct.Email, Password: "x", EmailVerified: true}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		u, err := s.UserForUpstream(ctx, acct)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.CreateUpstreamSession(ctx, u.ID, "", "", time.Now(), time.Hour, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
