package provider

import (
	"context"
	"errors"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

// TestClientProof: a grant issued while its client authenticated refreshes only with the client proving itself
// again: at the token API, a secret sent (withClientProved); at the public endpoint, a confidential client (fosite
// authenticated it), so a client made public since is refused there. Grants never bound pass everywhere.
func TestClientProof(t *testing.T) {
	confidential := &models.Client{ID: "c", Public: false}
	public := &models.Client{ID: "p", Public: true}
	for _, tc := range []struct {
		name    string
		h       clientProof
		client  fosite.Client
		bound   bool
		proved  bool // the token API request sent the secret
		refused bool
	}{
		{"token API, bound, no secret", clientProof{tokenAPI: true, require: true}, confidential, true, false, true},
		{"token API, bound, secret", clientProof{tokenAPI: true, require: true}, confidential, true, true, false},
		{"token API, unbound, no secret", clientProof{tokenAPI: true, require: true}, confidential, false, false, false},
		{"public endpoint, bound, confidential client", clientProof{require: true}, confidential, true, false, false},
		{"public endpoint, bound, client made public", clientProof{require: true}, public, true, false, true},
		{"public endpoint, unbound, public client", clientProof{require: true}, public, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fosite.NewAccessRequest(&Session{ClientAuthenticated: tc.bound})
			r.Client = tc.client
			r.GrantTypes = fosite.Arguments{"refresh_token"}
			err := tc.h.HandleTokenEndpointRequest(withClientProved(context.Background(), tc.proved), r)
			if refused := errors.Is(err, fosite.ErrInvalidClient); refused != tc.refused {
				t.Fatalf("err = %v, refused %v, want %v", err, refused, tc.refused)
			}
			if !tc.refused && !errors.Is(err, fosite.ErrUnknownRequest) {
				t.Fatalf("err = %v, want ErrUnknownRequest (it never handles a grant itself)", err)
			}
		})
	}
	t.Run("record marks the grant when the client proved itself", func(t *testing.T) {
		for _, tc := range []struct {
			h      clientProof
			client fosite.Client
			proved bool
			want   bool
		}{
			{clientProof{}, confidential, false, true},
			{clientProof{}, public, false, false},
			{clientProof{tokenAPI: true}, confidential, false, false},
			{clientProof{tokenAPI: true}, confidential, true, true},
		} {
			sess := &Session{}
			r := fosite.NewAccessRequest(sess)
			r.Client = tc.client
			_ = tc.h.PopulateTokenEndpointResponse(withClientProved(context.Background(), tc.proved), r, fosite.NewAccessResponse())
			if sess.ClientAuthenticated != tc.want {
				t.Errorf("%+v client public %v proved %v: marked %v, want %v", tc.h, tc.client.IsPublic(), tc.proved, sess.ClientAuthenticated, tc.want)
			}
		}
	})
}
