package models_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/models/storetest"
)

// Two nodes on one database: reservations through two Store instances hold the limit together.
func TestThrottleAcrossStores(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		u := "sqlite://" + filepath.Join(t.TempDir(), "latchkey.db")
		storetest.ThrottleConcurrent(t, openMigrated(t, u), openMigrated(t, u))
	})
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
		if base == "" {
			t.Skip("LATCHKEY_TEST_POSTGRES_URL not set")
		}
		u := postgresSchemaURL(t, base)
		storetest.ThrottleConcurrent(t, openMigrated(t, u), openMigrated(t, u))
	})
}

func openMigrated(t testing.TB, u string) *models.Store {
	t.Helper()
	s, err := models.Open(context.Background(), u, models.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// postgresSchemaURL creates a schema dropped when the test ends and returns base with its search_path.
func postgresSchemaURL(t testing.TB, base string) string {
	t.Helper()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "lk_test_" + hex.EncodeToString(b)
	if err := exec(context.Background(), admin, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		_ = exec(context.Background(), admin, "DROP SCHEMA "+schema+" CASCADE")
		_ = admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// BenchmarkThrottleReserve is the reservation every sign-in makes before hashing the password: the IP key and
// a fresh account key (it proceeds, creating the account row), and one refused by a blocked IP (it stops there).
func BenchmarkThrottleReserve(b *testing.B) {
	p := models.ThrottlePolicy{Free: 5, Base: time.Second, Max: time.Hour, Window: time.Hour}
	benchBackends(b, func(b *testing.B, s *models.Store) {
		ctx := context.Background()
		now := time.Now()
		b.Run("proceeds", func(b *testing.B) {
			big := models.ThrottlePolicy{Free: 1 << 30, Base: time.Second, Max: time.Hour, Window: time.Hour}
			ip := models.ThrottleKey{Key: "ip:203.0.113.7", Policy: big}
			for i := 0; b.Loop(); i++ {
				acct := models.ThrottleKey{Key: fmt.Sprintf("acct:default:user%d@example.com", i), Policy: p}
				if d, _, err := s.ThrottleReserve(ctx, now, ip, acct); err != nil || d != 0 {
					b.Fatalf("reserve: %v, %v", d, err)
				}
			}
		})
		b.Run("refused", func(b *testing.B) {
			ip := models.ThrottleKey{Key: "ip:198.51.100.1", Policy: p}
			for range p.Free {
				if _, _, err := s.ThrottleReserve(ctx, now, ip); err != nil {
					b.Fatal(err)
				}
			}
			acct := models.ThrottleKey{Key: "acct:default:ada@example.com", Policy: p}
			for b.Loop() {
				if d, _, err := s.ThrottleReserve(ctx, now, ip, acct); err != nil || d == 0 {
					b.Fatalf("reserve: %v, %v", d, err)
				}
			}
		})
	})
}
