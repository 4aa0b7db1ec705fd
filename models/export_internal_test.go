package models

import "golang.org/x/crypto/argon2"

func argonKey(password, salt string, t, m uint32, p uint8, n uint32) []byte {
	return argon2.IDKey([]byte(password), []byte(salt), t, m, p, n)
}
