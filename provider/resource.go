package provider

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ory/fosite"
)

// Resource indicators (RFC 8707) are fosite's audiences: a `resource` parameter, which may repeat, is read as one
// more `audience` value, here and nowhere else. fosite then checks them against the client's registered audiences
// (exactAudience: invalid_target otherwise) at the authorization endpoint, where the error goes to the validated
// redirect URI, at PAR and at the token endpoint. An authorization records the audiences it granted with the code;
// a code exchange or a refresh may narrow them (narrowResources), and JWT access tokens carry them as `aud`.

// resourceIndicators is the public OAuth 2.0 provider with `resource` read as `audience` on every request that
// starts a grant or asks for tokens.
type resourceIndicators struct{ fosite.OAuth2Provider }

func (p resourceIndicators) NewAuthorizeRequest(ctx context.Context, r *http.Request) (fosite.AuthorizeRequester, error) {
	foldResource(r)
	ar, err := p.OAuth2Provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		return ar, err
	}
	// After fosite validated the redirect URI: the error goes back to the client.
	return ar, checkResources(ar.GetRequestForm())
}

func (p resourceIndicators) NewPushedAuthorizeRequest(ctx context.Context, r *http.Request) (fosite.AuthorizeRequester, error) {
	foldResource(r)
	ar, err := p.OAuth2Provider.NewPushedAuthorizeRequest(ctx, r)
	if err != nil {
		return ar, err
	}
	return ar, checkResources(ar.GetRequestForm())
}

func (p resourceIndicators) NewAccessRequest(ctx context.Context, r *http.Request, session fosite.Session) (fosite.AccessRequester, error) {
	foldResource(r)
	if err := checkResources(r.PostForm); err != nil {
		return nil, err
	}
	return p.OAuth2Provider.NewAccessRequest(ctx, r, session)
}

// foldResource parses the request's form and adds each `resource` value to its `audience` values, once: a request
// restored after sign-in carries both already. A form that cannot be parsed is left to fosite to refuse.
func foldResource(r *http.Request) {
	if err := r.ParseForm(); err != nil {
		return
	}
	for _, form := range []url.Values{r.Form, r.PostForm} {
		res := form["resource"]
		if len(res) == 0 {
			continue
		}
		audience := fosite.GetAudiences(form)
		for _, v := range res {
			if v != "" && !slices.Contains(audience, v) {
				audience = append(audience, v)
			}
		}
		form["audience"] = audience
	}
}

// checkResources refuses a `resource` that is not an absolute URI without a fragment (RFC 8707 §2).
func checkResources(form url.Values) error {
	for _, v := range form["resource"] {
		if u, err := url.Parse(v); err != nil || !u.IsAbs() || strings.ContainsAny(v, "# \t\r\n") {
			return ErrInvalidTarget.WithHint("Each 'resource' must be an absolute URI without a fragment.")
		}
	}
	return nil
}

// narrowResources is a code exchange or refresh with RFC 8707 narrowing: the access token (and the refresh token
// stored with it) is for the resources the token request names, each of which the authorization must have
// granted, or for every resource the authorization granted when it names none. fosite carries the authorization's
// audiences through every step of a grant as the requested audience, so a refresh after a narrowed exchange may
// ask again for any of them.
type narrowResources struct {
	fosite.TokenEndpointHandler
	audience fosite.AudienceStrategyProvider
}

func (n narrowResources) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	if err := n.TokenEndpointHandler.HandleTokenEndpointRequest(ctx, req); err != nil || !narrows(req) {
		return err
	}
	target, err := n.target(ctx, req)
	if err != nil {
		return err
	}
	if !req.GetGrantTypes().ExactOne("refresh_token") {
		return nil
	}
	// fosite's refresh grant granted the audiences of the presented token; the new tokens get the target.
	r, ok := req.(*fosite.AccessRequest)
	if !ok {
		return fosite.ErrServerError.WithDebugf("unexpected access request type %T", req)
	}
	r.GrantedAudience = fosite.Arguments(slices.Clone(target))
	return nil
}

func (n narrowResources) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !narrows(req) || !req.GetGrantTypes().ExactOne("authorization_code") {
		return n.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, req, resp)
	}
	target, err := n.target(ctx, req)
	if err != nil {
		return err
	}
	// fosite's code grant grants the code's audiences while it issues the tokens: only the target ones stick.
	return n.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, grantOnly{AccessRequester: req, allow: target}, resp)
}

func narrows(req fosite.AccessRequester) bool {
	g := req.GetGrantTypes()
	return g.ExactOne("authorization_code") || g.ExactOne("refresh_token")
}

// target is what the new tokens are for: the resources asked for, all authorized and still registered for the
// client, or every authorized resource.
func (n narrowResources) target(ctx context.Context, req fosite.AccessRequester) ([]string, error) {
	authorized := req.GetRequestedAudience()
	target := []string(authorized)
	if asked := fosite.GetAudiences(req.GetRequestForm()); len(asked) > 0 {
		for _, a := range asked {
			if !authorized.Has(a) {
				return nil, ErrInvalidTarget.WithHintf("The resource '%s' was not authorized in this grant.", a)
			}
		}
		target = asked
	}
	if err := n.audience.GetAudienceStrategy(ctx)(req.GetClient().GetAudience(), target); err != nil {
		return nil, err
	}
	return target, nil
}

// grantOnly is a requester whose GrantAudience ignores every audience but the allowed ones.
type grantOnly struct {
	fosite.AccessRequester
	allow []string
}

func (g grantOnly) GrantAudience(audience string) {
	if slices.Contains(g.allow, audience) {
		g.AccessRequester.GrantAudience(audience)
	}
}
