package browser

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

func TestCheckAuthorizeRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		public  bool
		form    url.Values
		wantErr string // "" = accepted; else the hint it carries
		want    authDemands
	}{
		{"confidential client without PKCE", false, url.Values{}, "", authDemands{maxAge: -1}},
		{"public client without PKCE", true, url.Values{}, "code_challenge is missing", authDemands{}},
		{"public client with plain PKCE", true, url.Values{"code_challenge": {"x"}, "code_challenge_method": {"plain"}}, "must be S256", authDemands{}},
		{"public client with S256", true, url.Values{"code_challenge": {"x"}, "code_challenge_method": {"S256"}}, "", authDemands{maxAge: -1}},
		{"public client asking for an ID token alone: no PKCE (no code)", true, url.Values{"response_type": {"id_token"}}, "", authDemands{maxAge: -1}},
		{"public client asking for a code and an ID token: PKCE", true, url.Values{"response_type": {"code id_token"}}, "code_challenge is missing", authDemands{}},
		{"prompt=login consent, max_age", false, url.Values{"prompt": {"login consent"}, "max_age": {"60"}}, "", authDemands{login: true, consent: true, maxAge: 60}},
		{"prompt=none with another value", false, url.Values{"prompt": {"none login"}}, "cannot be combined", authDemands{}},
		{"unknown prompt", false, url.Values{"prompt": {"select_account"}}, "Unsupported prompt", authDemands{}},
		{"negative max_age", false, url.Values{"max_age": {"-1"}}, "non-negative", authDemands{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := checkAuthorizeRequest(tc.public, tc.form)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %+v, %v; want %+v accepted", got, err, tc.want)
				}
				return
			}
			rfc := fosite.ErrorToRFC6749Error(err)
			if err == nil || rfc.ErrorField != "invalid_request" || !strings.Contains(rfc.HintField, tc.wantErr) {
				t.Fatalf("err = %v (hint %q), want invalid_request with %q", err, rfc.HintField, tc.wantErr)
			}
		})
	}
}

// The authorization endpoint's decision, without HTTP: who must sign in, who is asked for consent, who gets a
// code, and what prompt=none answers instead of a page.
func TestDecideAuthorize(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	signedIn := now.Add(-time.Hour)
	bs := &models.BrowserSession{ID: "ses_1", AuthTime: signedIn}
	justNow := now.Add(-time.Minute)
	freshSession := &models.BrowserSession{ID: "ses_1", AuthTime: justNow}
	signedInForIt := &models.AuthChallenge{BrowserSessionID: "ses_1", LoginAt: &justNow, CreatedAt: now.Add(-2 * time.Minute)}
	consentedForIt := &models.AuthChallenge{BrowserSessionID: "ses_1", ConsentAt: &justNow, CreatedAt: now.Add(-2 * time.Minute)}
	none := authDemands{none: true, maxAge: -1}
	plain := authDemands{maxAge: -1}
	for _, tc := range []struct {
		name        string
		facts       authorizeFacts
		wantLookup  bool // the consent on record must be read
		want        authorizeStep
		wantErrCode string
	}{
		{"not signed in: sign in", authorizeFacts{Demand: plain}, false, stepSignIn, ""},
		{"not signed in, prompt=none: login_required", authorizeFacts{Demand: none}, false, stepRefuse, "login_required"},
		{"signed in too long ago for max_age: sign in", authorizeFacts{Demand: authDemands{maxAge: 60}, Session: bs, FirstParty: true}, false, stepSignIn, ""},
		{"prompt=login without a sign-in for it: sign in", authorizeFacts{Demand: authDemands{login: true, maxAge: -1}, Session: bs, FirstParty: true}, false, stepSignIn, ""},
		{"prompt=login, signed in for it: issue", authorizeFacts{Demand: authDemands{login: true, maxAge: -1}, Session: freshSession, Challenge: signedInForIt, FirstParty: true}, false, stepIssue, ""},
		{"first-party client, signed in: issue without consent", authorizeFacts{Demand: plain, Session: bs, FirstParty: true, Requested: []string{"openid", "email"}}, false, stepIssue, ""},
		{"first-party client, prompt=consent: consent", authorizeFacts{Demand: authDemands{consent: true, maxAge: -1}, Session: bs, FirstParty: true}, false, stepConsent, ""},
		{"third party, every scope consented before: issue",
			authorizeFacts{Demand: plain, Session: bs, Requested: []string{"openid", "email"}, Consented: []string{"email", "openid", "profile"}}, true, stepIssue, ""},
		{"third party, a scope not consented: consent",
			authorizeFacts{Demand: plain, Session: bs, Requested: []string{"openid", "roles"}, Consented: []string{"openid"}}, true, stepConsent, ""},
		{"third party, consent not read: consent (never issue on unknown consent)",
			authorizeFacts{Demand: plain, Session: bs, Requested: []string{"openid"}}, true, stepConsent, ""},
		{"third party, prompt=none, scope not consented: consent_required",
			authorizeFacts{Demand: none, Session: bs, Requested: []string{"openid"}}, true, stepRefuse, "consent_required"},
		{"third party, prompt=none, all consented: issue",
			authorizeFacts{Demand: none, Session: bs, Requested: []string{"openid"}, Consented: []string{"openid"}}, true, stepIssue, ""},
		{"third party, prompt=consent: consent even with consent on record",
			authorizeFacts{Demand: authDemands{consent: true, maxAge: -1}, Session: bs, Requested: []string{"openid"}, Consented: []string{"openid"}}, false, stepConsent, ""},
		{"consented on the page for this request: issue",
			authorizeFacts{Demand: authDemands{consent: true, maxAge: -1}, Session: bs, Challenge: consentedForIt, Requested: []string{"roles"}}, false, stepIssue, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.facts.Now = now
			if got := tc.facts.needsConsentOnRecord(); got != tc.wantLookup {
				t.Errorf("needsConsentOnRecord = %v, want %v", got, tc.wantLookup)
			}
			d := decideAuthorize(tc.facts)
			if d.Step != tc.want {
				t.Fatalf("step = %v, want %v", d.Step, tc.want)
			}
			switch {
			case tc.wantErrCode == "" && d.Err != nil:
				t.Fatalf("err = %v, want none", d.Err)
			case tc.wantErrCode != "" && (d.Err == nil || fosite.ErrorToRFC6749Error(d.Err).ErrorField != tc.wantErrCode):
				t.Fatalf("err = %v, want %s", d.Err, tc.wantErrCode)
			}
		})
	}
}
