package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/models"
)

// MailRequestStore is what MailRequests reads and writes.
type MailRequestStore interface {
	ClientByID(ctx context.Context, id string) (*models.Client, error)
	SendMailToken(ctx context.Context, pool, email, purpose string, now time.Time, compose models.ComposeMail) error
}

// MailRequests handles OutboxMailRequest messages: it issues the mail token and queues its mail (an OutboxMail
// message, delivered by the mail sender), or does nothing when the address has no account (or a verified one,
// for a verification). A sign-in mail links to the client's own page (models.Client.MagicLink). Handled twice
// (a lease lost after the commit), it sends a second mail that retires the first: never a lost one.
type MailRequests struct {
	Store MailRequestStore
	// Compose renders a mail whose link opens this server's page; ComposeLink one whose link is given whole.
	Compose     models.ComposeMail
	ComposeLink func(purpose, to, link, code string) (models.MailMessage, error)
	Now         func() time.Time
}

func (m *MailRequests) Send(ctx context.Context, msg models.OutboxMessage) error {
	var p models.MailRequest
	if err := json.Unmarshal(msg.Payload, &p); err != nil {
		return fmt.Errorf("mail request payload: %w", err)
	}
	compose := m.Compose
	if p.Purpose == models.MailSignIn {
		c, err := m.Store.ClientByID(ctx, p.ClientID)
		if errors.Is(err, models.ErrNotFound) {
			return nil // the client went meanwhile: nobody could use the code
		} else if err != nil {
			return fmt.Errorf("mail request: load client: %w", err)
		}
		compose = func(purpose, to, token, code string) (models.MailMessage, error) {
			return m.ComposeLink(purpose, to, c.MagicLink(token), code)
		}
	}
	err := m.Store.SendMailToken(ctx, p.Pool, p.Email, p.Purpose, m.Now(), compose)
	if errors.Is(err, models.ErrNotFound) || errors.Is(err, models.ErrConflict) {
		return nil // no such account, disabled, or already verified: no mail, and nothing to retry
	}
	return err
}
