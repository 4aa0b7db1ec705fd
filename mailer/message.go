// Package mailer renders account mails (email verification, password reset) from templates into complete
// RFC 5322 messages, and delivers them over SMTP as the outbox's "mail" sender. Rendering happens when the mail
// is queued, so a bad address or template fails the request, not a delivery hours later.
package mailer

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"

	"github.com/latchkey/latchkey/models"
)

// ErrHeader: a header value or address would break the message (CR, LF or NUL, or not a single plain address).
var ErrHeader = fmt.Errorf("%w: unsafe mail header", models.ErrInvalid)

// Address checks that s is one plain address (local@domain, no display name, no CR/LF) and returns it.
func Address(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n\x00<>\",; \t") {
		return "", fmt.Errorf("%w: address %q", ErrHeader, clip(s))
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", fmt.Errorf("%w: address %q", ErrHeader, clip(s))
	}
	return s, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Message is one mail to render.
type Message struct {
	From     string // a plain address, or "Name <address>" (parsed and re-encoded)
	To       string // a plain address
	Subject  string
	Text     string
	HTML     string
	Date     time.Time
	Hostname string // the domain of the Message-ID; the From domain when empty
}

// Bytes renders m as multipart/alternative (text, then HTML), quoted-printable, with Date, Message-ID, From,
// To, Subject and MIME-Version. Every header value is checked or encoded: no input can add a header.
func (m Message) Bytes() ([]byte, error) {
	from, err := mail.ParseAddress(m.From)
	if err != nil || strings.ContainsAny(m.From, "\r\n\x00") {
		return nil, fmt.Errorf("%w: from %q", ErrHeader, clip(m.From))
	}
	to, err := Address(m.To)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(m.Subject, "\r\n\x00") {
		return nil, fmt.Errorf("%w: subject has a line break", ErrHeader)
	}
	host := m.Hostname
	if host == "" {
		_, host, _ = strings.Cut(from.Address, "@")
	}
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	boundary := "lk-" + hex.EncodeToString(rnd[:8])
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("Date", m.Date.UTC().Format(time.RFC1123Z))
	header("Message-ID", "<"+hex.EncodeToString(rnd[:])+"@"+host+">")
	header("From", from.String()) // String() encodes a display name (RFC 2047) and quotes as needed
	header("To", "<"+to+">")
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("MIME-Version", "1.0")
	header("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	for _, part := range []struct{ ctype, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		b.WriteString("--" + boundary + "\r\n")
		header("Content-Type", part.ctype+"; charset=utf-8")
		header("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		qp := quotedprintable.NewWriter(&b)
		if _, err := qp.Write([]byte(strings.ReplaceAll(part.body, "\r\n", "\n"))); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
		b.WriteString("\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.Bytes(), nil
}
