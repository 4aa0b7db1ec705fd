package mfa

import (
	"testing"
	"time"
)

// RFC 6238 Appendix B, SHA-1 seed, truncated to 6 digits (the last six of the 8-digit vectors).
func TestCodeRFC6238Vectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		want string
	}{{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"}, {1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"}} {
		if got := Code(secret, Step(time.Unix(tc.unix, 0))); got != tc.want {
			t.Errorf("T=%d: code %s, want %s", tc.unix, got, tc.want)
		}
	}
}

func TestMatchSkew(t *testing.T) {
	secret := NewSecret()
	now := time.Unix(1_700_000_000, 0)
	cur := Step(now)
	for d := int64(-2); d <= 2; d++ {
		step, ok := Match(secret, Code(secret, cur+d), now)
		if want := d >= -1 && d <= 1; ok != want || (ok && step != cur+d) {
			t.Errorf("skew %d: ok=%v step=%d", d, ok, step)
		}
	}
	if _, ok := Match(secret, "12345", now); ok {
		t.Error("a 5-digit code matched")
	}
}

func TestSealerBindsFactor(t *testing.T) {
	s := NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	sealed, err := s.Seal("fac_1", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Open("fac_1", sealed); err != nil || string(got) != "secret" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := s.Open("fac_2", sealed); err == nil {
		t.Fatal("a sealed secret opened for another factor")
	}
}

func BenchmarkTOTPVerify(b *testing.B) {
	secret := NewSecret()
	now := time.Now()
	code := Code(secret, Step(now))
	for b.Loop() {
		if _, ok := Match(secret, code, now); !ok {
			b.Fatal("no match")
		}
	}
}
