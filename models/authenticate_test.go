package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// TestAuthenticateTimingHidesUnknownEmails checks an unknown email (or an unknown pool) costs an argon2id
// verification like a wrong password does. Without the dummy verification it would be two orders of magnitude faster; the
// bound is loose so a busy machine does not make it flaky.
func TestAuthenticateTimingHidesUnknownEmails(t *testing.T) {
	ctx := context.Background()
	s := newSQLiteStore(t)
	if _, err := s.CreateUserWith(ctx, models.NewUser{Email: "known@example.com", Password: "right password"}); err != nil {
		t.Fatal(err)
	}
	fastest := func(pool, email string) time.Duration {
		best := time.Duration(1<<63 - 1)
		for range 3 {
			start := time.Now()
			_, err := s.Authenticate(ctx, pool, email, "wrong password")
			if !errors.Is(err, models.ErrInvalidCredentials) {
				t.Fatalf("Authenticate(%q): %v", email, err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	known := fastest("", "known@example.com")
	if unknown := fastest("", "unknown@example.com"); unknown < known/4 {
		t.Errorf("unknown email took %v, wrong password %v: the difference reveals which accounts exist", unknown, known)
	}
	if unknownPool := fastest("no-such-pool", "known@example.com"); unknownPool < known/4 {
		t.Errorf("unknown pool took %v, wrong password %v: the difference reveals which pools exist", unknownPool, known)
	}
}
