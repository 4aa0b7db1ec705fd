package provider

import (
	"errors"
	"net/url"
	"testing"

	"github.com/ory/fosite"
)

func TestStateRequired(t *testing.T) {
	for _, tc := range []struct {
		name string
		form url.Values
		want bool
	}{
		{"no PKCE: state required", url.Values{}, true},
		{"S256 challenge: state optional", url.Values{"code_challenge": {"abc"}, "code_challenge_method": {"S256"}}, false},
		{"S256 challenge with a short state: optional", url.Values{"code_challenge": {"abc"}, "code_challenge_method": {"S256"}, "state": {"x"}}, false},
		{"plain challenge does not count", url.Values{"code_challenge": {"abc"}, "code_challenge_method": {"plain"}}, true},
		{"challenge without a method (plain) does not count", url.Values{"code_challenge": {"abc"}}, true},
		{"method without a challenge does not count", url.Values{"code_challenge_method": {"S256"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := StateRequired(tc.form); got != tc.want {
				t.Fatalf("StateRequired(%v) = %v, want %v", tc.form, got, tc.want)
			}
		})
	}
}

func TestWaiveStateOnlyDropsTheStateRefusalWithPKCE(t *testing.T) {
	pkce := url.Values{"code_challenge": {"abc"}, "code_challenge_method": {"S256"}}
	stateErr := fosite.ErrInvalidState.WithHint("too short")
	for _, tc := range []struct {
		name    string
		form    url.Values
		err     error
		wantErr error
	}{
		{"state refusal with PKCE is waived", pkce, stateErr, nil},
		{"state refusal without PKCE stands", url.Values{}, stateErr, fosite.ErrInvalidState},
		{"another refusal with PKCE stands", pkce, fosite.ErrInvalidScope, fosite.ErrInvalidScope},
		{"no error stays none", pkce, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ar := fosite.NewAuthorizeRequest()
			ar.Form = tc.form
			got := waiveState(ar, tc.err)
			if tc.wantErr == nil && got != nil || tc.wantErr != nil && !errors.Is(got, tc.wantErr) {
				t.Fatalf("waiveState = %v, want %v", got, tc.wantErr)
			}
		})
	}
}
