package models

import (
	"fmt"
	"net/url"
	"strings"
)

// MaxLogoutURILength bounds a back- or front-channel logout URI.
const MaxLogoutURILength = 2048

// validateLogout: each logout URI is an absolute https URL (http only to a loopback host) without credentials or
// a fragment (Back-Channel Logout §2.2, Front-Channel Logout §2); a front-channel URI also has the scheme, host
// and port of one of the client's redirect URIs (Front-Channel Logout §2), since the browser loads it on the
// client's own site. Asking for the session id goes with a URI to send it to.
func (c *Client) validateLogout(p *problems) {
	if c.BackchannelLogoutURI != "" {
		if _, err := checkLogoutURI(c.BackchannelLogoutURI); err != nil {
			p.add("backchannel_logout_uri", "%v", err)
		}
	} else if c.BackchannelLogoutSessionRequired {
		p.add("backchannel_logout_session_required", "is set without backchannel_logout_uri")
	}
	if c.FrontchannelLogoutURI != "" {
		u, err := checkLogoutURI(c.FrontchannelLogoutURI)
		switch {
		case err != nil:
			p.add("frontchannel_logout_uri", "%v", err)
		case !sameOriginAsRedirect(u, c.RedirectURIs):
			p.add("frontchannel_logout_uri", "%q must have the scheme, host and port of one of the redirect_uris", c.FrontchannelLogoutURI)
		}
	} else if c.FrontchannelLogoutSessionRequired {
		p.add("frontchannel_logout_session_required", "is set without frontchannel_logout_uri")
	}
}

// checkLogoutURI is the rule both logout URIs share.
func checkLogoutURI(raw string) (*url.URL, error) {
	if len(raw) > MaxLogoutURILength {
		return nil, fmt.Errorf("is longer than %d characters", MaxLogoutURILength)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", raw)
	case u.User != nil:
		return nil, fmt.Errorf("%q has credentials", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fmt.Errorf("%q has a fragment", raw)
	case strings.ContainsAny(raw, " \t\r\n\"'<>`"):
		return nil, fmt.Errorf("%q has characters a URL does not", raw)
	case u.Scheme == "https":
		return u, nil
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
		return u, nil
	default:
		return nil, fmt.Errorf("%q must use https (http only on localhost)", raw)
	}
}

func sameOriginAsRedirect(u *url.URL, redirects []string) bool {
	for _, r := range redirects {
		ru, err := url.Parse(r)
		if err == nil && strings.EqualFold(ru.Scheme, u.Scheme) && strings.EqualFold(ru.Host, u.Host) {
			return true
		}
	}
	return false
}

// HasLogoutURI reports whether logout reaches the client on either channel; only then is its taking part in a
// session recorded (see recordSessionClient).
func (c *Client) HasLogoutURI() bool {
	return c.BackchannelLogoutURI != "" || c.FrontchannelLogoutURI != ""
}
