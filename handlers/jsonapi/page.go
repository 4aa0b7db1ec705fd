package jsonapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/models"
)

// What a JSON API's lists and single resources share (the admin API's): opaque keyset cursors with a bounded
// limit, and strong ETags checked by If-Match on writes.

// DefaultLimit is a page's size when ?limit= is not given; at most models.MaxPageSize.
const DefaultLimit = 50

// Codes of conditional writes and taken names.
const (
	// PreconditionFailed: If-Match named a representation that is no longer the current one (412).
	PreconditionFailed Code = "precondition_failed"
	// Conflict: the id or name is taken (409).
	Conflict Code = "conflict"
)

// Page is a list request's ?limit= and ?cursor=.
type Page struct {
	Limit int
	After *models.Cursor // nil: from the start
}

// cursorJSON is a cursor's content before encoding: the last row's created_at (Unix microseconds) and id.
type cursorJSON struct {
	T  int64  `json:"t"`
	ID string `json:"id"`
}

// ReadPage reads ?limit= (1 to models.MaxPageSize, default DefaultLimit) and ?cursor=; a bad one is a 400 naming it.
func ReadPage(r *http.Request) (Page, error) {
	q := r.URL.Query()
	p := Page{Limit: DefaultLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > models.MaxPageSize {
			return p, Invalid("limit", fmt.Sprintf("limit must be a whole number from 1 to %d.", models.MaxPageSize))
		}
		p.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		var c cursorJSON
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err == nil {
			err = json.Unmarshal(raw, &c)
		}
		if err != nil || c.ID == "" {
			return p, Invalid("cursor", "cursor is not one this API gave out; start again without it.")
		}
		p.After = &models.Cursor{CreatedAt: time.UnixMicro(c.T).UTC(), ID: c.ID}
	}
	return p, nil
}

// NextPage returns the rows of a page fetched with limit+1 rows and the cursor of the page after it (nil at the
// end), given each row's (created_at, id).
func NextPage[T any](rows []T, limit int, key func(*T) (time.Time, string)) ([]T, *string) {
	if len(rows) <= limit {
		return rows, nil
	}
	rows = rows[:limit]
	t, id := key(&rows[limit-1])
	raw, _ := json.Marshal(cursorJSON{T: t.UnixMicro(), ID: id}) // two plain fields always marshal
	c := base64.RawURLEncoding.EncodeToString(raw)
	return rows, &c
}

// BoolParam reads an optional true/false query parameter.
func BoolParam(r *http.Request, name string) (*bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, Invalid(name, name+" must be true or false.")
	}
	return &b, nil
}

// ETag is the strong ETag of a representation: a hash of its JSON, so any change to what a GET shows changes it.
func ETag(v any) string {
	raw, _ := json.Marshal(v) // representations are plain data
	sum := sha256.Sum256(raw)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
}

// IfMatch checks a write's If-Match against the current representation's ETag: true when the header is there
// (the caller then makes its write conditional on the row it read), false without it (the write is
// unconditional: last write wins). A header naming another representation is 412.
func IfMatch(r *http.Request, current string) (bool, error) {
	h := r.Header.Get("If-Match")
	if h == "" {
		return false, nil
	}
	for _, tag := range strings.Split(h, ",") {
		if tag = strings.TrimSpace(tag); tag == "*" || tag == current {
			return true, nil
		}
	}
	return false, ErrPreconditionFailed()
}

// ErrPreconditionFailed is the 412 of a conditional write whose resource changed since it was read.
func ErrPreconditionFailed() *Error {
	return New(http.StatusPreconditionFailed, PreconditionFailed, "The resource changed since it was read (If-Match); read it again and retry.")
}

// RespondTagged answers v with its ETag.
func RespondTagged(w http.ResponseWriter, status int, v any) {
	w.Header().Set("ETag", ETag(v))
	Respond(w, status, v)
}

// NoContent answers 204.
func NoContent(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
