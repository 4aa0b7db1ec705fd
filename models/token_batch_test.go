package models_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/models"
)

// TestTokenWritesInParallel issues client_credentials tokens from many goroutines at once, as the token endpoint
// does under load (on SQLite they share transactions, token_batch.go): a duplicate signature, a changed cached
// client and plain tokens in the same rush each get their own outcome, and every stored token has its event and
// no refused one has.
func TestTokenWritesInParallel(t *testing.T) {
	backends := map[string]func(t *testing.T) *models.Store{"sqlite": func(t *testing.T) *models.Store { return newSQLiteStore(t) }}
	if base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL"); base != "" {
		backends["postgres"] = func(t *testing.T) *models.Store { return newPostgresStore(t, base) }
	} else {
		t.Log("LATCHKEY_TEST_POSTGRES_URL not set; PostgreSQL part skipped")
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) { testTokenWritesInParallel(t, open(t)) })
	}
}

func testTokenWritesInParallel(t *testing.T, s *models.Store) {
	ctx := context.Background()
	for _, id := range []string{"svc", "changed"} {
		c := &models.Client{ID: id, SecretHash: "hash-1", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}}
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetClient(ctx, id); err != nil { // fills the cache
			t.Fatal(err)
		}
	}
	// Another node rotates "changed"'s secret: this store's cache still holds the old row.
	if err := s.ExecSQL(ctx, "UPDATE clients SET secret_hash = 'hash-2' WHERE id = 'changed'"); err != nil {
		t.Fatal(err)
	}

	const n = 96
	type outcome struct {
		client, sig string
		err         error
	}
	out := make([]outcome, n)
	start := make(chan struct{})
	var wg, ready sync.WaitGroup
	for i := range n {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			o := outcome{client: "svc", sig: fmt.Sprintf("sig-%d", i)}
			switch i % 4 {
			case 0:
				o.sig = "dup"
			case 1:
				o.client = "changed"
			}
			cctx, _ := s.WithClientCache(ctx)
			c, err := s.GetClient(cctx, o.client) // from the cache, before any write settles it stale
			ready.Done()
			if err != nil {
				o.err = err
				out[i] = o
				return
			}
			sess := &openid.DefaultSession{Subject: o.client}
			sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
			req := &fosite.Request{ID: "grant-" + o.sig, RequestedAt: time.Now(), Client: c, Session: sess,
				Form: map[string][]string{"grant_type": {"client_credentials"}}}
			<-start
			o.err = s.CreateAccessTokenSession(cctx, o.sig, req)
			out[i] = o
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()

	stored := map[string]int{}
	dupWins := 0
	for i, o := range out {
		switch {
		case o.client == "changed":
			if !errors.Is(o.err, models.ErrStaleClient) {
				t.Errorf("token %d on a changed client: %v, want ErrStaleClient", i, o.err)
			}
		case o.sig == "dup" && o.err == nil:
			dupWins++
			stored[o.client]++
		case o.sig == "dup":
			if !errors.Is(o.err, models.ErrConflict) {
				t.Errorf("duplicate signature %d: %v, want ErrConflict", i, o.err)
			}
		case o.err != nil:
			t.Errorf("token %d: %v", i, o.err)
		default:
			stored[o.client]++
			if _, err := s.GetAccessTokenSession(ctx, o.sig, &openid.DefaultSession{}); err != nil {
				t.Errorf("token %d was answered stored but reads %v", i, err)
			}
		}
	}
	if dupWins != 1 {
		t.Errorf("%d writes of the same signature succeeded, want 1", dupWins)
	}
	for _, client := range []string{"svc", "changed"} {
		evs, err := s.ListAuditEvents(ctx, models.AuditQuery{ClientID: client, Types: []string{models.EventTokenIssued}, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != stored[client] {
			t.Errorf("client %s: %d token.issued events for %d stored tokens", client, len(evs), stored[client])
		}
	}
}
