package grant

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestBearerTokenNeverFromTheQuery(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  func() *http.Request
		want string
	}{
		{"authorization header", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/userinfo", nil)
			r.Header.Set("Authorization", "Bearer abc")
			return r
		}, "abc"},
		{"lower-case scheme", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/userinfo", nil)
			r.Header.Set("Authorization", "bearer abc")
			return r
		}, "abc"},
		{"basic is not bearer", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/userinfo", nil)
			r.SetBasicAuth("a", "b")
			return r
		}, ""},
		{"query string", func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/userinfo?access_token=abc", nil)
		}, ""},
		{"form body", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/userinfo", strings.NewReader(url.Values{"access_token": {"abc"}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			_ = r.ParseForm()
			return r
		}, "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Bearer(tc.req()); got != tc.want {
				t.Errorf("Bearer = %q, want %q", got, tc.want)
			}
		})
	}
}
