package models_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/models"
)

// benchBackends runs b on SQLite, and on PostgreSQL when LATCHKEY_TEST_POSTGRES_URL is set.
func benchBackends(b *testing.B, run func(b *testing.B, s *models.Store)) {
	b.Run("sqlite", func(b *testing.B) { run(b, newSQLiteStore(b)) })
	if base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL"); base != "" {
		b.Run("postgres", func(b *testing.B) { run(b, newPostgresStore(b, base)) })
	}
}

func benchRequest(b *testing.B, s *models.Store) *fosite.Request {
	b.Helper()
	c := &models.Client{ID: "bench", SecretHash: "hash", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}}
	if err := s.CreateClient(context.Background(), c); err != nil {
		b.Fatal(err)
	}
	sess := &openid.DefaultSession{Subject: "bench"}
	sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
	return &fosite.Request{
		ID: "grant", RequestedAt: time.Now(), Client: c,
		RequestedScope: fosite.Arguments{"read"}, GrantedScope: fosite.Arguments{"read"},
		Form: map[string][]string{"grant_type": {"client_credentials"}}, Session: sess,
	}
}

// BenchmarkCreateAccessTokenSession is the write of every token issuance: plain, and conditional on a cached
// client (the statement that also confirms the client row).
func BenchmarkCreateAccessTokenSession(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *models.Store) {
		ctx := context.Background()
		req := benchRequest(b, s)
		n := 0
		b.Run("plain", func(b *testing.B) {
			for b.Loop() {
				n++
				if err := s.CreateAccessTokenSession(ctx, fmt.Sprintf("sig-%d", n), req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("confirming_cached_client", func(b *testing.B) {
			for b.Loop() {
				n++
				cctx, _ := s.WithClientCache(ctx)
				c, err := s.GetClient(cctx, "bench")
				if err != nil {
					b.Fatal(err)
				}
				req.Client = c
				if err := s.CreateAccessTokenSession(cctx, fmt.Sprintf("sig-%d", n), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func BenchmarkGetAccessTokenSession(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *models.Store) {
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
	})
}

// BenchmarkGetClient is client authentication's lookup: the row read, and the cached answer the token,
// introspection and revocation endpoints use (confirmed later by their first statement).
func BenchmarkGetClient(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *models.Store) {
		benchRequest(b, s)
		ctx := context.Background()
		b.Run("row", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.GetClient(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("cached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cctx, _ := s.WithClientCache(ctx)
				if _, err := s.GetClient(cctx, "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
