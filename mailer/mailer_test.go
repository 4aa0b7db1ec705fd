package mailer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtp "github.com/emersion/go-smtp"

	"github.com/latchkey/latchkey/models"
)

func TestMessageRefusesHeaderInjection(t *testing.T) {
	ok := Message{From: "Acme <no-reply@acme.example>", To: "ada@example.com", Subject: "Hi", Text: "t", HTML: "<p>h</p>", Date: time.Now()}
	if _, err := ok.Bytes(); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]Message{
		"to CRLF":      {From: ok.From, To: "ada@example.com\r\nBcc: all@example.com", Subject: "Hi"},
		"to list":      {From: ok.From, To: "ada@example.com, all@example.com", Subject: "Hi"},
		"to name":      {From: ok.From, To: "Eve <ada@example.com>", Subject: "Hi"},
		"subject CRLF": {From: ok.From, To: ok.To, Subject: "Hi\r\nBcc: all@example.com"},
		"from CRLF":    {From: "a@b.example\r\nBcc: all@example.com", To: ok.To, Subject: "Hi"},
	} {
		if _, err := m.Bytes(); !errors.Is(err, ErrHeader) || !errors.Is(err, models.ErrInvalid) {
			t.Errorf("%s: %v, want ErrHeader", name, err)
		}
	}
}

func TestComposeOverridesAndEncodes(t *testing.T) {
	dir := t.TempDir()
	c, err := NewComposer("Acme <no-reply@acme.example>", "https://id.acme.example/", dir, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Compose(models.MailVerifyEmail, "ada@example.com", "tok", "123456")
	if err != nil {
		t.Fatal(err)
	}
	if m.From != "no-reply@acme.example" || !strings.Contains(m.Message, "https://id.acme.example/verify-email?token=3Dtok") { // quoted-printable
		t.Fatalf("composed: %+v", m)
	}
	if _, err := c.Compose(models.MailVerifyEmail, "ada@example.com\r\nBcc: x@y.example", "tok", "123456"); !errors.Is(err, ErrHeader) {
		t.Fatalf("CRLF recipient: %v", err)
	}
	if _, err := NewComposer("no-reply@acme.example\r\nBcc: x@y.example", "https://id", "", time.Now); err == nil {
		t.Fatal("a From with CRLF was accepted")
	}
}

func BenchmarkComposeAndRender(b *testing.B) {
	c, err := NewComposer("Acme <no-reply@acme.example>", "https://id.acme.example", "", time.Now)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Compose(models.MailResetPassword, "ada@example.com", "tok", "123456"); err != nil {
			b.Fatal(err)
		}
	}
}

// testServer is a go-smtp server on loopback; with tlsConf it offers STARTTLS and PLAIN auth (user/pass).
func testServer(t *testing.T, tlsConf *tls.Config) (string, chan string) {
	t.Helper()
	got := make(chan string, 4)
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{got: got}, nil }))
	s.Domain = "localhost"
	s.TLSConfig = tlsConf
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String(), got
}

type session struct {
	got  chan string
	auth bool
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "user" || pass != "s3cret" {
			return errors.New("bad credentials")
		}
		s.auth = true
		return nil
	}), nil
}
func (s *session) Reset()                                    {}
func (s *session) Logout() error                             { return nil }
func (s *session) Mail(string, *smtp.MailOptions) error      { return nil }
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error { return nil }
func (s *session) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	if s.auth {
		s.got <- "auth:" + string(b)
	} else {
		s.got <- string(b)
	}
	return nil
}

func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

func TestSenderStartTLSAndCredentials(t *testing.T) {
	msg := models.MailMessage{From: "no-reply@acme.example", To: "ada@example.com", Message: "Subject: x\r\n\r\nbody\r\n"}

	// Credentials and no STARTTLS on offer: refused, nothing sent in clear.
	addr, got := testServer(t, nil)
	cfg, err := ParseSMTPURL("smtp://user:s3cret@" + addr)
	if err != nil {
		t.Fatal(err)
	}
	err = (&Sender{SMTP: cfg, Timeout: 5 * time.Second}).deliver(context.Background(), msg)
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("credentials without STARTTLS: %v", err)
	}
	if cfg.Redacted() != "smtp://user:***@"+addr || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("redacted %q / err %v", cfg.Redacted(), err)
	}
	select {
	case m := <-got:
		t.Fatalf("delivered in clear: %q", m)
	default:
	}

	// STARTTLS offered: used, certificate verified, then PLAIN auth.
	serverTLS, roots := selfSigned(t)
	addr, got = testServer(t, serverTLS)
	cfg, _ = ParseSMTPURL("smtp://user:s3cret@" + addr)
	cfg.TLS.RootCAs = roots
	if err := (&Sender{SMTP: cfg}).deliver(context.Background(), msg); err != nil {
		t.Fatalf("STARTTLS + auth: %v", err)
	}
	if m := <-got; !strings.HasPrefix(m, "auth:") || !strings.Contains(m, "body") {
		t.Fatalf("received %q", m)
	}
	// An unknown certificate fails the delivery.
	cfg, _ = ParseSMTPURL("smtp://user:s3cret@" + addr)
	if err := (&Sender{SMTP: cfg}).deliver(context.Background(), msg); err == nil {
		t.Fatal("an unverified certificate was accepted")
	}
}

func TestParseSMTPURL(t *testing.T) {
	for _, bad := range []string{"http://x", "smtp://", "smtp://h/path", "smtp://h?x=1", "::"} {
		if _, err := ParseSMTPURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	c, err := ParseSMTPURL("smtps://u:p@mail.example")
	if err != nil || !c.Implicit || c.Host != "mail.example:465" {
		t.Fatalf("%+v %v", c, err)
	}
}

// A sign-in mail's link is the client's page as given; without one the mail carries the code alone. It has no
// page on this server, so Compose refuses it.
func TestComposeSignInLink(t *testing.T) {
	c, err := NewComposer("Acme <no-reply@acme.example>", "https://id.acme.example", "", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.ComposeLink(models.MailSignIn, "ada@example.com", "https://app.example/magic?token=abc", "123456")
	if err != nil || !strings.Contains(m.Message, "https://app.example/magic?token=3Dabc") /* quoted-printable */ || !strings.Contains(m.Message, "123456") {
		t.Fatalf("with a link: %v\n%s", err, m.Message)
	}
	m, err = c.ComposeLink(models.MailSignIn, "ada@example.com", "", "654321")
	if err != nil || strings.Contains(m.Message, "Or open this link") || strings.Contains(m.Message, "href") || !strings.Contains(m.Message, "654321") {
		t.Fatalf("without a link: %v\n%s", err, m.Message)
	}
	if _, err := c.Compose(models.MailSignIn, "ada@example.com", "tok", "123456"); err == nil {
		t.Fatal("Compose made a sign-in mail with a link on the issuer")
	}
}
