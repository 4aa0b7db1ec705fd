package browser

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/templates"
)

// brokenConn is a client that went away: every write fails.
type brokenConn struct{ *httptest.ResponseRecorder }

func (brokenConn) Write([]byte) (int, error) { return 0, errors.New("write: broken pipe") }

// A page that cannot be rendered is a server fault, logged at Error with the request id; a page the client went
// away before receiving is not.
func TestRenderFailuresAreLogged(t *testing.T) {
	pages, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		render    func(w http.ResponseWriter, r *http.Request) error
		wantLevel string // "" = nothing at Info or above
	}{
		{"template failed", func(http.ResponseWriter, *http.Request) error {
			return errors.New("render sessions.html: template: sessions.html:3: executing ...")
		}, "ERROR"},
		{"client went away", func(w http.ResponseWriter, r *http.Request) error {
			return pages.LoggedOut(brokenConn{httptest.NewRecorder()}, http.StatusOK, templates.LoggedOutPage{Message: "bye"})
		}, ""},
		{"rendered", func(w http.ResponseWriter, r *http.Request) error {
			return pages.LoggedOut(w, http.StatusOK, templates.LoggedOutPage{Message: "bye"})
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			h := request.Track(logger, request.TrustedProxies{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				page.LogRender(r, tc.render(w, r))
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/account/sessions", nil))
			var found map[string]any
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if m["msg"] != "http request" {
					found = m
				}
			}
			if tc.wantLevel == "" {
				if found != nil {
					t.Fatalf("logged %v, want nothing beyond the access line", found)
				}
				return
			}
			if found == nil || found["level"] != tc.wantLevel || found["request_id"] != rec.Header().Get("X-Request-Id") ||
				!strings.Contains(found["error"].(string), "sessions.html") {
				t.Fatalf("logged %v, want %s with the request id %q and the cause:\n%s", found, tc.wantLevel, rec.Header().Get("X-Request-Id"), logs.String())
			}
		})
	}
}
