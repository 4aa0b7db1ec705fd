package app

import (
	"crypto/rand"
	"encoding/hex"
	"os"

	"github.com/latchkey/latchkey/mailer"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/outbox"
)

// outboxWorker is this node's deliverer of the outbox: back-channel logout tokens, signed with the provider's
// key at each attempt, webhook events, signed with each webhook's secret, and, with LATCHKEY_SMTP_URL, account mail. Its node name (host and a random suffix) tells its leases from other nodes'.
func (a *app) outboxWorker() *outbox.Worker {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	node := host + "-" + hex.EncodeToString(b[:])
	senders := map[string]outbox.Sender{
		models.OutboxBackchannelLogout: &outbox.Backchannel{
			Tokens: a.prov,
			Client: outbox.NewHTTPClient(outbox.DefaultTimeout, a.cfg.BackchannelLogoutAllowPrivate),
			Now:    a.clock,
		},
		models.OutboxWebhook: &outbox.Webhook{
			Store: a.store, Secrets: outbox.NewWebhookSecrets(a.secret),
			Client: outbox.NewHTTPClient(outbox.DefaultTimeout, a.cfg.WebhookAllowPrivate), Now: a.clock,
		},
	}
	if a.smtp != nil {
		senders[models.OutboxMail] = &mailer.Sender{SMTP: a.smtp}
		if a.mail != nil {
			senders[models.OutboxMailRequest] = &outbox.MailRequests{Store: a.store, Compose: a.mail.Compose, ComposeLink: a.mail.ComposeLink, Now: a.clock}
		}
	}
	return outbox.New(a.store, senders, outbox.Options{
		Node: node, Poll: a.cfg.OutboxPoll, RetryBase: a.cfg.OutboxRetryBase, MaxAttempts: a.cfg.OutboxMaxAttempts, Now: a.clock,
		Logger: a.logger.With("component", "outbox"),
	})
}

// composeMail is the token API's mail renderer; nil without LATCHKEY_SMTP_URL.
func (a *app) composeMail() models.ComposeMail {
	if a.mail == nil {
		return nil
	}
	return a.mail.Compose
}
