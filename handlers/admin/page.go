package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/models"
)

// writeError maps what a store write said: a precondition that no longer holds is 412, a taken id 409, a
// refused field 400 naming it; anything else goes to storeError.
func writeError(what string, err error, notFound string) error {
	var ve models.ValidationError
	switch {
	case errors.Is(err, models.ErrPreconditionFailed):
		return jsonapi.ErrPreconditionFailed()
	case errors.Is(err, models.ErrConflict):
		return jsonapi.New(http.StatusConflict, jsonapi.Conflict, "That id is already taken.")
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
