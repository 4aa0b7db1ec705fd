package request

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

type origins map[string]bool

func (o origins) OriginAllowed(_ context.Context, origin string) (bool, error) {
	if origin == "https://broken.example" {
		return false, errors.New("database down")
	}
	return o[origin], nil
}

func TestCORS(t *testing.T) {
	const app, evil = "https://my-app.weweb.io", "https://evil.example"
	c := &CORS{Origins: origins{app: true}}
	served := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served++
		w.WriteHeader(http.StatusTeapot)
	})
	me := c.WrapRoute(next, CORSRoute{Methods: []string{http.MethodGet, http.MethodPatch}, Headers: []string{"X-Auth-Token"}})
	sessions := c.WrapRoute(next, CORSRoute{Methods: []string{http.MethodGet, http.MethodDelete}})
	token := c.Wrap(next)

	for _, tc := range []struct {
		name          string
		h             http.Handler
		method        string
		origin        string
		askMethod     string
		askHeaders    []string
		status        int
		served        bool
		allowOrigin   bool
		allowMethods  string
		allowHeaders  string
		preflightVary bool
	}{
		{name: "PATCH /me preflight with WeWeb's retry header and the custom token header",
			h: me, method: http.MethodOptions, origin: app, askMethod: "PATCH",
			askHeaders: []string{"authorization,content-type,ww-retry,x-auth-token"}, status: http.StatusNoContent,
			allowOrigin: true, allowMethods: "GET, PATCH", allowHeaders: "authorization, content-type, ww-retry, x-auth-token", preflightVary: true},
		{name: "DELETE sessions preflight, headers over two lines and with spaces",
			h: sessions, method: http.MethodOptions, origin: app, askMethod: "DELETE",
			askHeaders: []string{"Authorization , ww-retry", "x-requested-with"}, status: http.StatusNoContent,
			allowOrigin: true, allowMethods: "GET, DELETE", allowHeaders: "authorization, ww-retry, x-requested-with", preflightVary: true},
		{name: "a header outside the allow-list is not echoed, the browser then refuses",
			h: me, method: http.MethodOptions, origin: app, askMethod: "GET",
			askHeaders: []string{"authorization, x-evil, cookie"}, status: http.StatusNoContent,
			allowOrigin: true, allowMethods: "GET, PATCH", allowHeaders: "authorization", preflightVary: true},
		{name: "the custom token header belongs only to the routes that read it",
			h: token, method: http.MethodOptions, origin: app, askMethod: "POST",
			askHeaders: []string{"x-auth-token"}, status: http.StatusNoContent,
			allowOrigin: true, allowMethods: "GET, POST", allowHeaders: "", preflightVary: true},
		{name: "preflight from a disallowed origin",
			h: me, method: http.MethodOptions, origin: evil, askMethod: "PATCH",
			askHeaders: []string{"authorization"}, status: http.StatusForbidden, preflightVary: true},
		{name: "preflight when the origin cannot be checked is refused, not allowed",
			h: me, method: http.MethodOptions, origin: "https://broken.example", askMethod: "GET",
			status: http.StatusForbidden, preflightVary: true},
		{name: "request from an allowed origin", h: me, method: http.MethodGet, origin: app,
			status: http.StatusTeapot, served: true, allowOrigin: true},
		{name: "request from a disallowed origin is served without CORS headers", h: me, method: http.MethodGet, origin: evil,
			status: http.StatusTeapot, served: true},
		{name: "OPTIONS without Access-Control-Request-Method is not a preflight", h: me, method: http.MethodOptions, origin: app,
			status: http.StatusTeapot, served: true, allowOrigin: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served = 0
			req := httptest.NewRequest(tc.method, "/x", nil)
			req.Header.Set("Origin", tc.origin)
			if tc.askMethod != "" {
				req.Header.Set("Access-Control-Request-Method", tc.askMethod)
			}
			for _, h := range tc.askHeaders {
				req.Header.Add("Access-Control-Request-Headers", h)
			}
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, req)
			res := rec.Result()
			if res.StatusCode != tc.status || (served == 1) != tc.served {
				t.Errorf("status %d served %v, want %d served %v", res.StatusCode, served == 1, tc.status, tc.served)
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); (got == tc.origin) != tc.allowOrigin || !tc.allowOrigin && got != "" {
				t.Errorf("Access-Control-Allow-Origin = %q (want it: %v)", got, tc.allowOrigin)
			}
			if got := res.Header.Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("Access-Control-Allow-Credentials = %q; never", got)
			}
			if got := res.Header.Get("Access-Control-Allow-Methods"); got != tc.allowMethods {
				t.Errorf("Access-Control-Allow-Methods = %q, want %q", got, tc.allowMethods)
			}
			if got := res.Header.Get("Access-Control-Allow-Headers"); got != tc.allowHeaders {
				t.Errorf("Access-Control-Allow-Headers = %q, want %q", got, tc.allowHeaders)
			}
			wantAge := ""
			if tc.allowMethods != "" {
				wantAge = "600"
			}
			if got := res.Header.Get("Access-Control-Max-Age"); got != wantAge {
				t.Errorf("Access-Control-Max-Age = %q, want %q", got, wantAge)
			}
			if tc.allowOrigin && !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
				t.Errorf("Access-Control-Expose-Headers = %q", res.Header.Get("Access-Control-Expose-Headers"))
			}
			vary := res.Header.Values("Vary")
			if !slices.Contains(vary, "Origin") {
				t.Errorf("Vary = %q, lacks Origin", vary)
			}
			if got := slices.Contains(vary, "Access-Control-Request-Headers") && slices.Contains(vary, "Access-Control-Request-Method"); got != tc.preflightVary {
				t.Errorf("Vary = %q; varies on the preflight's questions: %v, want %v", vary, got, tc.preflightVary)
			}
		})
	}

	t.Run("a request without Origin passes through untouched", func(t *testing.T) {
		rec := httptest.NewRecorder()
		me.ServeHTTP(rec, httptest.NewRequest(http.MethodOptions, "/x", nil))
		if rec.Code != http.StatusTeapot || len(rec.Header()) != 0 {
			t.Errorf("status %d headers %v", rec.Code, rec.Header())
		}
	})
	t.Run("nil CORS is a no-op", func(t *testing.T) {
		var none *CORS
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodOptions, "/x", nil)
		req.Header.Set("Origin", app)
		req.Header.Set("Access-Control-Request-Method", "GET")
		none.WrapRoute(next, CORSRoute{}).ServeHTTP(rec, req)
		if rec.Code != http.StatusTeapot || rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("status %d headers %v", rec.Code, rec.Header())
		}
	})
}
