package models

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// TestNoRawSecretsStored writes every kind of token through the public API and then reads every column of
// every table back as text: no raw signature, request URI, jti or form secret may appear anywhere.
func TestNoRawSecretsStored(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "lk.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	user, err := s.CreateUserWith(ctx, NewUser{Email: "raw@example.com", Password: "RAWSECRET-password"})
	if err != nil {
		t.Fatal(err)
	}
	_, sessionToken, err := s.CreateBrowserSession(ctx, user, "", "", time.Now(), time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	challenge, err := s.CreateAuthChallenge(ctx, AuthChallenge{Query: "state=kept", ClientID: "app", BrowserSessionID: "ses", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	raw := []string{"RAWSECRET", sessionToken, challenge.ID}
	client := &Client{ID: "app", SecretHash: "h"}
	if err := s.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	req := func() *fosite.AuthorizeRequest {
		return &fosite.AuthorizeRequest{Request: fosite.Request{
			ID: "req", RequestedAt: time.Now(), Client: client,
			Form: url.Values{
				"client_secret": {"RAWSECRET-cs"}, "code_verifier": {"RAWSECRET-cv"}, "code": {"RAWSECRET-code"},
				"refresh_token": {"RAWSECRET-rt"}, "password": {"RAWSECRET-pw"}, "client_assertion": {"RAWSECRET-ca"},
				"token": {"RAWSECRET-tok"}, "assertion": {"RAWSECRET-as"}, "state": {"kept"},
			},
			Session: &openid.DefaultSession{Subject: "usr_1"},
		}}
	}
	steps := []error{
		s.CreateAccessTokenSession(ctx, "RAWSECRET-access", req()),
		s.CreateRefreshTokenSession(ctx, "RAWSECRET-refresh", "RAWSECRET-access", req()),
		s.CreateAuthorizeCodeSession(ctx, "RAWSECRET-codesig", req()),
		s.CreatePKCERequestSession(ctx, "RAWSECRET-pkce", req()),
		s.CreateOpenIDConnectSession(ctx, "RAWSECRET-oidc", req()),
		s.CreatePARSession(ctx, "urn:RAWSECRET-par", req()),
		s.SetClientAssertionJWT(ctx, "RAWSECRET-jti", time.Now().Add(time.Hour)),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	tables := append(append([]string{}, tokenTables...), "oauth2_jti", "users", "browser_sessions", "auth_challenges")
	for _, table := range tables {
		rows, err := s.db.Raw("SELECT * FROM " + table).Rows()
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		n := 0
		for rows.Next() {
			n++
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				text := fmt.Sprintf("%s", v)
				for _, secret := range raw {
					if strings.Contains(text, secret) {
						t.Errorf("%s.%s holds a raw secret: %s", table, cols[i], text)
					}
				}
			}
		}
		rows.Close()
		if n != 1 {
			t.Errorf("%s has %d rows, want 1", table, n)
		}
	}
}
