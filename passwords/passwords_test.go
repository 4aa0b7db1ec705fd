package passwords

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestPolicy(t *testing.T) {
	p, err := NewPolicy(10, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, password, email string
		ok                    bool
	}{
		{"long random passphrase", "violet-tractor-47-umbrella", "ada@example.com", true},
		{"too short", "abc", "", false},
		{"one below the minimum", "abcdefgh9", "", false},
		{"exactly the minimum", "abcdefgh9x", "", true},
		{"common password", "password123", "", false},
		{"common password, different case", "PassWord123", "", false},
		{"the email itself", "ada.lovelace@example.com", "ada.lovelace@example.com", false},
		{"the email's local part", "ada.lovelace", "ada.lovelace@example.com", false},
		{"multibyte characters count as characters", "ééééééééééé", "", true},
		{"absurdly long", string(make([]byte, MaxLength+1)), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Check(tc.password, tc.email)
			if (err == nil) != tc.ok {
				t.Fatalf("Check(%q) = %v, want ok=%v", tc.password, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrWeak) {
				t.Errorf("error %v does not wrap ErrWeak", err)
			}
		})
	}
}

func TestPolicyFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(path, []byte("our-company-2026\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(8, path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Check("Our-Company-2026", "") == nil {
		t.Error("password from the configured list was accepted")
	}
	if p.Check("password123", "") != nil {
		t.Error("a configured list replaces the built-in one")
	}
	if _, err := NewPolicy(6, ""); err == nil {
		t.Error("minimum below 8 accepted")
	}
	if _, err := NewPolicy(8, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing list file accepted")
	}
}
