// Package templates holds Latchkey's HTML pages and stylesheet, embedded in the binary and parsed once.
//
// Pages are rendered through typed methods on Renderer; template names never leave this package. Every page
// is plain HTML that works without JavaScript. The exceptions are FormPostTemplate, which fosite executes
// itself for response_mode=form_post: it auto-submits when scripts run and shows a Continue button otherwise,
// and passkeys (WebAuthn has no form of its own): pages that offer them load PasskeyScript from this origin,
// and without it say that passkeys need JavaScript.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// CSSPath is where the caller serves CSS(); the layout links to it.
const CSSPath = "/assets/latchkey.css"

//go:embed html/*.html
var pageFS embed.FS

//go:embed static/latchkey.css
var stylesheet []byte

// PasskeyScriptPath is where the caller serves PasskeyScript(); pages offering passkeys load it.
const PasskeyScriptPath = "/assets/passkey.js"

//go:embed static/passkey.js
var passkeyScript []byte

// PasskeyScript returns the passkey script, to be served at PasskeyScriptPath (text/javascript).
func (r *Renderer) PasskeyScript() []byte { return passkeyScript }

// Renderer renders Latchkey's pages. It is safe for concurrent use.
type Renderer struct {
	login, consent, device, errorPage, logout, loggedOut, sessions, formPost, accountMail, mfa, account, passkeys *template.Template
	// passkeySignIn is where the sign-in page's passkey form posts ("" offers none): see OfferPasskeySignIn.
	passkeySignIn string
}

// OfferPasskeySignIn puts a "Sign in with a passkey" form on every sign-in page, posting to path (with the sign-in
// page's query) and asking path+"/options" for its options. Call it before serving.
func (r *Renderer) OfferPasskeySignIn(path string) { r.passkeySignIn = path }

// LoginPage is the username/password form.
type LoginPage struct {
	Action     string // form action URL (POST)
	CSRFToken  string // hidden input csrf_token
	Challenge  string // hidden input challenge (opaque id of the pending authorization request); omitted if ""
	ClientName string // "Sign in to continue to ClientName"; a generic heading if ""
	Email      string // prefills the email input
	Error      string // shown above the form with role="alert", referenced by the inputs' aria-describedby
	// Providers are "Sign in with ..." buttons, each its own form posting CSRFToken and Challenge to Action.
	Providers []ProviderButton
	ForgotURL string // the "Forgot password?" link; omitted if "" (the server sends no mail)
	// PasskeyAction and PasskeyOptionsURL are the passkey form's (see OfferPasskeySignIn); set by Login.
	PasskeyAction, PasskeyOptionsURL string

	// FormActionExtra lists further sources for the CSP form-action directive (see ConsentPage).
	FormActionExtra []string
}

// ProviderButton is a sign-in page's button for another provider.
type ProviderButton struct {
	Action string // form action URL (POST)
	Name   string // "Sign in with Name"
	// Upstream is where the action redirects (its authorization endpoint, or an URL of its origin): CSP
	// form-action covers redirects after a form submission too.
	Upstream string
}

// ScopeInfo is one requested scope as shown on the consent page.
type ScopeInfo struct {
	Name, Description string
}

// ConsentPage asks the user to allow or deny a client's request; the form posts decision=allow or decision=deny.
type ConsentPage struct {
	Action, CSRFToken, Challenge string
	ClientName                   string
	UserEmail                    string
	Scopes                       []ScopeInfo

	// FormActionExtra lists further sources for the CSP form-action directive, as URLs or origins. Browsers
	// apply form-action to the redirects that follow a submission, so when the POST answers with a redirect
	// to the client (https://app.example/callback?code=...), that origin must be listed here or the
	// browser blocks the redirect. Each entry is reduced to its origin (or "scheme:" for a custom scheme);
	// entries that do not parse are dropped.
	FormActionExtra []string
}

// DevicePage is the device sign-in page (RFC 8628's verification URI). Step "enter" (the default) asks for the
// user code, with Error after a wrong one; "confirm" names the client and its scopes with Allow and Deny
// (decision=allow|deny, user_code, csrf_token); "done" shows Message. The forms post to Action.
type DevicePage struct {
	Step              string
	Action, CSRFToken string
	UserCode, Error   string
	ClientName        string
	UserEmail         string
	Scopes            []ScopeInfo
	Message           string
}

