package models_test

import (
	"slices"
	"testing"

	"github.com/latchkey/latchkey/models"
)

// A session's auth_method is the one record of how its user authenticated: every amr round-trips through it, and
// the values written before second factors ("" and "fed") keep their meaning.
func TestAuthMethodRoundTrip(t *testing.T) {
	for _, amr := range [][]string{{"pwd"}, {"fed"}, {"pwd", "otp", "mfa"}, {"pwd", "mfa"}, {"fed", "otp", "mfa"}} {
		bs := models.BrowserSession{AuthMethod: models.AuthMethodOf(amr)}
		if got := bs.AMR(); !slices.Equal(got, amr) {
			t.Errorf("AMR(AuthMethodOf(%v)) = %v", amr, got)
		}
	}
	if models.AuthMethodOf([]string{"pwd"}) != models.AuthMethodPassword || models.AuthMethodOf([]string{"fed"}) != models.AuthMethodUpstream {
		t.Error("the first-factor values changed meaning")
	}
}
