package templates

import "embed"

// MailFS holds the mail templates: for each purpose NAME, NAME.txt.tmpl (text/template; it also defines
// "subject") and NAME.html.tmpl (html/template). Their data is package mailer's MailData. A deployment may
// replace any of them with a file of the same name (LATCHKEY_MAIL_TEMPLATES_DIR).
//
//go:embed mail/*.tmpl
var MailFS embed.FS
