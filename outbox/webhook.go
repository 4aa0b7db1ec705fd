package outbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/models"
)

// Webhook deliveries (models.OutboxWebhook). The scheme, as the README documents it for receivers:
//
//	POST <url>
//	Content-Type: application/json
//	Latchkey-Event-Id: evt_…          (the body's id; the same on every delivery of the event: deduplicate on it)
//	Latchkey-Event-Type: user.created
//	Latchkey-Delivery-Id: obx_…       (this delivery; a redelivery has a new one)
//	Latchkey-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256(secret, t + "." + body)>
//
// The receiver recomputes v1 over the raw body with its secret, compares in constant time, and refuses a t too
// far from its clock (replay). t is the time of this attempt, so a retry is signed afresh.

// Webhook headers.
const (
	HeaderSignature  = "Latchkey-Signature"
	HeaderEventID    = "Latchkey-Event-Id"
	HeaderEventType  = "Latchkey-Event-Type"
	HeaderDeliveryID = "Latchkey-Delivery-Id"
)

// WebhookSignature is the Latchkey-Signature value of body, signed with secret at t.
func WebhookSignature(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// WebhookStore is what the webhook sender reads.
type WebhookStore interface {
	WebhookByID(ctx context.Context, id string) (*models.Webhook, error)
}

// Webhook sends OutboxWebhook messages: it reads the webhook (URL, secret, enabled) at each attempt, signs the
// stored body now and POSTs it. Any 2xx is delivered; anything else, or no answer within the client's timeout,
// is retried. A webhook deleted meanwhile has nothing left to deliver to; a disabled one holds its deliveries
// (retried, in the end dead, redeliverable).
type Webhook struct {
	Store   WebhookStore
	Secrets *WebhookSecrets
	Client  *http.Client // NewHTTPClient: timeout, no redirects, the public-address dial guard
	Now     func() time.Time
}

func (wh *Webhook) Send(ctx context.Context, m models.OutboxMessage) error {
	w, err := wh.Store.WebhookByID(ctx, m.Target)
	if errors.Is(err, models.ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("webhook: load: %w", err)
	}
	if !w.Enabled {
		return errors.New("webhook disabled")
	}
	secret, err := wh.Secrets.Open(w.ID, w.SealedSecret)
	if err != nil {
		return err
	}
	var head struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	_ = json.Unmarshal(m.Payload, &head) // the body is ours; headers are a convenience
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(m.Payload))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Latchkey-Webhook/1")
	req.Header.Set(HeaderEventID, head.ID)
	req.Header.Set(HeaderEventType, head.Type)
	req.Header.Set(HeaderDeliveryID, m.ID)
	req.Header.Set(HeaderSignature, WebhookSignature(secret, wh.Now(), m.Payload))
	resp, err := wh.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is logged apart, redacted
		}
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook: HTTP %d", resp.StatusCode)
	}
	return nil
}

// WebhookSecrets makes and keeps webhook signing secrets: 256 random bits, shown once, kept sealed (AES-256-GCM
// under a key derived from the system secret for this use alone, bound to the webhook id, so a sealed secret
// copied onto another webhook does not open).
type WebhookSecrets struct {
	sealer *keys.Sealer
}

// NewWebhookSecrets derives the sealing key from the system secret.
func NewWebhookSecrets(systemSecret []byte) *WebhookSecrets {
	s, err := keys.NewSealer(keys.Derive(systemSecret, "webhook secret v1"))
	if err != nil {
		panic(fmt.Sprintf("outbox: webhook secret sealer: %v", err)) // Derive returns 32 bytes, which NewSealer takes
	}
	return &WebhookSecrets{sealer: s}
}

func webhookAAD(id string) []byte { return []byte("latchkey/webhook-secret/v1\x00" + id) }

// New returns a fresh secret for webhook id ("whsec_" + 43 base64url characters) and the same sealed.
func (s *WebhookSecrets) New(id string) (secret, sealed string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	secret = "whsec_" + base64.RawURLEncoding.EncodeToString(b[:])
	c, err := s.sealer.Seal([]byte(secret), webhookAAD(id))
	if err != nil {
		return "", "", fmt.Errorf("seal webhook secret: %w", err)
	}
	return secret, base64.RawURLEncoding.EncodeToString(c), nil
}

// Open returns the secret New sealed for webhook id: the HMAC key is the whole secret string, as shown.
func (s *WebhookSecrets) Open(id, sealed string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return nil, errors.New("open webhook secret: not base64url")
	}
	secret, err := s.sealer.Open(b, webhookAAD(id))
	if err != nil {
		return nil, fmt.Errorf("open webhook secret of %q (sealed under another system secret?): %w", id, err)
	}
	return secret, nil
}
