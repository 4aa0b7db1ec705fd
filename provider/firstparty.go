package provider

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ory/fosite"
)

type firstPartyRefreshKey struct{}

// firstPartyClient is implemented by clients that may be marked first-party.
type firstPartyClient interface {
	IsFirstParty() bool
}

// WithFirstPartyRefresh marks ctx as a refresh the token API makes for a first-party app. Apps built in no-code
// tools run in the browser and cannot keep a client secret; for them the refresh token is the credential, as for
// any public client, and rotation with reuse detection protects it. The mark only ever comes from our own handler
// after it checked the client, never from a request.
func WithFirstPartyRefresh(ctx context.Context, clientID string) context.Context {
	return context.WithValue(ctx, firstPartyRefreshKey{}, clientID)
}

// firstPartyRefreshAuth is fosite's client authentication, except for a marked first-party refresh, where the
// client is identified by client_id alone.
func firstPartyRefreshAuth(f *fosite.Fosite, store fosite.ClientManager) fosite.ClientAuthenticationStrategy {
	return func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		if id, ok := ctx.Value(firstPartyRefreshKey{}).(string); ok && id != "" &&
			form.Get("grant_type") == "refresh_token" && form.Get("client_id") == id {
			c, err := store.GetClient(ctx, id)
			if err != nil {
				return nil, fosite.ErrInvalidClient.WithWrap(err).WithHint("Unknown client.")
			}
			if fp, ok := c.(firstPartyClient); ok && fp.IsFirstParty() {
				return c, nil
			}
			return nil, fosite.ErrInvalidClient.WithHint("The client is not a first-party app.")
		}
		return f.DefaultClientAuthenticationStrategy(ctx, r, form)
	}
}
