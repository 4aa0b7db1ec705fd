package app

import (
	"flag"
	"strings"

	"github.com/latchkey/latchkey/models"
)

// logoutFlags are where logout reaches the client (OpenID Connect Back-Channel and Front-Channel Logout 1.0):
// --backchannel-logout-uri, --frontchannel-logout-uri and whether each needs the session id. Unset means not
// given; on update, a URI of "" (or "-") removes it. Whether they are usable is the client's rule
// (models.Client.Validate).
type logoutFlags struct {
	backURI, frontURI         optionalString
	backSession, frontSession optionalBool
}

func (l *logoutFlags) register(fs *flag.FlagSet, create bool) {
	rm := ""
	if !create {
		rm = " (\"\": remove it)"
	}
	fs.Var(&l.backURI, "backchannel-logout-uri", "https URL (http on localhost) the server POSTs a signed logout token to when a session the client took part in ends"+rm)
	fs.Var(&l.backSession, "backchannel-logout-session-required", "the client needs the session id (sid) in its logout tokens (always sent)")
	fs.Var(&l.frontURI, "frontchannel-logout-uri", "URL on the client's own site (an origin of its redirect URIs) loaded in a hidden iframe of the signed-out page"+rm)
	fs.Var(&l.frontSession, "frontchannel-logout-session-required", "add iss and sid to the front-channel logout URL")
}

// apply copies the given settings onto the client.
func (l logoutFlags) apply(cl *models.Client) {
	uri := func(dst *string, v optionalString) {
		if v.set {
			*dst = strings.TrimSpace(v.value)
			if *dst == "-" {
				*dst = ""
			}
		}
	}
	uri(&cl.BackchannelLogoutURI, l.backURI)
	uri(&cl.FrontchannelLogoutURI, l.frontURI)
	if l.backSession.set {
		cl.BackchannelLogoutSessionRequired = l.backSession.value
	}
	if l.frontSession.set {
		cl.FrontchannelLogoutSessionRequired = l.frontSession.value
	}
}
