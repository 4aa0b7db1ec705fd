package admin

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/models"
)

// What every list and single resource of the admin API shares: opaque keyset cursors with a bounded limit, and
// strong ETags checked by If-Match on writes.

// Page sizes: ?limit= defaults to DefaultLimit and may not exceed models.MaxPageSize.
const DefaultLimit = 50

// Codes of the admin API's own refusals.
const (
	// PreconditionFailed: If-Match named a representation that is no longer the current one (412).
	PreconditionFailed jsonapi.Code = "precondition_failed"
	// Conflict: the id or name is taken (409).
	Conflict jsonapi.Code = "conflict"
)

// page is a list request's ?limit= and ?cursor=.
type page struct {
	limit int
	after *models.Cursor
}

// cursorJSON is a cursor's content before encoding: the last row's created_at (Unix microseconds) and id.
type cursorJSON struct {
	T  int64  `json:"t"`
	ID string `json:"id"`
}

func readPage(r *http.Request) (page, error) {
	q := r.URL.Query()
	p := page{limit: DefaultLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > models.MaxPageSize {
			return p, jsonapi.Invalid("limit", fmt.Sprintf("limit must be a whole number from 1 to %d.", models.MaxPageSize))
		}
		p.limit = n
	}
	if v := q.Get("cursor"); v != "" {
		var c cursorJSON
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err == nil {
			err = json.Unmarshal(raw, &c)
		}
		if err != nil || c.ID == "" {
			return p, jsonapi.Invalid("cursor", "cursor is not one this API gave out; start again without it.")
		}
		p.after = &models.Cursor{CreatedAt: time.UnixMicro(c.T).UTC(), ID: c.ID}
	}
	return p, nil
}

// next returns the rows of a page fetched with limit+1 and the cursor of the page after it (nil at the end),
// given each row's key.
func next[T any](rows []T, limit int, key func(*T) (time.Time, string)) ([]T, *string) {
	if len(rows) <= limit {
		return rows, nil
	}
	rows = rows[:limit]
	t, id := key(&rows[limit-1])
	raw, _ := json.Marshal(cursorJSON{T: t.UnixMicro(), ID: id}) // two plain fields always marshal
	c := base64.RawURLEncoding.EncodeToString(raw)
	return rows, &c
}

// boolParam reads an optional true/false query parameter.
func boolParam(r *http.Request, name string) (*bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, jsonapi.Invalid(name, name+" must be true or false.")
	}
	return &b, nil
}

// etagOf is the strong ETag of a representation: a hash of its JSON, so any change to what a GET shows changes it.
func etagOf(v any) string {
	raw, _ := json.Marshal(v) // representations are plain data
	sum := sha256.Sum256(raw)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
}

// ifMatch checks a write's If-Match against the current representation's ETag: true when the header is there
// (the caller then makes its write conditional on the row it read), false without it (the write is
// unconditional: last write wins). A header naming another representation is 412.
func ifMatch(r *http.Request, current string) (bool, error) {
	h := r.Header.Get("If-Match")
	if h == "" {
		return false, nil
	}
	for _, tag := range strings.Split(h, ",") {
		if tag = strings.TrimSpace(tag); tag == "*" || tag == current {
			return true, nil
		}
	}
	return false, preconditionFailed()
}

func preconditionFailed() error {
	return jsonapi.New(http.StatusPreconditionFailed, PreconditionFailed, "The resource changed since it was read (If-Match); read it again and retry.")
}

// respondTagged answers v with its ETag.
func respondTagged(w http.ResponseWriter, status int, v any) {
	w.Header().Set("ETag", etagOf(v))
	jsonapi.Respond(w, status, v)
}

// writeError maps what a store write said: a precondition that no longer holds is 412, a taken id 409, a
// refused field 400 naming it; anything else goes to storeError.
func writeError(what string, err error, notFound string) error {
	var ve models.ValidationError
	switch {
	case errors.Is(err, models.ErrPreconditionFailed):
		return preconditionFailed()
	case errors.Is(err, models.ErrConflict):
		return jsonapi.New(http.StatusConflict, Conflict, "That id is already taken.")
	case errors.As(err, &ve) && len(ve) > 0:
		parts := make([]string, len(ve))
		for i, f := range ve {
			parts[i] = clientField(f.Field) + ": " + f.Problem
		}
		return jsonapi.Invalid(clientField(ve[0].Field), strings.Join(parts, "; ")+".")
	case errors.Is(err, models.ErrNotFound):
		return jsonapi.New(http.StatusNotFound, jsonapi.NotFound, notFound)
	}
	return storeError(what, err)
}

// noContent answers 204.
func noContent(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
