package models

import (
	"encoding/json"
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
