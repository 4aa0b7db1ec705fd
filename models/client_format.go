package models

// GetAccessTokenFormat tells the provider's token strategy which access token format this client wants
// ("" means the server default).
func (c *Client) GetAccessTokenFormat() string { return c.AccessTokenFormat }
