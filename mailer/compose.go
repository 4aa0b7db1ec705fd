package mailer

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/url"
	"os"
	"path"
	texttemplate "text/template"
	"time"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/templates"
)

// MailData is what a mail template sees.
type MailData struct {
	Email string // the recipient
	Link  string // the page that takes the link token
	Code  string // the 6-digit code
}

// Composer renders account mails; it is safe for concurrent use.
type Composer struct {
	from  string
	base  string // issuer URL without a trailing slash
	now   func() time.Time
	text  map[string]*texttemplate.Template
	html  map[string]*htmltemplate.Template
	links map[string]string
}

// Purposes and the pages their links open (handlers/accountmail serves them). A sign-in mail's link is the
// client's own page (models.Client.MagicLinkURL), given to ComposeLink.
var purposeLinks = map[string]string{
	models.MailVerifyEmail:   "/verify-email",
	models.MailResetPassword: "/reset-password",
	models.MailSignIn:        "",
}

// NewComposer parses the mail templates: the embedded ones, each replaced by a file of the same name in dir
// when dir is not empty and has it. from is the From header; issuer the base of the links.
func NewComposer(from, issuer, dir string, now func() time.Time) (*Composer, error) {
	if _, err := (Message{From: from, To: "a@example.com"}).Bytes(); err != nil {
		return nil, fmt.Errorf("LATCHKEY_SMTP_FROM: %w", err)
	}
	c := &Composer{from: from, base: trimSlash(issuer), now: now, text: map[string]*texttemplate.Template{},
		html: map[string]*htmltemplate.Template{}, links: purposeLinks}
	read := func(name string) ([]byte, error) {
		if dir != "" {
			b, err := os.ReadFile(path.Join(dir, name))
			if err == nil {
				return b, nil
			}
			if !os.IsNotExist(err) {
				return nil, err
			}
		}
		return fs.ReadFile(templates.MailFS, "mail/"+name)
	}
	for p := range purposeLinks {
		src, err := read(p + ".txt.tmpl")
		if err != nil {
			return nil, fmt.Errorf("mail template %s.txt.tmpl: %w", p, err)
		}
		t, err := texttemplate.New(p).Option("missingkey=error").Parse(string(src))
		if err != nil || t.Lookup("subject") == nil {
			return nil, fmt.Errorf("mail template %s.txt.tmpl (must define \"subject\"): %v", p, err)
		}
		c.text[p] = t
		src, err = read(p + ".html.tmpl")
		if err != nil {
			return nil, fmt.Errorf("mail template %s.html.tmpl: %w", p, err)
		}
		h, err := htmltemplate.New(p).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("mail template %s.html.tmpl: %w", p, err)
		}
		c.html[p] = h
	}
	return c, nil
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// Compose renders the mail of purpose to the address to (models.ComposeMail), its link on this server.
func (c *Composer) Compose(purpose, to, token, code string) (models.MailMessage, error) {
	if c.links[purpose] == "" {
		return models.MailMessage{}, fmt.Errorf("no page on this server for %q mail links", purpose)
	}
	return c.ComposeLink(purpose, to, c.base+c.links[purpose]+"?"+url.Values{"token": {token}}.Encode(), code)
}

// ComposeLink renders the mail of purpose to the address to with link as it is ("": the template leaves the
// link out, if it can).
func (c *Composer) ComposeLink(purpose, to, link, code string) (models.MailMessage, error) {
	tt, ok := c.text[purpose]
	if !ok {
		return models.MailMessage{}, fmt.Errorf("no mail template for %q", purpose)
	}
	if _, err := Address(to); err != nil {
		return models.MailMessage{}, err
	}
	data := MailData{Email: to, Link: link, Code: code}
	var subject, text, html bytes.Buffer
	if err := tt.ExecuteTemplate(&subject, "subject", data); err != nil {
		return models.MailMessage{}, fmt.Errorf("render %s subject: %w", purpose, err)
	}
	if err := tt.Execute(&text, data); err != nil {
		return models.MailMessage{}, fmt.Errorf("render %s text: %w", purpose, err)
	}
	if err := c.html[purpose].Execute(&html, data); err != nil {
		return models.MailMessage{}, fmt.Errorf("render %s html: %w", purpose, err)
	}
	msg, err := Message{From: c.from, To: to, Subject: subject.String(), Text: text.String(), HTML: html.String(), Date: c.now()}.Bytes()
	if err != nil {
		return models.MailMessage{}, err
	}
	from, _ := parseFrom(c.from)
	return models.MailMessage{From: from, To: to, Message: string(msg)}, nil
}
