package jsonapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Decode reads a JSON object body strictly into dst: right content type, one object, no unknown fields, bounded
// size (the router's body limit). What is wrong with it comes back as an *Error for Write.
func Decode(r *http.Request, dst any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return New(http.StatusUnsupportedMediaType, InvalidRequest, "Send a JSON body with Content-Type: application/json.")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return New(http.StatusRequestEntityTooLarge, InvalidRequest, "Request body too large.")
		case errors.Is(err, io.EOF):
			return BadRequest("The request body is empty.")
		default:
			return BadRequest("Malformed JSON: " + jsonErrorText(err))
		}
	}
	if dec.More() {
		return BadRequest("Send exactly one JSON object.")
	}
	return nil
}

// jsonErrorText keeps decoder messages short and free of the input itself.
func jsonErrorText(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d.", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s.", typ.Field, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ") + "."
	}
	return "could not decode the body."
}
