package dpop_test

import (
	"encoding/base64"
	"errors"

	"github.com/latchkey/latchkey/dpop"
)

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func asError(err error, target **dpop.Error) bool { return errors.As(err, target) }
