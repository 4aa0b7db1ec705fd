package oauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ory/fosite"
)

// What the token endpoint answers itself, precisely, before fosite sees the request (RFC 6749 §5.2).
func TestTokenPrepareForm(t *testing.T) {
	h := &Token{GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"}}
	for _, tc := range []struct {
		name  string
		form  string
		basic bool
		want  string // error code; "" = accepted
	}{
		{"accepted", "grant_type=client_credentials&client_id=a", false, ""},
		{"repeated scope", "grant_type=client_credentials&client_id=a&scope=x&scope=y", false, "invalid_request"},
		{"no grant type", "client_id=a", false, "invalid_request"},
		{"password grant is not composed", "grant_type=password&client_id=a", false, "unsupported_grant_type"},
		{"no client at all", "grant_type=client_credentials", false, "invalid_client"},
		{"basic and form secret", "grant_type=client_credentials&client_secret=s", true, "invalid_request"},
		{"basic alone", "grant_type=client_credentials", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(tc.form))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.basic {
				r.SetBasicAuth("a", "s")
			}
			err := h.prepareForm(r)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || fosite.ErrorToRFC6749Error(err).ErrorField != tc.want):
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
		})
	}
	// The provider composes the password grant; the endpoint serves it only with a PasswordGrant to check passwords.
	withPassword := &Token{GrantTypes: []string{"client_credentials", "password"}}
	for _, tc := range []struct {
		name     string
		password *PasswordGrant
		form     string
		want     string
	}{
		{"password grant without a PasswordGrant", nil, "grant_type=password&client_id=a&username=u&password=p", "unsupported_grant_type"},
		{"password grant served", &PasswordGrant{}, "grant_type=password&client_id=a&username=u&password=p", ""},
		{"repeated username", &PasswordGrant{}, "grant_type=password&client_id=a&username=u&username=v&password=p", "invalid_request"},
		{"repeated password", &PasswordGrant{}, "grant_type=password&client_id=a&username=u&password=p&password=q", "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withPassword.Password = tc.password
			r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(tc.form))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			err := withPassword.prepareForm(r)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || fosite.ErrorToRFC6749Error(err).ErrorField != tc.want):
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
		})
	}

	// resource may repeat; the provider reads it as audience (provider/resource_test.go checks the folding).
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"a"}, "resource": {"https://api.example", "https://b.example"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := h.prepareForm(r); err != nil {
		t.Fatalf("resource indicators refused: %v %v", err, r.PostForm)
	}
}

// Introspection callers authenticate as clients; a bearer token is never their credential.
func TestIntrospectionCaller(t *testing.T) {
	for _, tc := range []struct {
		name   string
		form   string
		header string
		want   string // "" = accepted
	}{
		{"basic", "token=t", "basic", ""},
		{"client_secret_post becomes basic", "token=t&client_id=rs&client_secret=s", "", ""},
		{"bearer caller", "token=t", "Bearer abc", "invalid_client"},
		{"access_token in the form", "token=t&access_token=abc", "basic", "invalid_client"},
		{"no credentials", "token=t", "", "invalid_client"},
		{"two methods", "token=t&client_id=rs&client_secret=s", "basic", "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/oauth2/introspect", strings.NewReader(tc.form))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			switch tc.header {
			case "basic":
				r.SetBasicAuth("rs", "s")
			case "":
			default:
				r.Header.Set("Authorization", tc.header)
			}
			err := introspectionCaller(r)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || fosite.ErrorToRFC6749Error(err).ErrorField != tc.want):
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
			if tc.want == "" {
				if id, _, ok := r.BasicAuth(); !ok || id != "rs" || r.PostForm.Get("client_secret") != "" {
					t.Errorf("after: basic %q %v, form secret %q", id, ok, r.PostForm.Get("client_secret"))
				}
			}
		})
	}
}
