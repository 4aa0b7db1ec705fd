package outbox

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/latchkey/latchkey/jwksfetch"
	"github.com/latchkey/latchkey/models"
)

// LogoutTokens signs logout tokens (provider.Provider).
type LogoutTokens interface {
	LogoutToken(ctx context.Context, clientID, subject, sid string, now time.Time) (string, error)
}

// DefaultTimeout bounds a delivery: the connection, and the whole exchange.
const DefaultTimeout = 5 * time.Second

// Backchannel sends OutboxBackchannelLogout messages (OpenID Connect Back-Channel Logout 1.0 §2.5): it signs a
// logout token now, so a retried delivery carries a fresh one, and POSTs it as logout_token to the target. 200
// and 204 are delivered; anything else is retried.
type Backchannel struct {
	Tokens LogoutTokens
	Client *http.Client
	Now    func() time.Time
}

func (b *Backchannel) Send(ctx context.Context, m models.OutboxMessage) error {
	var p models.BackchannelLogout
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		return fmt.Errorf("back-channel logout payload: %w", err)
	}
	tok, err := b.Tokens.LogoutToken(ctx, p.ClientID, p.Subject, p.SID, b.Now())
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Target, strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return fmt.Errorf("back-channel logout request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is logged apart, redacted
		}
		return fmt.Errorf("back-channel logout: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("back-channel logout: HTTP %d", resp.StatusCode)
	}
	return nil
}

// NewHTTPClient is the client deliveries go out through: timeout bounds the connection and the whole exchange;
// no redirects (a logout token or an event goes where it was registered to go, nowhere else), no proxy; and, unless
// allowPrivate, the address dialled must be public (jwksfetch.PublicAddr, the rule the JWKS fetcher follows),
// checked after DNS so a name cannot resolve its way inside.
func NewHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: timeout, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("dial %s: not an IP address", address)
		}
		if allowPrivate || jwksfetch.PublicAddr(ap.Addr()) {
			return nil
		}
		return fmt.Errorf("dial %s: not a public address (LATCHKEY_BACKCHANNEL_LOGOUT_ALLOW_PRIVATE, LATCHKEY_WEBHOOK_ALLOW_PRIVATE allow it)", ap.Addr())
	}}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
