package provider

import (
	"context"
	"errors"
	"strings"
	"testing"
)

const (
	testSystemSecret  = "provider-test-system-secret-0123456789abcdef"
	otherSystemSecret = "another-system-secret-of-a-different-node-xyz"
)

func TestSecretHasherCompare(t *testing.T) {
	ctx := context.Background()
	h := NewSecretHasher([]byte(testSystemSecret))
	secret := GenerateClientSecret()
	stored := []byte(h.HashSecret(secret))

	for _, tc := range []struct {
		name   string
		hashed []byte
		data   []byte
		ok     bool
	}{
		{"right secret is accepted", stored, []byte(secret), true},
		{"wrong secret is refused", stored, []byte(GenerateClientSecret()), false},
		{"secret differing in one character is refused", stored, []byte(secret[:len(secret)-1] + flipLast(secret)), false},
		{"secret with a trailing newline is refused", stored, []byte(secret + "\n"), false},
		{"empty secret is refused", stored, []byte{}, false},
		{"nil secret is refused", stored, nil, false},
		{"hash with another prefix is refused", []byte("bcrypt$" + strings.TrimPrefix(string(stored), secretHashPrefix)), []byte(secret), false},
		{"bcrypt hash is refused", []byte("$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"), []byte(secret), false},
		{"hash without prefix is refused", []byte(strings.TrimPrefix(string(stored), secretHashPrefix)), []byte(secret), false},
		{"garbled base64 is refused", []byte(secretHashPrefix + "!!!not*base64!!!"), []byte(secret), false},
		{"padded base64 is refused", []byte(string(stored) + "="), []byte(secret), false},
		{"truncated hash is refused", stored[:len(stored)-4], []byte(secret), false},
		{"empty hash is refused", []byte{}, []byte(secret), false},
		{"prefix alone is refused", []byte(secretHashPrefix), []byte(secret), false},
		{"prefix alone does not match an empty secret", []byte(secretHashPrefix), []byte{}, false},
		{"hash made under another system secret is refused", []byte(NewSecretHasher([]byte(otherSystemSecret)).HashSecret(secret)), []byte(secret), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := h.Compare(ctx, tc.hashed, tc.data)
			if tc.ok && err != nil {
				t.Fatalf("Compare = %v, want nil", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("Compare = nil, want an error")
			}
		})
	}
}

func flipLast(s string) string {
	if s[len(s)-1] == 'A' {
		return "B"
	}
	return "A"
}

func TestSecretHasherHashes(t *testing.T) {
	ctx := context.Background()
	a := NewSecretHasher([]byte(testSystemSecret))
	b := NewSecretHasher([]byte(otherSystemSecret))
	a2 := NewSecretHasher([]byte(testSystemSecret))
	const secret = "the-same-client-secret-on-both-nodes-0123"

	for _, tc := range []struct {
		name string
		x, y string
		same bool
	}{
		{"same system secret gives the same hash", a.HashSecret(secret), a2.HashSecret(secret), true},
		{"different system secrets give different hashes", a.HashSecret(secret), b.HashSecret(secret), false},
		{"different client secrets give different hashes", a.HashSecret(secret), a.HashSecret(secret + "x"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.x == tc.y) != tc.same {
				t.Errorf("hashes %q and %q: equal = %v, want %v", tc.x, tc.y, tc.x == tc.y, tc.same)
			}
		})
	}

	t.Run("hash is prefixed and never contains the secret", func(t *testing.T) {
		got := a.HashSecret(secret)
		if !strings.HasPrefix(got, secretHashPrefix) || strings.Contains(got, secret) {
			t.Errorf("HashSecret = %q", got)
		}
	})
	t.Run("fosite Hash agrees with HashSecret and Compare", func(t *testing.T) {
		h, err := a.Hash(ctx, []byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		if string(h) != a.HashSecret(secret) {
			t.Errorf("Hash = %q, HashSecret = %q", h, a.HashSecret(secret))
		}
		if err := a.Compare(ctx, h, []byte(secret)); err != nil {
			t.Errorf("Compare of Hash output: %v", err)
		}
	})
	t.Run("hasher is safe for concurrent use", func(t *testing.T) {
		want := a.HashSecret(secret)
		errs := make(chan error, 16)
		for range 16 {
			go func() {
				for range 200 {
					if a.HashSecret(secret) != want {
						errs <- errors.New("concurrent HashSecret gave a different hash")
						return
					}
				}
				errs <- nil
			}()
		}
		for range 16 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestGenerateClientSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := GenerateClientSecret()
		if len(s) < 43 {
			t.Fatalf("generated secret %q has %d characters, want >= 43 (256 bits)", s, len(s))
		}
		if strings.ContainsAny(s, "+/= ") {
			t.Fatalf("generated secret %q is not base64url without padding", s)
		}
		if err := CheckClientSecret(s); err != nil {
			t.Fatalf("CheckClientSecret refuses a generated secret: %v", err)
		}
		if seen[s] {
			t.Fatalf("secret %q generated twice", s)
		}
		seen[s] = true
	}
}

func TestCheckClientSecret(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret string
		ok     bool
	}{
		{"empty is refused", "", false},
		{"31 characters are refused", strings.Repeat("x", 31), false},
		{"32 characters are accepted", strings.Repeat("x", 32), true},
		{"long secret is accepted", strings.Repeat("x", 200), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckClientSecret(tc.secret)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckClientSecret(%d chars) = %v, want ok=%v", len(tc.secret), err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrSecretTooShort) {
				t.Errorf("error = %v, want ErrSecretTooShort", err)
			}
		})
	}
}

func BenchmarkClientSecretCompare(b *testing.B) {
	ctx := context.Background()
	h := NewSecretHasher([]byte(testSystemSecret))
	secret := GenerateClientSecret()
	stored := []byte(h.HashSecret(secret))
	data := []byte(secret)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := h.Compare(ctx, stored, data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
