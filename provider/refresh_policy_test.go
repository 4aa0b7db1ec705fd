package provider

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

// policyClients adds a client that does not rotate refresh tokens ("keeper") and one with a reuse interval ("tabs").
func policyClients(t testing.TB, f *tokenAPIFixture) {
	t.Helper()
	scopes := []string{"openid", "offline_access", "profile", "email"}
	for _, c := range []*models.Client{
		{ID: "keeper", Public: true, FirstParty: true, GrantTypes: []string{"refresh_token"}, Scopes: scopes,
			RefreshTokenRotation: models.RefreshTokenRotationOff},
		{ID: "tabs", Public: true, FirstParty: true, GrantTypes: []string{"refresh_token"}, Scopes: scopes,
			RefreshTokenReuseInterval: time.Minute},
	} {
		if err := f.store.CreateClient(context.Background(), c); err != nil {
			t.Fatalf("create client %s: %v", c.ID, err)
		}
	}
}

func (f *tokenAPIFixture) refresh(t *testing.T, clientID, rt string) TokenSet {
	t.Helper()
	got, _, err := f.p.Refresh(context.Background(), clientID, "", rt)
	if err != nil {
		t.Fatalf("refresh as %s: %v", clientID, errDetail(err))
	}
	return got
}

func TestRefreshWithoutRotationKeepsTheToken(t *testing.T) {
	f := newTokenAPIFixture(t)
	policyClients(t, f)
	first := f.signIn(t, "keeper", "openid", "offline_access")
	var ats []string
	for i := range 3 {
		got := f.refresh(t, "keeper", first.RefreshToken)
		if got.RefreshToken != first.RefreshToken || got.AccessToken == "" || got.IDToken == "" || got.ExpiresIn <= 0 {
			t.Fatalf("refresh %d: %+v; want a new access and ID token and the same refresh token", i+1, got)
		}
		ats = append(ats, got.AccessToken)
	}
	for i, at := range append(ats, first.AccessToken) {
		if _, active := f.introspect(t, at); !active {
			t.Errorf("access token %d is no longer active: without rotation a refresh leaves earlier ones to expire", i)
		}
	}
	// Revoking the grant ends the kept token.
	ar, _ := f.introspect(t, ats[0])
	if err := f.store.RevokeRefreshToken(context.Background(), ar.GetID()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.p.Refresh(context.Background(), "keeper", "", first.RefreshToken); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Errorf("refresh after revocation: %v, want invalid_grant", errDetail(err))
	}
}

// Within the interval a spent refresh token is answered the one successor its rotation recorded: the second tab
// joins the first tab's chain, and a replay, however often, never starts a chain of its own.
func TestRefreshWithinReuseIntervalAnswersTheOneSuccessor(t *testing.T) {
	f := newTokenAPIFixture(t)
	policyClients(t, f)
	first := f.signIn(t, "tabs", "openid", "offline_access")
	tab1 := f.refresh(t, "tabs", first.RefreshToken)
	tab2 := f.refresh(t, "tabs", first.RefreshToken)
	if tab2.RefreshToken != tab1.RefreshToken {
		t.Fatalf("the second tab got refresh token %q; want the first tab's successor %q", tab2.RefreshToken, tab1.RefreshToken)
	}
	if tab2.AccessToken == tab1.AccessToken {
		t.Fatal("the second tab got the first tab's access token; want its own")
	}
	for range 25 {
		if again := f.refresh(t, "tabs", first.RefreshToken); again.RefreshToken != tab1.RefreshToken {
			t.Fatalf("a replay of the spent token got refresh token %q; want the one successor", again.RefreshToken)
		}
	}
	if !f.refreshActive(t, tab1.RefreshToken) {
		t.Error("the successor is not active")
	}
	for name, tok := range map[string]string{"first tab": tab1.AccessToken, "second tab": tab2.AccessToken} {
		if _, active := f.introspect(t, tok); !active {
			t.Errorf("the %s's access token was revoked by the other tab's refresh", name)
		}
	}
	// The chain goes on: one tab spends the successor, the other, presenting it within the interval, joins again.
	next := f.refresh(t, "tabs", tab1.RefreshToken)
	if again := f.refresh(t, "tabs", tab2.RefreshToken); again.RefreshToken != next.RefreshToken {
		t.Errorf("the other tab got %q; want the chain's next token %q", again.RefreshToken, next.RefreshToken)
	}
	if _, active := f.introspect(t, tab2.AccessToken); !active {
		t.Error("a tab's access token that came from a replay was revoked by the chain's next rotation")
	}

	// Without an interval the same second use is reuse: the grant is revoked.
	none := f.signIn(t, "spa", "openid", "offline_access")
	spaNext := f.refresh(t, "spa", none.RefreshToken)
	if _, _, err := f.p.Refresh(context.Background(), "spa", "", none.RefreshToken); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Errorf("reuse without an interval: %v, want invalid_grant", errDetail(err))
	}
	if f.refreshActive(t, spaNext.RefreshToken) {
		t.Error("the successor survived reuse without an interval")
	}
}

// BenchmarkRefresh is one refresh at the token API endpoint over SQLite, per refresh policy: rotation (the default;
// each iteration spends the token the last one got), a reuse within the interval (each iteration presents the same
// rotated token and gets its recorded successor), and rotation off (each iteration presents the sign-in token again).
func BenchmarkRefresh(b *testing.B) {
	for _, tc := range []struct{ name, client string }{
		{"rotation", "spa"}, {"reuse within interval", "tabs"}, {"rotation off", "keeper"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := newTokenAPIFixture(b)
			policyClients(b, f)
			ctx := context.Background()
			scopes := []string{"openid", "offline_access"}
			tokens, err := f.p.SignIn(ctx, tc.client, f.session(tc.client, scopes), scopes)
			if err != nil {
				b.Fatal(errDetail(err))
			}
			rt := tokens.RefreshToken
			if tc.client == "tabs" {
				if _, _, err := f.p.Refresh(ctx, tc.client, "", rt); err != nil {
					b.Fatal(errDetail(err))
				}
			}
			b.ResetTimer()
			for range b.N {
				got, _, err := f.p.Refresh(ctx, tc.client, "", rt)
				if err != nil {
					b.Fatal(fmt.Sprint(errDetail(err)))
				}
				if tc.client == "spa" {
					rt = got.RefreshToken
				}
			}
		})
	}
}
