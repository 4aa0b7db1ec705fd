package provider

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/ory/fosite"
)

// The token API (sign-in, refresh for first-party apps) is a second fosite token endpoint, composed in New from
// the same config, store and token strategies as the public one, so every token is issued, stored, rotated and
// revoked by the same machinery. It differs in exactly two things, both fixed at composition, never per request:
//   - its grants: the first-party sign-in (signInGrant, its own grant type) and refresh_token. The public
//     endpoint does not compose the sign-in grant, so nobody can use it at /oauth2/token.
//   - its client authentication (firstPartyAuth): the token API serves first-party apps only. Apps built in
//     no-code tools run in the browser and cannot keep a secret; for them the refresh token is the credential,
//     as for any public client, and rotation with reuse detection protects it.
//
// It has no HTTP route of its own: the token API's handlers reach it through SignIn and Refresh.
type tokenAPIConfig struct {
	*fosite.Config
	handlers fosite.TokenEndpointHandlers
	auth     fosite.ClientAuthenticationStrategy
}

func (c *tokenAPIConfig) GetTokenEndpointHandlers(context.Context) fosite.TokenEndpointHandlers {
	return c.handlers
}

func (c *tokenAPIConfig) GetClientAuthenticationStrategy(context.Context) fosite.ClientAuthenticationStrategy {
	return c.auth
}

// firstPartyClient is implemented by clients that may be marked first-party.
type firstPartyClient interface {
	IsFirstParty() bool
}

// firstPartyAuth is the token API's one client-authentication rule: the client must be first-party; it is
// identified by client_id, unless it sends credentials (a secret, an assertion), which must then be right
// exactly as at the token endpoint (authenticate).
func firstPartyAuth(authenticate fosite.ClientAuthenticationStrategy, store fosite.ClientManager) fosite.ClientAuthenticationStrategy {
	return func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		var (
			c   fosite.Client
			err error
		)
		if _, _, basic := r.BasicAuth(); basic || form.Get("client_secret") != "" || form.Get("client_assertion") != "" {
			if c, err = authenticate(ctx, r, form); err != nil {
				return nil, err
			}
		} else {
			id := form.Get("client_id")
			if id == "" {
				return nil, fosite.ErrInvalidClient.WithHint("client_id is required.")
			}
			c, err = store.GetClient(ctx, id)
			if errors.Is(err, fosite.ErrNotFound) {
				return nil, fosite.ErrInvalidClient.WithWrap(err).WithHint("Unknown client.")
			} else if err != nil {
				return nil, fosite.ErrServerError.WithWrap(err).WithDebugf("load client: %s", err)
			}
		}
		if fp, ok := c.(firstPartyClient); ok && fp.IsFirstParty() {
			return c, nil
		}
		return nil, fosite.ErrInvalidClient.WithHint("The client is not a first-party app.")
	}
}
