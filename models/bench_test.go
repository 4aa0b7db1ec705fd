package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/models"
)

func benchRequest(b *testing.B, s *models.Store) *fosite.Request {
	b.Helper()
	c := &models.Client{ID: "bench", GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}}
	if err := s.CreateClient(context.Background(), c); err != nil {
		b.Fatal(err)
	}
	sess := &openid.DefaultSession{Subject: "usr_bench", Username: "bench@example.com"}
	sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
	return &fosite.Request{
		ID: "grant", RequestedAt: time.Now(), Client: c,
		RequestedScope: fosite.Arguments{"openid"}, GrantedScope: fosite.Arguments{"openid"},
		Form: map[string][]string{"grant_type": {"authorization_code"}}, Session: sess,
	}
}

func BenchmarkCreateAccessTokenSession(b *testing.B) {
	s := newSQLiteStore(b)
	req := benchRequest(b, s)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := s.CreateAccessTokenSession(ctx, fmt.Sprintf("sig-%d", i), req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetAccessTokenSession(b *testing.B) {
	s := newSQLiteStore(b)
	req := benchRequest(b, s)
	ctx := context.Background()
	const n = 1000
	for i := range n {
		if err := s.CreateAccessTokenSession(ctx, fmt.Sprintf("sig-%d", i), req); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.GetAccessTokenSession(ctx, fmt.Sprintf("sig-%d", i%n), new(openid.DefaultSession)); err != nil {
			b.Fatal(err)
		}
	}
}