// AccountMailPage is one step of email verification or password reset, each a plain form posting to Action
// (csrf_token and, where there is one, token): "verify" confirms an email (the mail's link leads here; the
// page only posts, so a mail scanner that follows the link verifies nothing); "forgot" asks for the email;
// "sent" says to check the mail; "reset" asks for the new password; "done" shows Message with a link to
// SignInURL. Error is shown with role="alert".
type AccountMailPage struct {
	Step              string
	Action, CSRFToken string
	Token             string
	Email             string
	Error, Message    string
	SignInURL         string
}

// MFAPage is the second step of a sign-in: the code from an authenticator app (field code, button factor=totp)
// or a recovery code (field recovery_code, factor=recovery), each form posting csrf_token and mfa_token to Action;
// Error is shown with role="alert". With Enrol it only says to set up an authenticator in the app first.
type MFAPage struct {
	Action, CSRFToken string
	Token             string
	Error             string
	Enrol             bool
	// FormActionExtra lists further sources for the CSP form-action directive: the client's redirect URI, where
	// a right code's redirects end (see ConsentPage).
	FormActionExtra []string
	// Passkey is the JSON of the passkey assertion options (PasskeyScriptPath's script asks the authenticator and
	// posts field credential); "" offers no passkey.
	Passkey string
}

// PasskeyRow is one of the user's passkeys.
type PasskeyRow struct {
	ID, Name            string
	CreatedAt, LastUsed time.Time
	Synced              bool // backed up: a passkey the platform syncs between devices
}

// PasskeysPage lists the user's passkeys, each with a remove form (csrf_token, op=remove, factor_id), and the add
// form (csrf_token, op=add, name, credential: filled by PasskeyScript with options POSTed for to OptionsURL), all
// posting to Action. Without CanChange (no recent sign-in) it links to ReauthURL instead of the forms.
type PasskeysPage struct {
	UserEmail, CSRFToken string
	Action, OptionsURL   string
	Flash, Error         string
	Passkeys             []PasskeyRow
	CanChange            bool
	ReauthURL            string
}

// ErrorPage is a human-readable error. RequestID is shown as a small "Reference" if set.
type ErrorPage struct {
	Title, Message, RequestID string
}

// LogoutPage asks "Sign out of ClientName?"; the form posts decision=logout or decision=cancel.
type LogoutPage struct {
	Action, CSRFToken string
	ClientName        string
	Hidden            map[string]string // extra hidden inputs, rendered sorted by key

	// FormActionExtra lists further sources for the CSP form-action directive, e.g. the origin of the
	// post_logout_redirect_uri (see ConsentPage).
	FormActionExtra []string
}

// LoggedOutPage confirms the user is signed out.
type LoggedOutPage struct {
	Message string
	// FrontchannelLogouts are the clients' front-channel logout URLs (OpenID Connect Front-Channel Logout §3),
	// loaded in hidden iframes; the page's CSP allows framing their origins and nothing else.
	FrontchannelLogouts []string
	// ContinueURL, when set, is where the user goes on (the client's post_logout_redirect_uri) once the frames
	// have had their chance to load.
	ContinueURL string
}

// SessionRow is one of the user's sessions.
type SessionRow struct {
	ID                    string
	Device                string
	IP                    string
	CreatedAt, LastActive time.Time
	Current               bool
}

// SessionsPage lists the user's sessions with a form per row (csrf_token, session_id) and one form to end
// all the others (csrf_token, all_others=1), all posting to Action.
type SessionsPage struct {
	UserEmail string
	CSRFToken string
	Action    string // POST target for revocations
	Flash     string // e.g. "Session ended.", shown with role="status"
	Sessions  []SessionRow
}

// formPostData is what fosite's WriteAuthorizeFormPostResponse passes to the form_post template.
type formPostData struct {
	RedirURL   string
	Parameters url.Values
}

var funcs = template.FuncMap{
	"cssPath":       func() string { return CSSPath },
	"pngDataURL":    pngDataURL,
	"passkeyScript": func() string { return PasskeyScriptPath },
	"datetime": func(t time.Time) string {
		return t.UTC().Format(time.RFC3339)
	},
	"humanTime": func(t time.Time) string {
		return t.UTC().Format("2 Jan 2006 15:04 UTC")
	},
	"hasOthers": func(rows []SessionRow) bool {
		for _, s := range rows {
			if !s.Current {
				return true
			}
		}
		return false
	},
}

