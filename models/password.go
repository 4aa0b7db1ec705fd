package models

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// dummyPasswordHash is verified against when Authenticate finds no user, so an unknown email costs the
// same argon2id work as a known one. Its parameters must be the ones HashPassword uses (a test checks).
const dummyPasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$o1dGzItEuk92M0rMQHaIOg$wjTTn5vySm8PyD4pzFZtNSM7SF4hz6OV+3AdHkJvYYc"

// Password hashing: argon2id with OWASP's minimum parameters (m=19 MiB, t=2, p=1).
const (
	argonMemory  = 19456 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32

	// Bounds on parameters read back from a stored hash, so a corrupt row cannot exhaust memory or CPU.
	argonMaxMemory  = 1 << 20 // KiB = 1 GiB
	argonMaxTime    = 100
	argonMaxThreads = 255
	argonMaxKeyLen  = 1024
)

var b64 = base64.RawStdEncoding

// hashMemory and hashTime are the argon2id cost of new hashes: argonMemory and argonTime, unless a test suite that
// hashes thousands of passwords in process lowered them (CheapPasswordHashesForTests). Verification always
// follows the parameters stored in the hash.
var hashMemory, hashTime uint32 = argonMemory, argonTime

// CheapPasswordHashesForTests makes new password hashes cheap (argon2id m=64 KiB, t=1) for the rest of the
// process. Only test binaries call it (a layout test in this package checks that no other file does): the
// end-to-end suite runs its servers in process under the race detector, where OWASP-strength hashes for every
// sign-in dominated its time. Never call it from a server.
func CheapPasswordHashesForTests() { hashMemory, hashTime = 64, 1 }

// passwordSlots bounds how many argon2id computations run at once. Each holds 19 MiB for its whole run, and the
// work is CPU-bound anyway, so more in parallel than there are cores only multiplies memory: without this bound 64
// concurrent sign-ins took the server to 1.9 GiB. Waiting callers queue; throughput is unchanged.
var passwordSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0))) // GOMAXPROCS follows a container's CPU quota

// PasswordHashingBytes is the most memory the password hashes in flight hold at once (every slot busy hashing
// with the default parameters).
func PasswordHashingBytes() int64 { return int64(cap(passwordSlots)) * argonMemory * 1024 }

func boundedIDKey(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	passwordSlots <- struct{}{}
	defer func() { <-passwordSlots }()
	return argon2.IDKey(password, salt, time, memory, threads, keyLen)
}

// HashPassword returns the PHC string "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" of password, with a
// random 16-byte salt.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := boundedIDKey([]byte(password), salt, hashTime, hashMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, hashMemory, hashTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword checks password against a PHC argon2id hash, using the parameters in the hash. A wrong
// password is (false, nil); a malformed hash is an error.
func VerifyPassword(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errors.New("verify password: not a PHC argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || fmt.Sprintf("v=%d", version) != parts[2] {
		return false, errors.New("verify password: malformed version")
	}
	if version != argon2.Version {
		return false, fmt.Errorf("verify password: unsupported argon2 version %d", version)
	}
	var m, t, p uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil ||
		fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p) != parts[3] {
		return false, errors.New("verify password: malformed parameters")
	}
	if m < 8*p || m > argonMaxMemory || t < 1 || t > argonMaxTime || p < 1 || p > argonMaxThreads {
		return false, errors.New("verify password: parameters out of range")
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, errors.New("verify password: malformed salt")
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > argonMaxKeyLen {
		return false, errors.New("verify password: malformed hash")
	}
	got := boundedIDKey([]byte(password), salt, t, m, uint8(p), uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
