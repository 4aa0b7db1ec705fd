package models

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHashPasswordFormat(t *testing.T) {
	h, err := HashPassword("hunter2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || len(strings.Split(h, "$")) != 6 {
		t.Errorf("hash %q is not the expected PHC string", h)
	}
	h2, _ := HashPassword("hunter2")
	if h == h2 {
		t.Error("two hashes of one password are equal: salt not random")
	}
}

func TestVerifyPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	// Parameters are read from the hash: a hash made with other parameters still verifies.
	cheap := "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$" // salt "saltsaltsalt"
	tests := []struct {
		name     string
		encoded  string
		password string
		want     bool
		wantErr  bool
	}{
		{"right password", h, "correct horse", true, false},
		{"wrong password", h, "correct horsf", false, false},
		{"empty password", h, "", false, false},
		{"other parameters", cheap + b64.EncodeToString(argonKey("pw", "saltsaltsalt", 1, 64, 1, 32)), "pw", true, false},
		{"not phc", "plain", "pw", false, true},
		{"bcrypt", "$2a$12$abcdefghijklmnopqrstuv", "pw", false, true},
		{"argon2i", strings.Replace(h, "argon2id", "argon2i", 1), "correct horse", false, true},
		{"bad version", strings.Replace(h, "v=19", "v=16", 1), "correct horse", false, true},
		{"bad params", strings.Replace(h, "m=19456,t=2,p=1", "m=x,t=2,p=1", 1), "correct horse", false, true},
		{"huge memory", strings.Replace(h, "m=19456", "m=99999999", 1), "correct horse", false, true},
		{"zero time", strings.Replace(h, "t=2", "t=0", 1), "correct horse", false, true},
		{"bad salt", "$argon2id$v=19$m=19456,t=2,p=1$!!!$" + strings.Split(h, "$")[5], "correct horse", false, true},
		{"truncated", h[:strings.LastIndex(h, "$")], "correct horse", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VerifyPassword(tc.encoded, tc.password)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("VerifyPassword = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestDummyPasswordHashMatchesParameters(t *testing.T) {
	h, err := HashPassword("x")
	if err != nil {
		t.Fatal(err)
	}
	params := func(s string) string { p := strings.Split(s, "$"); return strings.Join(p[:4], "$") }
	if params(dummyPasswordHash) != params(h) {
		t.Errorf("dummy hash parameters %q differ from HashPassword's %q: unknown emails would verify faster or slower",
			params(dummyPasswordHash), params(h))
	}
	parts := strings.Split(dummyPasswordHash, "$")
	salt, _ := b64.DecodeString(parts[4])
	key, _ := b64.DecodeString(parts[5])
	if len(salt) != argonSaltLen || len(key) != argonKeyLen {
		t.Errorf("dummy hash salt/key lengths %d/%d, want %d/%d", len(salt), len(key), argonSaltLen, argonKeyLen)
	}
	if ok, err := VerifyPassword(dummyPasswordHash, "password"); ok || err != nil {
		t.Errorf("VerifyPassword(dummy) = %v, %v; want false, nil", ok, err)
	}
}

// Only test files make password hashes cheap: no server, command or library code of ours calls
// CheapPasswordHashesForTests.
func TestCheapPasswordHashesOnlyInTests(t *testing.T) {
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "CheapPasswordHashesForTests()") && !strings.HasSuffix(path, filepath.Join("models", "password.go")) {
			t.Errorf("%s calls CheapPasswordHashesForTests", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
