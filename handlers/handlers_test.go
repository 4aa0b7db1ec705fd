package handlers

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestDeviceName(t *testing.T) {
	for _, tc := range []struct{ ua, want string }{
		{"", "Unknown device"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36", "Chrome on Windows"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0", "Edge on Windows"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1", "Safari on iPhone"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.0; rv:140.0) Gecko/20100101 Firefox/140.0", "Firefox on macOS"},
		{"Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36", "Chrome on Android"},
		{"curl/8.5.0", "curl"},
		{"something else entirely", "Unknown browser"},
	} {
		if got := DeviceName(tc.ua); got != tc.want {
			t.Errorf("DeviceName(%q) = %q, want %q", tc.ua, got, tc.want)
		}
	}
}

func TestLocalPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"/account/sessions", "/account/sessions", true},
		{"/account/sessions?x=1", "/account/sessions?x=1", true},
		{"", "", false},
		{"account", "", false},
		{"//evil.example/x", "", false},
		{"/\\evil.example", "", false},
		{"https://evil.example/", "", false},
	} {
		got, ok := localPath(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("localPath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

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
			if got := bearerToken(tc.req()); got != tc.want {
				t.Errorf("bearerToken = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Second: "1", 1500 * time.Millisecond: "2", time.Millisecond: "1", 15 * time.Minute: "900"} {
		if got := retryAfter(d); got != want {
			t.Errorf("retryAfter(%v) = %s, want %s", d, got, want)
		}
	}
}
