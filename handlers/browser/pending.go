package browser

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/models"
)

// pendingRequest is an authorization request waiting for the user to sign in. It travels with the browser, in
// the sign-in form, sealed under a key only this server has, instead of as a row: opening the authorization
// endpoint anonymously stores nothing. It grants nothing (anyone can start an authorization request), so a
// copy replayed in another browser is harmless; the seal keeps its request time honest (prompt=login compares
// the sign-in with it) and its life short. A row is made only once someone has signed in for it.
type pendingRequest struct {
	Query       string    `json:"q"` // the parameters, PAR requests expanded; at most models.MaxChallengeQuery bytes
	ClientID    string    `json:"c"`
	RequestedAt time.Time `json:"t"`
	ExpiresAt   time.Time `json:"e"`
	// Redirect is the redirect URI fosite resolved for the request (the registered one when the request names
	// none), where every sign-in page's form post ends: see redirectURI.
	Redirect string `json:"u,omitempty"`
}

// redirectURI is where a sign-in for p ends, which the CSP form-action of every page on the way must allow
// (browsers apply it to the redirects after a post): the one owner of that rule for the sign-in pages. A request
// sealed before Redirect was kept falls back to its redirect_uri parameter.
func (p pendingRequest) redirectURI() string {
	if p.Redirect != "" {
		return p.Redirect
	}
	q, _ := url.ParseQuery(p.Query)
	return q.Get("redirect_uri")
}

// pendingRedirect is redirectURI of the sealed request s ("" for none, or one that does not open).
func (h *Browser) pendingRedirect(s string) string {
	if s == "" {
		return ""
	}
	p, err := h.openPending(s, h.Now())
	if err != nil {
		return ""
	}
	return p.redirectURI()
}

// pendingAAD binds a sealed value to this use: nothing else sealed under the same key opens as a request.
var pendingAAD = []byte("latchkey/pending-authorization-request/v1")

// maxSealedPending bounds what openPending decodes: base64 of the nonce, an 8 KiB query, the other fields and the tag.
const maxSealedPending = (models.MaxChallengeQuery+512)*4/3 + 64

var errPendingInvalid = errors.New("sealed authorization request is malformed, tampered with or expired")

func newPendingSealer(secret []byte) *keys.Sealer {
	s, err := keys.NewSealer(keys.Derive(secret, "pending-authorization-request"))
	if err != nil {
		// Derive always returns 32 bytes, which NewSealer accepts: this cannot happen.
		panic(fmt.Sprintf("handlers: pending request sealer: %v", err))
	}
	return s
}

// sealPending returns p sealed and base64url-encoded, ready for a hidden form field.
func (h *Browser) sealPending(p pendingRequest) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the query is full of '&': keep it one byte each
	if err := enc.Encode(p); err != nil {
		return "", fmt.Errorf("seal pending request: %w", err)
	}
	sealed, err := h.pending.Seal(buf.Bytes(), pendingAAD)
	if err != nil {
		return "", fmt.Errorf("seal pending request: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// openPending returns the request sealed in s; errPendingInvalid if s was not sealed by this server for this
// use, or has expired at now.
func (h *Browser) openPending(s string, now time.Time) (pendingRequest, error) {
	var p pendingRequest
	if len(s) > maxSealedPending {
		return p, errPendingInvalid
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return p, errPendingInvalid
	}
	plain, err := h.pending.Open(raw, pendingAAD)
	if err != nil || json.Unmarshal(plain, &p) != nil || !now.Before(p.ExpiresAt) {
		return pendingRequest{}, errPendingInvalid
	}
	return p, nil
}

// signedInFor turns a pending request into a challenge bound to browser session browserSessionID, whose user
// has just signed in for it at now. Only this session can consent to or finish it.
func (h *Browser) signedInFor(ctx context.Context, p pendingRequest, browserSessionID string, now time.Time) (*models.AuthChallenge, error) {
	// Another node's clock may run ahead: a request is never made after the sign-in that answers it.
	requestedAt := p.RequestedAt
	if requestedAt.After(now) {
		requestedAt = now
	}
	return h.Store.CreateAuthChallenge(ctx, models.AuthChallenge{
		Query: p.Query, ClientID: p.ClientID, BrowserSessionID: browserSessionID, LoginAt: &now,
		CreatedAt: requestedAt, ExpiresAt: now.Add(h.ChallengeTTL),
	})
}
