package e2e

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	smtp "github.com/emersion/go-smtp"
)

// mailServer is a real SMTP server over TCP (go-smtp) that keeps every mail it receives.
type mailServer struct {
	Addr string
	mu   sync.Mutex
	srv  *smtp.Server
	got  chan receivedMail
}

type receivedMail struct {
	From, To string
	Data     []byte
}

// newMailServer reserves a loopback port; start() serves on it (so a test can begin with the server down).
func newMailServer(t *testing.T) *mailServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m := &mailServer{Addr: addr, got: make(chan receivedMail, 64)}
	t.Cleanup(func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.srv != nil {
			m.srv.Close()
		}
	})
	return m
}

func startMailServer(t *testing.T) *mailServer {
	m := newMailServer(t)
	m.start(t)
	return m
}

func (m *mailServer) start(t *testing.T) {
	t.Helper()
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{m: m}, nil }))
	s.Addr = m.Addr
	s.Domain = "localhost"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", m.Addr)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.srv = s
	m.mu.Unlock()
	go func() { _ = s.Serve(ln) }()
}

type mailSession struct {
	m        *mailServer
	from, to string
}

func (s *mailSession) Reset()        { s.from, s.to = "", "" }
func (s *mailSession) Logout() error { return nil }
func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = to
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.got <- receivedMail{From: s.from, To: s.to, Data: b}
	return nil
}

// env points the server's mail at m.
func (m *mailServer) env(env testEnv) {
	env["LATCHKEY_SMTP_URL"] = "smtp://" + m.Addr
	env["LATCHKEY_SMTP_FROM"] = "Latchkey Test <no-reply@latchkey.test>"
	env["LATCHKEY_OUTBOX_POLL"] = "100ms"
	env["LATCHKEY_OUTBOX_RETRY_BASE"] = "300ms"
}

// next waits for the next mail.
func (m *mailServer) next(t *testing.T) parsedMail {
	t.Helper()
	select {
	case r := <-m.got:
		return parseMail(t, r)
	case <-time.After(15 * time.Second):
		t.Fatal("no mail arrived within 15s")
	}
	return parsedMail{}
}

// none checks that no mail arrives within d.
func (m *mailServer) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-m.got:
		t.Fatalf("unexpected mail to %s:\n%s", r.To, r.Data)
	case <-time.After(d):
	}
}

type parsedMail struct {
	To      string
	Header  mail.Header
	Text    string
	HTML    string
	Token   string
	Code    string
	Subject string
}

var (
	tokenPattern = regexp.MustCompile(`token=([A-Za-z0-9_-]+)`)
	codePattern  = regexp.MustCompile(`code \(valid for \d+ minutes\): (\d{6})`)
)

func parseMail(t *testing.T, r receivedMail) parsedMail {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(r.Data))
	if err != nil {
		t.Fatalf("mail does not parse: %v\n%s", err, r.Data)
	}
	for _, h := range []string{"Message-Id", "Date", "From", "To", "Subject"} {
		if msg.Header.Get(h) == "" {
			t.Fatalf("mail has no %s header:\n%s", h, r.Data)
		}
	}
	if _, err := msg.Header.Date(); err != nil {
		t.Fatalf("Date: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v)", msg.Header.Get("Content-Type"), err)
	}
	p := parsedMail{To: r.To, Header: msg.Header}
	p.Subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		switch {
		case strings.HasPrefix(part.Header.Get("Content-Type"), "text/plain"):
			p.Text = string(b)
		case strings.HasPrefix(part.Header.Get("Content-Type"), "text/html"):
			p.HTML = string(b)
		}
	}
	if p.Text == "" || p.HTML == "" {
		t.Fatalf("mail lacks a text or HTML part:\n%s", r.Data)
	}
	if m := tokenPattern.FindStringSubmatch(p.Text); m != nil {
		p.Token = m[1]
	}
	if m := codePattern.FindStringSubmatch(p.Text); m != nil {
		p.Code = m[1]
	}
	if p.Token == "" || p.Code == "" {
		t.Fatalf("mail lacks a link or code:\n%s", p.Text)
	}
	return p
}
