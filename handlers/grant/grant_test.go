package grant

import (
	"context"
	"database/sql/driver"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/faults"
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

// A lookup the store could not answer is ours (503), never "your token is invalid".
func TestStoreFailed(t *testing.T) {
	dbDown := fmt.Errorf("select: %w", driver.ErrBadConn)
	for _, tc := range []struct {
		name  string
		err   error
		fault error
		want  bool
	}{
		{"unknown token", fosite.ErrRequestUnauthorized.WithWrap(fosite.ErrNotFound), nil, false},
		{"revoked token", fosite.ErrRequestUnauthorized.WithWrap(fosite.ErrInactiveToken), nil, false},
		{"expired token", fosite.ErrTokenExpired, nil, false},
		{"forged token", fosite.ErrRequestUnauthorized, nil, false},
		{"database error inside", fosite.ErrRequestUnauthorized.WithWrap(dbDown), nil, true},
		{"server error", fosite.ErrServerError, nil, true},
		{"unknown token, but a database fault was met meanwhile", fosite.ErrRequestUnauthorized.WithWrap(fosite.ErrNotFound), dbDown, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := faults.WithRecorder(context.Background())
			faults.Note(ctx, tc.fault)
			if got := StoreFailed(ctx, tc.err); got != tc.want {
				t.Errorf("StoreFailed = %v, want %v", got, tc.want)
			}
		})
	}
}
