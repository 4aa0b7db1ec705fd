package models

import (
	"context"
	"encoding/json"

	"gorm.io/gorm"
)

// clientSecretFields are the parts of a client's JSON an event shows only as "(set)": keys (public ones too, by
// rule: an event says that a key changed, not what it is). The secret hash and sealed secret have no JSON form.
var clientSecretFields = []string{"jwks", "encryption_jwk", "access_token_encryption_jwk"}

// clientAuditView is what a client event shows of client c as stored (nil: none, as before a creation).
func clientAuditView(c *Client) map[string]any {
	if c == nil {
		return nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	for _, k := range clientSecretFields {
		if v, _ := m[k].(string); v != "" {
			m[k] = "(set)"
		} else {
			delete(m, k)
		}
	}
	delete(m, "created_at")
	delete(m, "updated_at")
	return m
}

// storedClient reads client id in tx as it is now, for an event's before or after; nil if there is none.
func storedClient(tx *gorm.DB, id string) *Client {
	var row clientRow
	if tx.Where("id = ?", id).Take(&row).Error != nil {
		return nil
	}
	c, err := row.client()
	if err != nil {
		return nil
	}
	return c
}

// recordClientChange records evType for client id in tx: the client as it was (before, nil for a creation) and
// as it now is in tx (nil after a deletion), each without secrets or keys.
func recordClientChange(ctx context.Context, tx *gorm.DB, evType, id string, before *Client) error {
	after := storedClient(tx, id)
	ev := Event{Type: evType, ClientID: id, Details: map[string]any{}}
	for _, c := range []*Client{after, before} {
		if c != nil {
			ev.Pool = poolOrDefault(c.Pool)
		}
	}
	if evType != EventSecretRotated {
		if b := clientAuditView(before); b != nil {
			ev.Details["before"] = b
		}
		if a := clientAuditView(after); a != nil {
			ev.Details["after"] = a
		}
	}
	return recordEvent(ctx, tx, ev)
}

// recordPoolChange records evType for pool name in tx, with the pool as it was (nil for a creation) and is.
func recordPoolChange(ctx context.Context, tx *gorm.DB, evType, name string, before *Pool) error {
	ev := Event{Type: evType, Pool: name, Details: map[string]any{}}
	if before != nil {
		ev.Details["before"] = before
	}
	var row poolRow
	if tx.Where("name = ?", name).Take(&row).Error == nil {
		if p, err := row.pool(); err == nil {
			ev.Details["after"] = p
		}
	}
	return recordEvent(ctx, tx, ev)
}

// storedPool reads pool name in tx as it is now; nil if there is none.
func storedPool(tx *gorm.DB, name string) *Pool {
	var row poolRow
	if tx.Where("name = ?", name).Take(&row).Error != nil {
		return nil
	}
	p, err := row.pool()
	if err != nil {
		return nil
	}
	return p
}
