package models_test

import (
	"slices"
	"testing"

	"github.com/latchkey/latchkey/models"
)

func TestClientDefaults(t *testing.T) {
	for _, c := range []struct {
		name            string
		in              models.Client
		id, clientName  string
		grants, respond []string
		adminScope      bool
	}{
		{"confidential backend", models.Client{ID: "api"}, "api", "api", []string{"client_credentials"}, nil, false},
		{"public app", models.Client{ID: "spa", Public: true}, "spa", "spa", []string{"authorization_code", "refresh_token"}, []string{"code"}, false},
		{"first party with redirects", models.Client{ID: "web", FirstParty: true, RedirectURIs: []string{"https://a.example/cb"}}, "web", "web", []string{"authorization_code", "refresh_token"}, []string{"code"}, false},
		{"first party token API app", models.Client{ID: "app", FirstParty: true}, "app", "app", []string{"refresh_token"}, nil, false},
		{"admin", models.Client{ID: "ops", Admin: true, Scopes: []string{"read"}}, "ops", "ops", []string{"client_credentials"}, nil, true},
		{"named, no id", models.Client{Name: "Shop"}, "", "Shop", []string{"client_credentials"}, nil, false},
		{"no id, no name", models.Client{}, "", "", []string{"client_credentials"}, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := c.in
			cl.ApplyDefaults()
			if cl.ID == "" || (c.id != "" && cl.ID != c.id) || cl.Name != c.clientName || !slices.Equal(cl.GrantTypes, c.grants) ||
				!slices.Equal(cl.ResponseTypes, c.respond) || slices.Contains(cl.Scopes, models.AdminScope) != c.adminScope {
				t.Errorf("got id %q name %q grants %v responses %v scopes %v", cl.ID, cl.Name, cl.GrantTypes, cl.ResponseTypes, cl.Scopes)
			}
		})
	}
	cl := models.Client{ID: "ops", Scopes: []string{"read"}, AdminPools: []string{"x"}}
	cl.SetAdmin(true)
	cl.SetAdmin(true)
	if !cl.Admin || !slices.Equal(cl.Scopes, []string{"read", models.AdminScope}) {
		t.Errorf("SetAdmin(true): %v %v", cl.Admin, cl.Scopes)
	}
	cl.SetAdmin(false)
	if cl.Admin || !slices.Equal(cl.Scopes, []string{"read"}) || cl.AdminPools != nil {
		t.Errorf("SetAdmin(false): %v %v %v", cl.Admin, cl.Scopes, cl.AdminPools)
	}
	cl = models.Client{TokenEndpointAuthMethod: models.AuthMethodClientSecretBasic, TokenEndpointAuthSigningAlg: "RS256"}
	cl.SetAuthMethod(models.AuthMethodClientSecretJWT)
	if cl.TokenEndpointAuthSigningAlg != "" || !cl.NeedsSealedSecret(models.AuthMethodClientSecretBasic) || cl.NeedsSealedSecret(models.AuthMethodClientSecretJWT) {
		t.Errorf("to client_secret_jwt: alg %q", cl.TokenEndpointAuthSigningAlg)
	}
	cl.TokenEndpointAuthSigningAlg = "HS512"
	cl.SetAuthMethod(models.AuthMethodClientSecretJWT)
	if cl.TokenEndpointAuthSigningAlg != "HS512" {
		t.Errorf("same method kept alg? %q", cl.TokenEndpointAuthSigningAlg)
	}
	cl.SetAuthMethod(models.AuthMethodPrivateKeyJWT)
	if cl.TokenEndpointAuthSigningAlg != "" {
		t.Errorf("HMAC alg kept by private_key_jwt: %q", cl.TokenEndpointAuthSigningAlg)
	}
}
