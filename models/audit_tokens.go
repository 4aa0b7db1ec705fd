package models

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/ory/fosite"
)

// grantDetails caches the encoded details of token events by grant type: a token request pays no JSON encoding
// for its event. Grant types reach the store only once fosite has matched them to a composed handler, so the
// cache is bounded by the grants the server offers.
var grantDetails sync.Map // grant type → `{"grant_type":"…"}`

func grantDetailsJSON(grant string) string {
	if v, ok := grantDetails.Load(grant); ok {
		return v.(string)
	}
	b, _ := json.Marshal(map[string]string{"grant_type": grant}) // a map of strings always encodes
	grantDetails.Store(grant, string(b))
	return string(b)
}

// tokenEvent is the event of storing an access token: token.refreshed for the refresh grant, else
// token.issued, with the grant type and client, never the token. A client_credentials token has no user.
func tokenEvent(req fosite.Requester) *Event {
	grant := req.GetRequestForm().Get("grant_type")
	ev := &Event{Type: EventTokenIssued, ClientID: req.GetClient().GetID()}
	if c, ok := req.GetClient().(*Client); ok {
		ev.Pool = poolOrDefault(c.Pool)
	}
	switch grant {
	case "":
		grant = "implicit" // issued by the authorization endpoint
	case "refresh_token":
		ev.Type = EventTokenRefreshed
	}
	if grant != "client_credentials" && req.GetSession() != nil {
		ev.UserID = req.GetSession().GetSubject()
	}
	ev.detailsJSON = grantDetailsJSON(grant)
	return ev
}

// insertWithEventSQLite stores a token row (stmt, args: insertRowEvent's) and its event on SQLite for a caller
// without a transaction (a client_credentials token): one transaction of its own on the single writer
// connection, begun without gorm's transaction machinery, which would cost more than the event's INSERT.
func (s *Store) insertWithEventSQLite(ctx context.Context, stmt string, args []any, check *ClientCheck, ev *Event) error {
	evArgs, poolSQL := auditArgs(ctx, *ev, s.now())
	if unstorableArgs(args) {
		return errUnstorableText
	}
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(noteFault(ctx, err))
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, stmt, args...)
	if err != nil {
		return insertError(s.translate(noteFault(ctx, err)))
	}
	inserted := true
	if check != nil {
		if inserted, err = settleInsert(check, res); err != nil {
			return err
		}
	}
	if inserted {
		if _, err := tx.ExecContext(ctx, auditInsertSQL(poolSQL), evArgs...); err != nil {
			return fmt.Errorf("record %s event: %w", ev.Type, mapErr(noteFault(ctx, err)))
		}
	}
	return mapErr(noteFault(ctx, tx.Commit()))
}