// New parses every template once. It also renders each page with empty data, so a template that
// parses but cannot be escaped or executed fails here rather than on a user's request.
func New() (*Renderer, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(pageFS, "html/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	r := &Renderer{}
	pages := []struct {
		file  string
		dst   **template.Template
		dummy any
	}{
		{"login.html", &r.login, LoginPage{Providers: []ProviderButton{{}}}},
		{"consent.html", &r.consent, ConsentPage{}},
		{"device.html", &r.device, DevicePage{}},
		{"error.html", &r.errorPage, ErrorPage{}},
		{"logout.html", &r.logout, LogoutPage{}},
		{"loggedout.html", &r.loggedOut, LoggedOutPage{}},
		{"sessions.html", &r.sessions, SessionsPage{Sessions: []SessionRow{{Current: true}, {}}}},
		{"formpost.html", &r.formPost, formPostData{Parameters: url.Values{"code": {""}}}},
		{"accountmail.html", &r.accountMail, AccountMailPage{}},
		{"mfa.html", &r.mfa, MFAPage{}},
		{"account.html", &r.account, AccountPage{Factors: []FactorRow{{}}, Enrolment: &TOTPEnrolment{}, RecoveryCodes: []string{""}, Providers: []ProviderRow{{}}}},
		{"passkeys.html", &r.passkeys, PasskeysPage{Passkeys: []PasskeyRow{{}}, CanChange: true}},
	}
	for _, p := range pages {
		set, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("clone layout for %s: %w", p.file, err)
		}
		if _, err := set.ParseFS(pageFS, "html/"+p.file); err != nil {
			return nil, fmt.Errorf("parse %s: %w", p.file, err)
		}
		t := set.Lookup(p.file)
		if t == nil {
			return nil, fmt.Errorf("parse %s: template not defined", p.file)
		}
		if err := t.Execute(io.Discard, p.dummy); err != nil {
			return nil, fmt.Errorf("check %s: %w", p.file, err)
		}
		*p.dst = t
	}
	return r, nil
}

// CSS returns the stylesheet, to be served at CSSPath (Content-Type text/css; charset=utf-8).
func (r *Renderer) CSS() []byte { return stylesheet }

// FormPostTemplate is the OAuth 2.0 Form Post Response Mode page, for fosite.Config.FormPostHTMLTemplate.
// It expects fosite's data (.RedirURL, .Parameters). It submits itself from the body's onload attribute
// when scripts may run and shows a Continue button when they may not. fosite writes that response itself,
// so none of the page headers set by the other methods apply to it.
func (r *Renderer) FormPostTemplate() *template.Template { return r.formPost }

// Login renders the sign-in form.
func (r *Renderer) Login(w http.ResponseWriter, status int, p LoginPage) error {
	if r.passkeySignIn != "" && p.PasskeyAction == "" {
		_, query, _ := strings.Cut(p.Action, "?")
		if query != "" {
			query = "?" + query
		}
		p.PasskeyAction, p.PasskeyOptionsURL = r.passkeySignIn+query, r.passkeySignIn+"/options"
	}
	extra := slices.Clone(p.FormActionExtra)
	for _, b := range p.Providers {
		extra = append(extra, b.Upstream)
	}
	return r.render(w, status, r.login, p, formActions(p.Action, extra))
}

// Consent renders the allow/deny form.
func (r *Renderer) Consent(w http.ResponseWriter, status int, p ConsentPage) error {
	return r.render(w, status, r.consent, p, formActions(p.Action, p.FormActionExtra))
}

// Device renders the device sign-in page.
func (r *Renderer) Device(w http.ResponseWriter, status int, p DevicePage) error {
	return r.render(w, status, r.device, p, formActions(p.Action, nil))
}

// Error renders a human-readable error page.
func (r *Renderer) Error(w http.ResponseWriter, status int, p ErrorPage) error {
	return r.render(w, status, r.errorPage, p, nil)
}

// Logout renders the "Sign out of <client>?" confirmation.
func (r *Renderer) Logout(w http.ResponseWriter, status int, p LogoutPage) error {
	return r.render(w, status, r.logout, p, formActions(p.Action, p.FormActionExtra))
}

