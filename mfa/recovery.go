package mfa

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// RecoveryCodeCount is how many recovery codes a user gets at once.
const RecoveryCodeCount = 10

// recoveryAlphabet has no 0/O or 1/I/L to misread from paper.
const recoveryAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// NewRecoveryCodes returns RecoveryCodeCount new codes, each "xxxxx-xxxxx" (10 of 31 symbols: 49 bits, and every
// guess is throttled).
func NewRecoveryCodes() []string {
	codes := make([]string, RecoveryCodeCount)
	for i := range codes {
		var b [10]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Sprintf("mfa: read random: %v", err))
		}
		var sb strings.Builder
		for j, c := range b {
			if j == 5 {
				sb.WriteByte('-')
			}
			sb.WriteByte(recoveryAlphabet[int(c)%len(recoveryAlphabet)])
		}
		codes[i] = sb.String()
	}
	return codes
}

// HashRecoveryCode is the stored form of a recovery code of user userID: SHA-256 over the user and the code as
// typed, less case, spaces and dashes. The codes are random and long, so no slow hash is needed; the user id
// keeps two users' equal codes apart.
func HashRecoveryCode(userID, code string) string {
	sum := sha256.Sum256([]byte("latchkey/mfa/recovery/v1\x00" + userID + "\x00" + strings.ToLower(NormalizeCode(code))))
	return hex.EncodeToString(sum[:])
}
