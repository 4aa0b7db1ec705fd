package browser

import (
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// The authorization endpoint's decisions are pure functions of the request, the browser session and the consent
// on record, so they are tested table by table without HTTP or a store; authorize only loads the facts and
// carries the decision out.

// authDemands is what an authorization request asks of the user's sign-in (OpenID Connect Core §3.1.2.1).
type authDemands struct {
	none, login, consent bool  // prompt values
	maxAge               int64 // seconds; -1 when not asked
}

func authDemandsOf(form url.Values) (authDemands, error) {
	d := authDemands{maxAge: -1}
	prompts := strings.Fields(form.Get("prompt"))
	for _, p := range prompts {
		switch p {
		case "none":
			d.none = true
		case "login":
			d.login = true
		case "consent":
			d.consent = true
		default:
			return d, fosite.ErrInvalidRequest.WithHintf("Unsupported prompt value '%s'.", p)
		}
	}
	if d.none && len(prompts) > 1 {
		return d, fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with other values.")
	}
	if v := form.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return d, fosite.ErrInvalidRequest.WithHint("max_age must be a non-negative integer.")
		}
		d.maxAge = n
	}
	return d, nil
}

// satisfiedBy reports whether browser session bs may act on the request without signing in again. prompt=login
// needs a sign-in for this very request: recorded on chal, in this same browser session, after the request was
// made. max_age needs that or a sign-in at most max_age seconds ago. chal, if not nil, is bound to bs.
func (d authDemands) satisfiedBy(bs *models.BrowserSession, chal *models.AuthChallenge, now time.Time) bool {
	if bs == nil {
		return false
	}
	signedInForIt := chal != nil && chal.BrowserSessionID == bs.ID && chal.LoginAt != nil && !bs.AuthTime.Before(chal.CreatedAt)
	if d.login && !signedInForIt {
		return false
	}
	limit := time.Duration(d.maxAge) * time.Second
	recent := d.maxAge < 0 || d.maxAge > maxAgeLimit || now.Sub(bs.AuthTime) <= limit
	if recent {
		return true
	}
	// A sign-in for this very request satisfies max_age while the person finishes it (reads the consent page),
	// not for the whole life of the request: past that, the ID token's auth_time would be far older than asked.
	return signedInForIt && now.Sub(bs.AuthTime) <= limit+signInGrace
}

// signInGrace is how long a sign-in made for a request with max_age keeps satisfying it.
const signInGrace = 5 * time.Minute

// maxAgeLimit is the largest max_age compared as a duration (about 292 years fit in one); any larger is no limit.
const maxAgeLimit = int64(math.MaxInt64 / int64(time.Second))

// checkAuthorizeRequest is what an authorization request fosite accepted must still satisfy before anyone signs
// in or consents: PKCE with S256 for public clients asking for a code (RFC 9700 §2.1.1; an ID token alone has no
// code to bind, its nonce binds it), and readable prompt and max_age values.
func checkAuthorizeRequest(publicClient bool, form url.Values) (authDemands, error) {
	idTokenOnly := fosite.Arguments(strings.Fields(form.Get("response_type"))).ExactOne(provider.ResponseTypeIDToken)
	if publicClient && !idTokenOnly {
		switch method := form.Get("code_challenge_method"); {
		case form.Get("code_challenge") == "":
			return authDemands{}, fosite.ErrInvalidRequest.WithHint("Public clients must use PKCE: code_challenge is missing.")
		case method != "S256":
			return authDemands{}, fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256.")
		}
	}
	return authDemandsOf(form)
}

// authorizeStep is what the authorization endpoint does next.
type authorizeStep int

const (
	stepRefuse  authorizeStep = iota // answer the client with the decision's error
	stepSignIn                       // show the sign-in form
	stepConsent                      // show the consent page
	stepIssue                        // issue the authorization code
)

func (s authorizeStep) String() string {
	return [...]string{"refuse", "sign in", "consent", "issue"}[s]
}

// authorizeFacts is everything the decision rests on.
type authorizeFacts struct {
	Demand     authDemands
	FirstParty bool // the client is one of ours: no consent asked unless prompt=consent
	// Session is the browser's signed-in session, nil when there is none or it is of another pool's user.
	Session *models.BrowserSession
	// Challenge is the request's parked challenge when it is bound to Session, else nil.
	Challenge *models.AuthChallenge
	Requested []string
	// Consented are the scopes the user has consented to for this client, read only when needsConsentOnRecord
	// says so; unread (nil), no consent is on record and the user is asked.
	Consented []string
	Now       time.Time
}

// authorizeDecision is the step and, for stepRefuse, the error for the client.
type authorizeDecision struct {
	Step authorizeStep
	Err  error
}

// freshConsent: the user consented on the consent page for this very request.
func (f authorizeFacts) freshConsent() bool {
	return f.Challenge != nil && f.Challenge.ConsentAt != nil
}

// needsConsentOnRecord reports whether the decision depends on the consent stored for this user and client:
// signed in well enough, a third-party client, and neither prompt=consent nor a consent given just now decides.
func (f authorizeFacts) needsConsentOnRecord() bool {
	return f.Demand.satisfiedBy(f.Session, f.Challenge, f.Now) && !f.FirstParty && !f.Demand.consent && !f.freshConsent()
}

// decideAuthorize says what to do with an authorization request: sign in first (or, with prompt=none,
// login_required), ask for consent (or consent_required), or issue the code.
func decideAuthorize(f authorizeFacts) authorizeDecision {
	if !f.Demand.satisfiedBy(f.Session, f.Challenge, f.Now) {
		if f.Demand.none {
			return authorizeDecision{Step: stepRefuse, Err: fosite.ErrLoginRequired.WithHint("The user is not signed in.")}
		}
		return authorizeDecision{Step: stepSignIn}
	}
	needConsent := f.Demand.consent && !f.freshConsent()
	if f.needsConsentOnRecord() {
		for _, s := range f.Requested {
			if !slices.Contains(f.Consented, s) {
				needConsent = true
				break
			}
		}
	}
	if needConsent {
		if f.Demand.none {
			return authorizeDecision{Step: stepRefuse, Err: fosite.ErrConsentRequired.WithHint("The user has not consented to this request.")}
		}
		return authorizeDecision{Step: stepConsent}
	}
	return authorizeDecision{Step: stepIssue}
}
