package mailer

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"time"

	"github.com/latchkey/latchkey/models"
)

// SMTP is a parsed LATCHKEY_SMTP_URL:
//
//	smtp://user:pass@host:587  STARTTLS, required whenever credentials are sent (see Sender)
//	smtps://user:pass@host:465 implicit TLS
//	smtp://host:25             no authentication (a local relay, tests); STARTTLS when the server offers it
type SMTP struct {
	Host     string // host:port
	Implicit bool   // smtps://
	Username string
	Password string
	// TLS is the client TLS config (ServerName is set from Host); tests give it their CA.
	TLS *tls.Config
}

// ParseSMTPURL parses LATCHKEY_SMTP_URL. Errors never contain the password.
func ParseSMTPURL(raw string) (*SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("LATCHKEY_SMTP_URL is not a URL (smtp://user:pass@host:587 or smtps://...)")
	}
	s := &SMTP{}
	switch u.Scheme {
	case "smtp":
	case "smtps":
		s.Implicit = true
	default:
		return nil, fmt.Errorf("LATCHKEY_SMTP_URL scheme must be smtp or smtps, not %q", u.Scheme)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, errors.New("LATCHKEY_SMTP_URL must be scheme://[user:pass@]host[:port], nothing more")
	}
	port := u.Port()
	if port == "" {
		port = map[bool]string{false: "587", true: "465"}[s.Implicit]
	}
	s.Host = net.JoinHostPort(u.Hostname(), port)
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	s.TLS = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	return s, nil
}

// Redacted is the URL fit for logs: no password.
func (s *SMTP) Redacted() string {
	scheme := "smtp"
	if s.Implicit {
		scheme = "smtps"
	}
	user := ""
	if s.Username != "" {
		user = url.User(s.Username).String() + ":***@"
	}
	return scheme + "://" + user + s.Host
}

func parseFrom(from string) (string, error) {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return "", err
	}
	return a.Address, nil
}

// Sender delivers OutboxMail messages over SMTP, one connection per message. With credentials it sends them
// only over TLS: implicit (smtps), or STARTTLS, which it then requires; a server that does not offer STARTTLS
// fails the delivery (retried, then dead) rather than receive a password in clear. Without credentials it
// uses STARTTLS whenever the server offers it, and sends in clear otherwise (a local relay, tests). The
// server's certificate is always verified.
type Sender struct {
	SMTP    *SMTP
	Timeout time.Duration // the whole exchange; 0: 30s
	// LocalName is the HELO/EHLO name; "" is "localhost".
	LocalName string
}

func (s *Sender) Send(ctx context.Context, m models.OutboxMessage) error {
	var p models.MailMessage
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		return fmt.Errorf("mail payload: %w", err)
	}
	return s.deliver(ctx, p)
}

func (s *Sender) deliver(ctx context.Context, p models.MailMessage) error {
	if _, err := Address(p.To); err != nil {
		return err
	}
	if _, err := Address(p.From); err != nil {
		return err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := &net.Dialer{Timeout: timeout}
	var conn net.Conn
	var err error
	if s.SMTP.Implicit {
		conn, err = (&tls.Dialer{NetDialer: d, Config: s.SMTP.TLS.Clone()}).DialContext(ctx, "tcp", s.SMTP.Host)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.SMTP.Host)
	}
	if err != nil {
		return fmt.Errorf("smtp dial: %w", err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	host, _, _ := net.SplitHostPort(s.SMTP.Host)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp greeting: %w", err)
	}
	defer c.Close()
	name := s.LocalName
	if name == "" {
		name = "localhost"
	}
	if err := c.Hello(name); err != nil {
		return fmt.Errorf("smtp hello: %w", err)
	}
	tlsOn := s.SMTP.Implicit
	if !tlsOn {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.SMTP.TLS.Clone()); err != nil {
				return fmt.Errorf("smtp starttls: %w", err)
			}
			tlsOn = true
		}
	}
	if s.SMTP.Username != "" {
		if !tlsOn {
			return errors.New("smtp: the server does not offer STARTTLS; credentials are never sent in clear")
		}
		if err := c.Auth(smtp.PlainAuth("", s.SMTP.Username, s.SMTP.Password, host)); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.Mail(p.From); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	if err := c.Rcpt(p.To); err != nil {
		return fmt.Errorf("smtp RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if _, err := w.Write([]byte(p.Message)); err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	_ = c.Quit() // the message was accepted at the end of DATA; a failed QUIT does not undo that
	return nil
}
