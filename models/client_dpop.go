package models

import (
	"context"
	"fmt"
	"time"

	"github.com/ory/fosite"
)

// DPoP (RFC 9449). The provider verifies proofs (package dpop) and binds tokens; what is stored is here: whether a
// client must always bind its access tokens, and which proofs were already spent.

// RequiresDPoP reports whether every token request of the client must carry a DPoP proof (RFC 9449 §5.2
// dpop_bound_access_tokens). Any client may ask for it; there is nothing about it to validate.
func (c *Client) RequiresDPoP() bool { return c.DPoPBoundAccessTokens }

// dpopJTIKey is where a proof's jti is recorded in oauth2_jti. The table already gives one-statement single use
// across nodes, hashed keys and the cleanup's sweep of expired rows, so proofs share it with client assertions;
// the prefix (a client assertion's key is its bare jti) keeps the two apart, and the key's thumbprint in it scopes
// a jti to the key that signed it, so nobody can spend someone else's jti ahead of them.
func dpopJTIKey(jkt, jti string) string { return "dpop\x00" + jkt + "\x00" + jti }

// SpendDPoPProof records the proof (jkt, jti) as spent until until, or answers fosite.ErrJTIKnown when it is
// already recorded and live. One statement: of two nodes presenting the same proof at once exactly one wins.
func (s *Store) SpendDPoPProof(ctx context.Context, jkt, jti string, until time.Time) error {
	res := s.conn(ctx).Exec(`INSERT INTO oauth2_jti (jti, expires_at) VALUES (?, ?)
		ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at WHERE oauth2_jti.expires_at <= ?`,
		hashKey(dpopJTIKey(jkt, jti)), dbTime(until), dbTime(s.now()))
	if res.Error != nil {
		return fmt.Errorf("record dpop proof jti: %w", noteFault(ctx, mapErr(res.Error)))
	}
	if res.RowsAffected != 1 {
		return fosite.ErrJTIKnown
	}
	return nil
}