// LoggedOut renders "You are signed out."
func (r *Renderer) LoggedOut(w http.ResponseWriter, status int, p LoggedOutPage) error {
	return r.renderFraming(w, status, r.loggedOut, p, nil, formActions("", p.FrontchannelLogouts))
}

// Sessions renders the user's session list.
func (r *Renderer) Sessions(w http.ResponseWriter, status int, p SessionsPage) error {
	return r.render(w, status, r.sessions, p, formActions(p.Action, nil))
}

// AccountMail renders a step of email verification or password reset.
func (r *Renderer) AccountMail(w http.ResponseWriter, status int, p AccountMailPage) error {
	return r.render(w, status, r.accountMail, p, formActions(p.Action, nil))
}

// MFA renders the second step of a sign-in.
func (r *Renderer) MFA(w http.ResponseWriter, status int, p MFAPage) error {
	return r.render(w, status, r.mfa, p, formActions(p.Action, p.FormActionExtra))
}

// Passkeys renders the account's passkeys page.
func (r *Renderer) Passkeys(w http.ResponseWriter, status int, p PasskeysPage) error {
	return r.render(w, status, r.passkeys, p, formActions(p.Action, nil))
}

// scripted is a page that loads PasskeyScriptPath: its CSP allows scripts and fetches from this origin only.
type scripted interface{ script() bool }

func (p LoginPage) script() bool    { return p.PasskeyAction != "" }
func (p MFAPage) script() bool      { return p.Passkey != "" }
func (p PasskeysPage) script() bool { return p.CanChange }

// ErrWrite marks a page that rendered but could not be sent: the client went away, which is not a server fault.
// Any other error from a render method is: the page could not be rendered and the client got a bare 500.
var ErrWrite = errors.New("write page")

// render executes t into a buffer first, so a failing template never leaves half a page on the wire. It answers
// 500 itself when t fails, and returns the error for the caller to log.
func (r *Renderer) render(w http.ResponseWriter, status int, t *template.Template, data any, formAction []string) error {
	return r.renderFraming(w, status, t, data, formAction, nil)
}

// renderFraming is render for a page that frames frameSrc (CSP source expressions; none: the page frames
// nothing).
func (r *Renderer) renderFraming(w http.ResponseWriter, status int, t *template.Template, data any, formAction, frameSrc []string) error {
	var buf bytes.Buffer
	err := t.Execute(&buf, data)

	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	policy := csp(formAction, frameSrc)
	if s, ok := data.(scripted); ok && s.script() {
		policy += "; script-src 'self'; connect-src 'self'"
	}
	h.Set("Content-Security-Policy", policy)
	if err != nil {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "Internal Server Error\n")
		return fmt.Errorf("render %s: %w", t.Name(), err)
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	if _, err := buf.WriteTo(w); err != nil {
		return fmt.Errorf("%w %s: %v", ErrWrite, t.Name(), err)
	}
	return nil
}

func csp(formAction, frameSrc []string) string {
	fa := "'self'"
	if len(formAction) > 0 {
		fa += " " + strings.Join(formAction, " ")
	}
	frames := ""
	if len(frameSrc) > 0 {
		frames = "; frame-src " + strings.Join(frameSrc, " ")
	}
	return "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action " + fa + frames +
		"; frame-ancestors 'none'; base-uri 'none'"
}

var (
	schemeRE = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)
	hostRE   = regexp.MustCompile(`^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$`)
)

// formActions turns the page's own action and the caller's extras into CSP source expressions: an origin
// for URLs with a host, "scheme:" for custom schemes. Relative actions are covered by 'self'; anything that
// could break out of the header value is dropped.
func formActions(action string, extra []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, raw := range append([]string{action}, extra...) {
		src, ok := cspSource(raw)
		if !ok || seen[src] {
			continue
		}
		seen[src] = true
		out = append(out, src)
	}
	return out
}

func cspSource(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if !schemeRE.MatchString(scheme) {
		return "", false
	}
	if u.Host != "" {
		if !hostRE.MatchString(u.Host) {
			return "", false
		}
		return scheme + "://" + strings.ToLower(u.Host), true
	}
	switch scheme {
	case "http", "https": // "https:" alone would allow every site
		return "", false
	case "javascript", "data", "blob", "filesystem":
		return "", false
	}
	return scheme + ":", true
}
