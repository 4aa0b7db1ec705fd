package models_test

import (
	"errors"
	"testing"

	"github.com/latchkey/latchkey/models"
)

// A token exchange policy and the grant go together, for a confidential client, with sane audiences.
func TestTokenExchangePolicyRules(t *testing.T) {
	base := func() *models.Client {
		return &models.Client{ID: "orders", GrantTypes: []string{"client_credentials", models.GrantTypeTokenExchange},
			TokenExchangeAudiences: []string{"https://api.example"}}
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("a valid policy: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(c *models.Client)
		field string
	}{
		{"the grant without audiences", func(c *models.Client) { c.TokenExchangeAudiences = nil }, "token_exchange_audiences"},
		{"audiences without the grant", func(c *models.Client) { c.GrantTypes = []string{"client_credentials"} }, "grant_types"},
		{"a public client", func(c *models.Client) { c.Public, c.GrantTypes = true, []string{models.GrantTypeTokenExchange} }, "public"},
		{"delegation only without a policy", func(c *models.Client) {
			c.GrantTypes, c.TokenExchangeAudiences, c.TokenExchangeDelegationOnly = []string{"client_credentials"}, nil, true
		}, "token_exchange_delegation_only"},
		{"an audience with a space", func(c *models.Client) { c.TokenExchangeAudiences = []string{"a b"} }, "token_exchange_audiences"},
		{"an audience twice", func(c *models.Client) { c.TokenExchangeAudiences = []string{"x", "x"} }, "token_exchange_audiences"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(c)
			var ve models.ValidationError
			if err := c.Validate(); !errors.As(err, &ve) || !hasField(ve, tc.field) {
				t.Fatalf("err = %v, want a problem with %s", err, tc.field)
			}
		})
	}
	t.Run("not by dynamic registration", func(t *testing.T) {
		c := base()
		c.Name = "orders"
		if err := (models.RegistrationPolicy{Scopes: []string{"openid"}}).Validate(c); err == nil {
			t.Fatal("a registration with a token exchange policy was accepted")
		}
	})
}
