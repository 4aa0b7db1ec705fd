package models_test

import (
	"errors"
	"testing"

	"github.com/latchkey/latchkey/models"
)

func TestClientLogoutURIRules(t *testing.T) {
	for _, tc := range []struct {
		name       string
		set        func(c *models.Client)
		wantFields []string
	}{
		{"https back-channel", func(c *models.Client) { c.BackchannelLogoutURI = "https://rp.example/bc?x=1" }, nil},
		{"loopback http", func(c *models.Client) { c.BackchannelLogoutURI = "http://127.0.0.1:8080/bc" }, nil},
		{"plain http", func(c *models.Client) { c.BackchannelLogoutURI = "http://rp.example/bc" }, []string{"backchannel_logout_uri"}},
		{"fragment", func(c *models.Client) { c.BackchannelLogoutURI = "https://rp.example/bc#x" }, []string{"backchannel_logout_uri"}},
		{"credentials", func(c *models.Client) { c.BackchannelLogoutURI = "https://u:p@rp.example/bc" }, []string{"backchannel_logout_uri"}},
		{"relative", func(c *models.Client) { c.BackchannelLogoutURI = "/bc" }, []string{"backchannel_logout_uri"}},
		{"session required alone", func(c *models.Client) { c.BackchannelLogoutSessionRequired = true }, []string{"backchannel_logout_session_required"}},
		{"front-channel on another site", func(c *models.Client) {
			c.RedirectURIs = []string{"https://rp.example/cb"}
			c.FrontchannelLogoutURI = "https://evil.example/fc"
		}, []string{"frontchannel_logout_uri"}},
		{"front-channel on the redirect's site", func(c *models.Client) {
			c.RedirectURIs = []string{"https://rp.example/cb"}
			c.FrontchannelLogoutURI = "https://rp.example/fc"
			c.FrontchannelLogoutSessionRequired = true
		}, nil},
		{"front-channel session required alone", func(c *models.Client) { c.FrontchannelLogoutSessionRequired = true }, []string{"frontchannel_logout_session_required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &models.Client{ID: "rp", Name: "RP", GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
				RedirectURIs: []string{"https://rp.example/cb"}}
			tc.set(c)
			err := c.Validate()
			var ve models.ValidationError
			if tc.wantFields == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.As(err, &ve) {
				t.Fatalf("Validate: %v, want a ValidationError on %v", err, tc.wantFields)
			}
			for _, f := range tc.wantFields {
				found := false
				for _, fe := range ve {
					found = found || fe.Field == f
				}
				if !found {
					t.Errorf("problems %v, want one on %s", ve, f)
				}
			}
		})
	}
}
