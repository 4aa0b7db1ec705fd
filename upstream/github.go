package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/models"
)

// GitHub is OAuth 2.0 without OpenID Connect: who signed in comes from its REST API, the person from /user and
// the email from /user/emails, where GitHub says which address is primary and whether it verified it.
const (
	githubAuthURL  = "https://github.com/login/oauth/authorize"
	githubTokenURL = "https://github.com/login/oauth/access_token"
	githubAPIURL   = "https://api.github.com"
)

// maxAPIResponse bounds what is read of an upstream API answer.
const maxAPIResponse = 1 << 20

func (c *Client) githubAccount(ctx context.Context, p *models.UpstreamProvider, tok *oauth2.Token) (models.UpstreamAccount, error) {
	api := strings.TrimSuffix(orDefault(p.APIURL, githubAPIURL), "/")
	var user struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
		Name  string `json:"name"`
	}
	if err := c.githubGet(ctx, api+"/user", tok, &user); err != nil {
		return models.UpstreamAccount{}, err
	}
	if user.ID <= 0 {
		return models.UpstreamAccount{}, fmt.Errorf("%w: GitHub user has no id", ErrRefused)
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := c.githubGet(ctx, api+"/user/emails", tok, &emails); err != nil {
		return models.UpstreamAccount{}, err
	}
	a := models.UpstreamAccount{Subject: strconv.FormatInt(user.ID, 10), Name: orDefault(user.Name, user.Login)}
	for _, e := range emails {
		if e.Primary {
			a.Email, a.EmailVerified = e.Email, e.Verified
		}
	}
	return a, nil
}

// githubGet GETs a GitHub API URL with the user's token and decodes its JSON into out.
func (c *Client) githubGet(ctx context.Context, u string, tok *oauth2.Token, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrUnavailable, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse))
	switch {
	case err != nil:
		return fmt.Errorf("%w: GET %s: %v", ErrUnavailable, u, err)
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: GET %s: %s", ErrUnavailable, u, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%w: GET %s: %s", ErrRefused, u, resp.Status)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrRefused, u, err)
	}
	return nil
}
