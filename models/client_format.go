package models

// GetAccessTokenFormat tells the provider's token strategy which access token format this client wants
// ("" means the server default).
func (c *Client) GetAccessTokenFormat() string { return c.AccessTokenFormat }

// IsFirstParty lets the provider recognise first-party apps, which may refresh through the token API without a
// secret.
func (c *Client) IsFirstParty() bool { return c.FirstParty }
