package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ErrStaleClient is returned by a statement that was to confirm a cached client row and found it changed (secret
// rotated) or gone (client deleted). Nothing was written; the request must be answered again from fresh rows.
var ErrStaleClient = errors.New("client changed since it was cached")

// ClientCheck lets one request authenticate its client against the client cache instead of reading the row,
// without ever trusting a stale secret: the first token statement the request runs (the insert of a new token, or
// the lookup of the token presented) carries the condition "this client row still exists with the secret hash we
// authenticated against", so confirming the cache costs no extra round trip. A request whose outcome was not
// confirmed that way is answered again without the cache (see Unconfirmed).
//
// Only client authentication on the token, introspection and revocation endpoints uses it; everything else
// reads client rows fresh.
type ClientCheck struct {
	store   *Store
	id      string
	creds   clientCredentials // what the cached row authenticated with
	used    bool              // GetClient answered from the cache
	pending bool              // ... and no statement has confirmed that row yet
	stale   bool              // a statement found the row changed or gone
}

type clientCheckKey struct{}

// WithClientCache returns a context in which GetClient may answer from the client cache, and the check that
// records whether the database confirmed it.
func (s *Store) WithClientCache(ctx context.Context) (context.Context, *ClientCheck) {
	c := &ClientCheck{store: s}
	return context.WithValue(ctx, clientCheckKey{}, c), c
}

// Used reports whether GetClient answered from the cache in this request.
func (c *ClientCheck) Used() bool { return c.used }

// Unconfirmed reports whether the request relied on a cached client row that the database has not confirmed,
// or found stale. Such an outcome must not be sent: answer the request again without the cache.
func (c *ClientCheck) Unconfirmed() bool { return c.pending || c.stale }

// Confirm checks the cached row against the database if no statement has yet; ErrStaleClient if it changed.
func (c *ClientCheck) Confirm(ctx context.Context) error {
	if c.stale {
		return ErrStaleClient
	}
	if !c.pending {
		return nil
	}
	return c.confirm(ctx)
}

// clientCredentials are the columns a client authenticates with: its secret's hash, or its keys (inline or by
// URL) and the one algorithm its assertions use, under its method. A cached row is confirmed on all of them, so
// a rotated secret, a key taken out of the set, a replaced jwks_uri or a changed method is seen at once.
type clientCredentials struct {
	secretHash, jwks, jwksURI, method, alg string
}

func credentialsOf(c *Client) clientCredentials {
	return clientCredentials{c.SecretHash, c.JWKS, c.JWKSURI, c.TokenEndpointAuthMethod, c.TokenEndpointAuthSigningAlg}
}

// clientStillSame is the condition that confirms a cached client row in the statement that uses it; its
// arguments are stillSameArgs.
const clientStillSame = " EXISTS (SELECT 1 FROM clients WHERE id = ? AND secret_hash = ? AND jwks = ? AND jwks_uri = ?" +
	" AND token_endpoint_auth_method = ? AND token_endpoint_auth_signing_alg = ?)"

func (c *ClientCheck) stillSameArgs() []any {
	return []any{c.id, c.creds.secretHash, c.creds.jwks, c.creds.jwksURI, c.creds.method, c.creds.alg}
}

func (c *ClientCheck) confirm(ctx context.Context) error {
	var n int64
	err := c.store.conn(ctx).Raw("SELECT COUNT(*) WHERE"+clientStillSame, c.stillSameArgs()...).Scan(&n).Error
	if err != nil {
		return fmt.Errorf("confirm cached client: %w", mapErr(err))
	}
	return c.settle(n > 0)
}

// settle records what a statement learned about the cached row: still the same, or changed or gone.
func (c *ClientCheck) settle(same bool) error {
	c.pending = false
	if !same {
		c.stale = true
		c.store.clients.forget(c.id)
		return ErrStaleClient
	}
	return nil
}

// unsettledCheck returns the request's check if a cached client awaits confirmation or was found stale; a
// statement given a stale check refuses with ErrStaleClient, so nothing runs on the strength of a stale secret.
func (s *Store) unsettledCheck(ctx context.Context) *ClientCheck {
	if c, ok := ctx.Value(clientCheckKey{}).(*ClientCheck); ok && c.store == s && (c.pending || c.stale) {
		return c
	}
	return nil
}

// cachedClientForAuth answers GetClient from the cache when the request allows it: outside transactions, and for
// one client per request (the check confirms one row).
func (s *Store) cachedClientForAuth(ctx context.Context, id string) (*Client, bool) {
	c, ok := ctx.Value(clientCheckKey{}).(*ClientCheck)
	if !ok || c.store != s || c.stale || (c.used && c.id != id) {
		return nil, false
	}
	if _, inTx := ctx.Value(txKey{s}).(*gorm.DB); inTx {
		return nil, false
	}
	cl, ok := s.clients.get(id, time.Now())
	if !ok || cl.TokenEndpointAuthMethod == AuthMethodClientSecretJWT {
		// A client_secret_jwt client is read fresh: its verifier (provider) reads the client itself.
		return nil, false
	}
	// A private_key_jwt client is confirmed on its keys like any client on its secret: the assertion's jti is
	// recorded by the first statement, which carries the condition (SetClientAssertionJWT), so a stale row
	// records nothing and the request is answered again from a fresh one.
	c.id, c.creds, c.used, c.pending = id, credentialsOf(cl), true, true
	return cl, true
}
