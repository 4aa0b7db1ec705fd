package models_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// Conditional writes (the admin API's If-Match) decide in the write itself: of writers holding the same stamp,
// exactly one wins and the others get ErrPreconditionFailed, with a frozen clock too (the stamp still moves).
func TestConditionalWritesOneWins(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC) // frozen: every write at the same instant
		u, err := s.CreateUserWith(ctx, models.NewUser{Email: "dee@example.com", Password: "violet-tractor-47"})
		if err != nil {
			t.Fatal(err)
		}
		c := &models.Client{ID: "shop", SecretHash: "hash", GrantTypes: []string{"client_credentials"}}
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		pool, err := s.GetPool(ctx, models.DefaultPool)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []struct {
			name  string
			write func(i int) error
		}{
			{"user", func(i int) error {
				name := fmt.Sprintf("writer %d", i)
				_, err := s.UpdateUser(ctx, u.ID, models.UserPatch{Name: &name, Unmodified: &u.UpdatedAt}, now)
				return err
			}},
			{"client", func(i int) error {
				next := *c
				next.Name = fmt.Sprintf("writer %d", i)
				return s.UpdateClientIf(ctx, &next, c.UpdatedAt, false)
			}},
			{"pool", func(i int) error {
				next := *pool
				next.DefaultRoles = []string{fmt.Sprintf("r%d", i)}
				return s.UpdatePoolIf(ctx, next, *pool)
			}},
			{"delete user", func(int) error { return s.DeleteUserIf(ctx, u.ID, u.UpdatedAt) }},
		} {
			t.Run(w.name, func(t *testing.T) {
				const writers = 8
				errs := make([]error, writers)
				var wg sync.WaitGroup
				for i := range writers {
					wg.Add(1)
					go func() { defer wg.Done(); errs[i] = w.write(i) }()
				}
				wg.Wait()
				won := 0
				for _, err := range errs {
					switch {
					case err == nil:
						won++
					case errors.Is(err, models.ErrPreconditionFailed):
					default:
						t.Errorf("unexpected error: %v", err)
					}
				}
				if w.name == "delete user" {
					// The user was changed by the first case: its old stamp matches nothing now.
					if won != 0 {
						t.Errorf("%d deletes with a stale stamp won", won)
					}
					return
				}
				if won != 1 {
					t.Errorf("%d writers won, want exactly one (%v)", won, errs)
				}
			})
		}
		got, err := s.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUserIf(ctx, u.ID, got.UpdatedAt); err != nil {
			t.Errorf("delete with the current stamp: %v", err)
		}
		if err := s.DeleteUserIf(ctx, u.ID, got.UpdatedAt); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("delete of a deleted user: %v", err)
		}
	})
}
