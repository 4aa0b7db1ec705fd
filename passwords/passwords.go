// Package passwords holds the password policy users' new passwords must meet: a minimum length and a list of
// passwords so common that attackers try them first (NIST SP 800-63B §5.1.1.2).
package passwords

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

//go:embed common.txt
var builtinCommon string

// MaxLength bounds what we hash, in bytes: argon2id on megabytes of input is a denial of service, not a password.
// It is the one definition of the limit: the store (models), the policy and every form and API bound passwords
// by it.
const MaxLength = 1024

// Policy is checked on sign-up and password change.
type Policy struct {
	MinLength int
	common    map[string]bool
}

// ErrWeak is wrapped by every policy failure; the message says what to fix.
var ErrWeak = errors.New("password does not meet the policy")

// NewPolicy builds a policy from a minimum length and an optional file of refused passwords (one per line); with
// no file the built-in list is used.
func NewPolicy(minLength int, blocklistFile string) (*Policy, error) {
	if minLength < 8 {
		return nil, fmt.Errorf("minimum password length must be at least 8, got %d", minLength)
	}
	list := builtinCommon
	if blocklistFile != "" {
		b, err := os.ReadFile(blocklistFile)
		if err != nil {
			return nil, fmt.Errorf("read password blocklist: %w", err)
		}
		list = string(b)
	}
	p := &Policy{MinLength: minLength, common: map[string]bool{}}
	for _, line := range strings.Split(list, "\n") {
		if w := strings.TrimSpace(line); w != "" {
			p.common[strings.ToLower(w)] = true
		}
	}
	return p, nil
}

// Check returns nil when password may be used by the account with this email.
func (p *Policy) Check(password, email string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < p.MinLength:
		return fmt.Errorf("%w: use at least %d characters", ErrWeak, p.MinLength)
	case len(password) > MaxLength:
		return fmt.Errorf("%w: use at most %d bytes", ErrWeak, MaxLength)
	case p.common[strings.ToLower(password)]:
		return fmt.Errorf("%w: this password is too common", ErrWeak)
	case email != "" && strings.EqualFold(password, email),
		email != "" && strings.EqualFold(password, strings.SplitN(email, "@", 2)[0]):
		return fmt.Errorf("%w: do not use your email address as your password", ErrWeak)
	}
	return nil
}
