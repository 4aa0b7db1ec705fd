package templates

import (
	"html/template"
	"net/http"
	"strings"
	"time"
)

// AccountPage is a signed-in user's own account: profile, email, password, second factors, linked providers. Every
// form posts (csrf_token) to its own path under /account, given here, and the page comes back with Flash or
// Error set on the section the form belonged to (Section).
type AccountPage struct {
	CSRFToken string
	Email     string
	Name      string
	Pool      string // shown for a pool other than the default one
	Verified  bool   // the email address is verified
	Flash     string // what the last form did, shown with role="status"
	Error     string // why the last form did nothing, shown with role="alert" in Section
	Section   string // "profile", "email", "password", "factors", "providers"

	// ResendAction is the "resend verification" form's target; "" when the server sends no mail.
	ResendAction   string
	ProfileAction  string
	PasswordAction string
	// ForgotURL sets a password by mail, for a user who signs in through another provider and has none of their
	// own; "" when the server sends no mail.
	ForgotURL string

	// Factors lists every second factor, whatever its kind; RemoveAction removes one (factor_id).
	Factors      []FactorRow
	RemoveAction string
	// NeedPassword: changing factors asks for the current password (the sign-in is not recent).
	NeedPassword bool
	// EnrolAction starts an authenticator app's enrolment; "" when the pool allows none or one is set up.
	EnrolAction string
	// Enrolment is an enrolment waiting for its first code (posted to its ConfirmAction).
	Enrolment *TOTPEnrolment
	// RecoveryAction makes new recovery codes; "" when the user has no active factor.
	RecoveryAction    string
	RecoveryCodesLeft int
	// RecoveryCodes are new recovery codes, shown this once.
	RecoveryCodes []string
	PasskeysURL   string

	Providers    []ProviderRow
	UnlinkAction string

	SessionsURL string
}

// FactorRow is one second factor of the user.
type FactorRow struct {
	ID, Kind, Name      string
	Active              bool
	CreatedAt, LastUsed time.Time
}

// KindName is how the page names a factor's kind.
func (f FactorRow) KindName() string {
	switch f.Kind {
	case "totp":
		return "Authenticator app"
	case "webauthn":
		return "Passkey"
	}
	return f.Kind
}

// TOTPEnrolment is an authenticator app being set up: its QR code (a data:image/png URI) and its secret in base32,
// for typing into an app that cannot scan.
type TOTPEnrolment struct {
	QRCode        string
	Secret        string
	ConfirmAction string
}

// ProviderRow is another provider's account linked to the user (provider_id and subject identify it).
type ProviderRow struct {
	ProviderID, Name, Subject string
	LinkedAt                  time.Time
}

// pngDataURL lets the page show a QR code produced by the server: only a PNG data URI passes, anything else
// becomes an empty source.
func pngDataURL(s string) template.URL {
	if strings.HasPrefix(s, "data:image/png;base64,") && !strings.ContainsAny(s, "\"' <>") {
		return template.URL(s)
	}
	return ""
}

// Account renders the account page.
func (r *Renderer) Account(w http.ResponseWriter, status int, p AccountPage) error {
	return r.render(w, status, r.account, p, formActions(p.ProfileAction, nil))
}
