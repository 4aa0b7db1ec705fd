package jsonapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/handlers/request"
)

type failingOrigins struct{}

func (failingOrigins) OriginAllowed(context.Context, string) (bool, error) {
	return false, errors.New(`relation "client_origins" does not exist`) // not an outage by its looks
}

// request.CORS wired as the app wires it: when the origin cannot be checked, WriteUnavailable answers 503
// temporarily_unavailable with Retry-After and the JSON error body, the route does not run, and the cause is
// logged once, at Error, with the request id.
func TestWriteUnavailableBehindCORS(t *testing.T) {
	for _, method := range []string{http.MethodOptions, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			var buf bytes.Buffer
			served := false
			cors := &request.CORS{Origins: failingOrigins{}, Unavailable: WriteUnavailable}
			h := request.Track(slog.New(slog.NewJSONHandler(&buf, nil)), nil,
				cors.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true })))
			req := httptest.NewRequest(method, "/api/v1/auth/refresh", strings.NewReader(`{"refresh_token":"x"}`))
			req.Header.Set("Origin", "https://my-app.weweb.io")
			if method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", "POST")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if served {
				t.Error("the route ran although the origin could not be checked")
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "5" ||
				body["error"] != string(TemporarilyUnavailable) || body["error_description"] == "" ||
				strings.Contains(body["error_description"], "client_origins") {
				t.Errorf("answer %d Retry-After %q body %v", rec.Code, rec.Header().Get("Retry-After"), body)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "https://my-app.weweb.io" {
				t.Errorf("Access-Control-Allow-Origin = %q", got)
			}
			id, errorLines := rec.Header().Get("X-Request-Id"), 0
			for line := range bytes.Lines(buf.Bytes()) {
				var m map[string]any
				if err := json.Unmarshal(line, &m); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if m["msg"] == "http request" {
					continue
				}
				cause, _ := m["cause"].(string)
				if m["level"] != "ERROR" || m["request_id"] != id || !strings.Contains(cause, "client_origins") {
					t.Errorf("log record %v, want Error with request id %q and the cause", m, id)
				}
				errorLines++
			}
			if errorLines != 1 {
				t.Errorf("%d records logged besides the access line, want 1:\n%s", errorLines, buf.String())
			}
		})
	}
}
