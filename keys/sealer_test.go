package keys

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef")
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
)

func TestSealer(t *testing.T) {
	s, err := NewSealer(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewSealer(otherSecret)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte(`{"kty":"EC","d":"secret"}`)
	aad := []byte("kid-1")
	sealed, err := s.Seal(plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}

	tests := []struct {
		name    string
		sealer  *Sealer
		sealed  []byte
		aad     []byte
		wantErr bool
	}{
		{"round trip", s, sealed, aad, false},
		{"tampered nonce fails", s, flip(0), aad, true},
		{"tampered ciphertext fails", s, flip(12), aad, true},
		{"tampered tag fails", s, flip(len(sealed) - 1), aad, true},
		{"truncated fails", s, sealed[:len(sealed)-1], aad, true},
		{"shorter than nonce and tag fails", s, sealed[:20], aad, true},
		{"empty fails", s, nil, aad, true},
		{"wrong aad (key sealed for another kid) fails", s, sealed, []byte("kid-2"), true},
		{"wrong secret fails", other, sealed, aad, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.sealer.Open(tt.sealed, tt.aad)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Open succeeded, want error")
				}
				if got != nil {
					t.Fatalf("Open returned plaintext with its error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("Open = %q, want %q", got, plain)
			}
		})
	}

	t.Run("nonce is random: sealing twice differs", func(t *testing.T) {
		again, err := s.Seal(plain, aad)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(again, sealed) {
			t.Fatal("two seals of the same plaintext are identical")
		}
	})
	t.Run("ciphertext does not contain the plaintext", func(t *testing.T) {
		if bytes.Contains(sealed, []byte("secret")) {
			t.Fatal("sealed data contains plaintext")
		}
	})
}

func TestNewSealerRejectsShortSecret(t *testing.T) {
	if _, err := NewSealer(testSecret[:MinSecretLen-1]); err == nil {
		t.Fatal("NewSealer accepted a secret shorter than MinSecretLen")
	}
}

func TestDerive(t *testing.T) {
	// RFC 5869 with an empty salt (HashLen zero bytes) and one output block, written out independently.
	rfc5869 := func(secret []byte, info string) []byte {
		extract := hmac.New(sha256.New, make([]byte, sha256.Size))
		extract.Write(secret)
		expand := hmac.New(sha256.New, extract.Sum(nil))
		expand.Write([]byte(info))
		expand.Write([]byte{1})
		return expand.Sum(nil)
	}
	tests := []struct {
		name      string
		a, b      func() []byte
		wantEqual bool
	}{
		{"deterministic",
			func() []byte { return Derive(testSecret, "key-encryption") },
			func() []byte { return Derive(testSecret, "key-encryption") }, true},
		{"is HKDF-SHA256 with info latchkey/<purpose>",
			func() []byte { return Derive(testSecret, "key-encryption") },
			func() []byte { return rfc5869(testSecret, "latchkey/key-encryption") }, true},
		{"purposes are separated",
			func() []byte { return Derive(testSecret, "key-encryption") },
			func() []byte { return Derive(testSecret, "token-hmac") }, false},
		{"purpose is not a prefix match",
			func() []byte { return Derive(testSecret, "a") },
			func() []byte { return Derive(testSecret, "ab") }, false},
		{"secrets are separated",
			func() []byte { return Derive(testSecret, "key-encryption") },
			func() []byte { return Derive(otherSecret, "key-encryption") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.a(), tt.b()
			if len(a) != 32 || len(b) != 32 {
				t.Fatalf("lengths %d, %d; want 32", len(a), len(b))
			}
			if got := bytes.Equal(a, b); got != tt.wantEqual {
				t.Fatalf("equal = %v, want %v (%x vs %x)", got, tt.wantEqual, a, b)
			}
		})
	}
}
