package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// BenchmarkListUsersPage is the admin API's GET /users: a page of 50 of 2,000 users, the first page and one
// deep in the list (the keyset cursor makes the two cost the same), and an email lookup.
func BenchmarkListUsersPage(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *models.Store) {
		ctx := context.Background()
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 2000 {
			at := start.Add(time.Duration(i) * time.Second)
			err := s.ExecSQL(ctx, `INSERT INTO users (id, email, email_normalized, pool, password_hash, roles, name, extras, email_verified, disabled, created_at, updated_at)
				VALUES (?, ?, ?, 'default', '', '[]', '', '{}', false, false, ?, ?)`,
				fmt.Sprintf("usr_bench%05d", i), fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("u%d@example.com", i), at, at)
			if err != nil {
				b.Fatal(err)
			}
		}
		deep := &models.Cursor{CreatedAt: start.Add(1500 * time.Second), ID: "usr_bench01500"}
		for _, c := range []struct {
			name string
			q    models.UserQuery
			want int
		}{
			{"first_page", models.UserQuery{Limit: 51}, 51},
			{"deep_page", models.UserQuery{After: deep, Limit: 51}, 51},
			{"by_email", models.UserQuery{Pools: []string{"default"}, Email: "U1999@example.com", Limit: 51}, 1},
		} {
			b.Run(c.name, func(b *testing.B) {
				for b.Loop() {
					got, err := s.ListUsersPage(ctx, c.q)
					if err != nil || len(got) != c.want {
						b.Fatalf("%d users, %v; want %d", len(got), err, c.want)
					}
				}
			})
		}
	})
}
