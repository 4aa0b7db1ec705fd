package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Logout reaches every client that took part in a browser session (OpenID Connect Back-Channel and
// Front-Channel Logout 1.0). A client takes part when a code or an access token is issued to it through the
// session; session_clients records that, only for clients with a logout URI (recording costs a statement per
// token, spent only where it is needed). When the session ends (endSessions, the one place every way of ending
// one goes through), a back-channel logout message for each such client is enqueued in the same transaction.

// recordSessionClient notes, in the transaction of the token's insert, that the requesting client took part in
// the session sid. A client whose logout URI is set later is not known to the sessions it joined before.
func (s *Store) recordSessionClient(ctx context.Context, sid string, client any, now time.Time) error {
	c, ok := client.(interface {
		GetID() string
		HasLogoutURI() bool
	})
	if sid == "" || !ok || !c.HasLogoutURI() {
		return nil
	}
	q := "INSERT INTO session_clients (sid, client_id, created_at) SELECT ?, ?, ? " +
		"WHERE EXISTS (SELECT 1 FROM browser_sessions WHERE id = ?) ON CONFLICT (sid, client_id) DO NOTHING"
	if _, err := s.pool(ctx).ExecContext(ctx, s.bind(q), sid, c.GetID(), dbTime(now), sid); err != nil {
		return fmt.Errorf("record session client: %w", mapErr(s.translate(err)))
	}
	return nil
}

// enqueueBackchannelLogouts enqueues, inside tx, a back-channel logout message for every client with a
// backchannel_logout_uri that took part in one of the sessions ids.
func enqueueBackchannelLogouts(tx *gorm.DB, ids []string, now time.Time) error {
	var rows []struct {
		SID      string `gorm:"column:sid"`
		ClientID string `gorm:"column:client_id"`
		UserID   string `gorm:"column:user_id"`
		URI      string `gorm:"column:uri"`
	}
	err := tx.Raw("SELECT sc.sid AS sid, sc.client_id AS client_id, bs.user_id AS user_id, c.backchannel_logout_uri AS uri "+
		"FROM session_clients sc JOIN browser_sessions bs ON bs.id = sc.sid JOIN clients c ON c.id = sc.client_id "+
		"WHERE sc.sid IN ? AND c.backchannel_logout_uri <> '' ORDER BY sc.sid, sc.client_id", ids).Scan(&rows).Error
	if err != nil {
		return mapErr(err)
	}
	for _, r := range rows {
		msg := BackchannelLogout{ClientID: r.ClientID, Subject: r.UserID, SID: r.SID}
		if _, err := enqueueOutbox(tx, OutboxBackchannelLogout, r.URI, msg, now); err != nil {
			return err
		}
	}
	return nil
}

// FrontchannelLogout is where the signed-out page sends the browser for one client: its frontchannel_logout_uri
// and whether it wants iss and sid.
type FrontchannelLogout struct {
	ClientID        string
	URI             string
	SessionRequired bool
}

// FrontchannelLogouts returns the front-channel logout URIs of the clients that took part in the session sid,
// ended or not.
func (s *Store) FrontchannelLogouts(ctx context.Context, sid string) ([]FrontchannelLogout, error) {
	var rows []struct {
		ClientID string `gorm:"column:client_id"`
		URI      string `gorm:"column:uri"`
		Required bool   `gorm:"column:required"`
	}
	err := s.conn(ctx).Raw("SELECT c.id AS client_id, c.frontchannel_logout_uri AS uri, "+
		"c.frontchannel_logout_session_required AS required FROM session_clients sc JOIN clients c ON c.id = sc.client_id "+
		"WHERE sc.sid = ? AND c.frontchannel_logout_uri <> '' ORDER BY c.id", sid).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("front-channel logouts: %w", mapErr(err))
	}
	out := make([]FrontchannelLogout, len(rows))
	for i, r := range rows {
		out[i] = FrontchannelLogout{ClientID: r.ClientID, URI: r.URI, SessionRequired: r.Required}
	}
	return out, nil
}
