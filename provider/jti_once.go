package provider

import (
	"context"
	"errors"
	"time"

	"github.com/ory/fosite"
)

// jtiOnce is the store fosite's client authentication sees. fosite asks ClientAssertionJWTValid whether an
// assertion's jti is known, then records it with SetClientAssertionJWT. The record alone decides, atomically
// across nodes (models.Store.SetClientAssertionJWT refuses a live jti in one statement), so the question is a
// database round trip that decides nothing: a seventh of a private_key_jwt request's server CPU. fosite's
// Store is used for clients, the jti and pushed requests (PARStorage, kept by embedding Storage); the grant
// handlers were given the store itself at composition.
type jtiOnce struct{ Storage }

func (jtiOnce) ClientAssertionJWTValid(context.Context, string) error { return nil }

func (s jtiOnce) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	err := s.Storage.SetClientAssertionJWT(ctx, jti, exp)
	if errors.Is(err, fosite.ErrJTIKnown) {
		return fosite.ErrJTIKnown.WithWrap(err).WithHint("Claim 'jti' from 'client_assertion' MUST only be used once.")
	}
	return err
}

// recordJTIOnce makes f's client authentication record each jti in one statement.
func recordJTIOnce(f fosite.OAuth2Provider, store Storage) {
	if fo, ok := f.(*fosite.Fosite); ok {
		fo.Store = jtiOnce{store}
	}
}
