package browser

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// max_age counts from the sign-in: one made for this very request satisfies it while the person finishes the
// request, not for the request's whole life; prompt=login needs a sign-in for this request, however recent.
func TestAuthDemandsSatisfiedBy(t *testing.T) {
	requested := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	signedIn := requested.Add(10 * time.Second)
	bs := &models.BrowserSession{ID: "ses_1", AuthTime: signedIn}
	forIt := &models.AuthChallenge{BrowserSessionID: "ses_1", LoginAt: &signedIn, CreatedAt: requested}
	otherSession := &models.AuthChallenge{BrowserSessionID: "ses_2", LoginAt: &signedIn, CreatedAt: requested}
	for _, tc := range []struct {
		name   string
		d      authDemands
		chal   *models.AuthChallenge
		at     time.Duration // after the sign-in
		wanted bool
	}{
		{"no demands", authDemands{maxAge: -1}, nil, time.Hour, true},
		{"max_age=60, signed in 30s ago", authDemands{maxAge: 60}, nil, 30 * time.Second, true},
		{"max_age=60, signed in 2m ago", authDemands{maxAge: 60}, nil, 2 * time.Minute, false},
		{"max_age=0, signed in for it a minute ago", authDemands{maxAge: 0}, forIt, time.Minute, true},
		{"max_age=0, signed in for it 10 minutes ago", authDemands{maxAge: 0}, forIt, 10 * time.Minute, false},
		{"max_age=0, another session's sign-in", authDemands{maxAge: 0}, otherSession, time.Second, false},
		{"prompt=login without a sign-in for it", authDemands{login: true, maxAge: -1}, nil, time.Second, false},
		{"prompt=login, signed in for it", authDemands{login: true, maxAge: -1}, forIt, 10 * time.Minute, true},
	} {
		if got := tc.d.satisfiedBy(bs, tc.chal, signedIn.Add(tc.at)); got != tc.wanted {
			t.Errorf("%s: satisfied = %v, want %v", tc.name, got, tc.wanted)
		}
	}
	if (authDemands{maxAge: -1}).satisfiedBy(nil, nil, signedIn) {
		t.Error("satisfied without a browser session")
	}
}
