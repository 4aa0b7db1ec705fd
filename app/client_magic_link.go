package app

import (
	"flag"
	"strings"

	"github.com/latchkey/latchkey/models"
)

// magicLinkFlag is --magic-link-url: the client's own page that a passwordless sign-in mail links to. Unset means
// not given; on update, "" (or "-") removes it. Whether it is usable is the client's rule (models.Client.Validate).
type magicLinkFlag struct{ url optionalString }

func (m *magicLinkFlag) register(fs *flag.FlagSet) {
	fs.Var(&m.url, "magic-link-url", "https URL (http on localhost) of the app's page a passwordless sign-in mail links to; "+
		"it receives ?token=... and calls POST /api/v1/auth/otp/verify (\"-\": remove it)")
}

func (m magicLinkFlag) apply(cl *models.Client) {
	if m.url.set {
		cl.MagicLinkURL = strings.TrimSpace(m.url.value)
		if cl.MagicLinkURL == "-" {
			cl.MagicLinkURL = ""
		}
	}
}
