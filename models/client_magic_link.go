package models

import "net/url"

// validateMagicLink: the page a passwordless sign-in mail links to follows the logout URIs' rule (an absolute
// https URL, http only on a loopback host, no credentials or fragment), and only a first-party client, the only
// kind that may use the token API, has one.
func (c *Client) validateMagicLink(p *problems) {
	if c.MagicLinkURL == "" {
		return
	}
	if _, err := checkLogoutURI(c.MagicLinkURL); err != nil {
		p.add("magic_link_url", "%v", err)
	} else if !c.FirstParty {
		p.add("magic_link_url", "is for first-party clients only (the token API's passwordless sign-in)")
	}
}

// MagicLink is the client's magic link page with token added to its query, or "" when it has none.
func (c *Client) MagicLink(token string) string {
	if c.MagicLinkURL == "" {
		return ""
	}
	u, err := url.Parse(c.MagicLinkURL) // validated when stored
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("token", token)
	u.RawQuery = q.Encode()
	return u.String()
}
