package jsonapi

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/faults"
	"github.com/latchkey/latchkey/handlers/request"
)

// logLine is one record the writer logged (the access line left out).
type logLine map[string]any

// serve runs Write(err) behind the request middleware, with a database fault noted first when fault is set, and
// returns the response and what was logged besides the access line.
func serve(t *testing.T, err func(ctx context.Context) error, fault error) (*httptest.ResponseRecorder, []logLine) {
	t.Helper()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := request.Track(logger, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		faults.Note(r.Context(), fault)
		Write(w, r, err(r.Context()))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/auth/me", nil))
	var lines []logLine
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m logLine
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] != "http request" {
			lines = append(lines, m)
		}
	}
	return rec, lines
}

// The one writer: the client's mistakes go out as they are and log at Info; everything else is ours, logged at
// ERROR with its cause and the request id, and an outage is 503 with Retry-After whatever the error was called.
func TestWrite(t *testing.T) {
	dbDown := fmt.Errorf("select users: %w", driver.ErrBadConn)
	for _, tc := range []struct {
		name       string
		err        func(ctx context.Context) error
		fault      error // noted under the request before Write
		status     int
		code       Code
		desc       string // "" = not checked
		header     [2]string
		level      string
		causeHas   string
		retryAfter string
	}{
		{name: "client mistake", err: func(context.Context) error { return BadRequest("email and password are required.") },
			status: 400, code: InvalidRequest, desc: "email and password are required.", level: "INFO"},
		{name: "client mistake wrapped", err: func(context.Context) error { return fmt.Errorf("login: %w", New(409, EmailTaken, "taken")) },
			status: 409, code: EmailTaken, desc: "taken", level: "INFO"},
		{name: "challenge header goes out", err: func(context.Context) error {
			return New(401, InvalidToken, "expired").WithHeader("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`)
		}, status: 401, code: InvalidToken, header: [2]string{"WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`}, level: "INFO"},
		{name: "plain failure is a 500", err: func(context.Context) error { return fmt.Errorf("load pool: %w", errors.New("no such column")) },
			status: 500, code: ServerError, desc: "Internal server error.", level: "ERROR", causeHas: "load pool: no such column"},
		{name: "database unreachable is a 503", err: func(context.Context) error { return fmt.Errorf("load client: %w", dbDown) },
			status: 503, code: TemporarilyUnavailable, level: "ERROR", causeHas: "load client: select users", retryAfter: "5"},
		{name: "a fault recorded under the request makes any failure a 503", err: func(context.Context) error { return errors.New("list sessions: no rows and no reason") },
			fault: dbDown, status: 503, code: TemporarilyUnavailable, level: "ERROR", causeHas: "database: select users", retryAfter: "5"},
		{name: "explicit 503 keeps its words", err: func(context.Context) error {
			return New(503, TemporarilyUnavailable, "Sign-in is temporarily unavailable; try again shortly.").WithCause(errors.New("sign-in throttle unavailable: no table"))
		}, status: 503, code: TemporarilyUnavailable, desc: "Sign-in is temporarily unavailable; try again shortly.", level: "ERROR", causeHas: "sign-in throttle unavailable", retryAfter: "5"},
		{name: "explicit 500 keeps its words", err: func(context.Context) error {
			return New(500, ServerError, "The claims could not be encoded.").WithCause(errors.New("json: unsupported value"))
		}, status: 500, code: ServerError, desc: "The claims could not be encoded.", level: "ERROR", causeHas: "unsupported value"},
		{name: "an explicit 500 that was an outage is a 503", err: func(context.Context) error {
			return New(500, ServerError, "x").WithCause(dbDown)
		}, status: 503, code: TemporarilyUnavailable, level: "ERROR", causeHas: "bad connection", retryAfter: "5"},
		{name: "fosite's refusal keeps its code", err: func(ctx context.Context) error {
			return FromOAuth(ctx, fmt.Errorf("api refresh: %w", fosite.ErrInvalidGrant.WithHint("The refresh token was revoked.")))
		}, status: 400, code: InvalidGrant, level: "INFO"},
		// The example: fosite turns the database error it met while loading the client into
		// invalid_client. That must never reach the app as 401 invalid_client (it would sign its user out).
		{name: "database error during refresh is 503, not 401 invalid_client", err: func(ctx context.Context) error {
			return FromOAuth(ctx, fmt.Errorf("api refresh: %w", fosite.ErrInvalidClient.WithWrap(dbDown)))
		}, status: 503, code: TemporarilyUnavailable, level: "ERROR", causeHas: "bad connection", retryAfter: "5"},
		{name: "fosite's invalid_client after a recorded fault is 503", err: func(ctx context.Context) error {
			return FromOAuth(ctx, fmt.Errorf("api refresh: %w", fosite.ErrInvalidClient))
		}, fault: dbDown, status: 503, code: TemporarilyUnavailable, level: "ERROR", causeHas: "database: select users", retryAfter: "5"},
		{name: "fosite's server error is a 500", err: func(ctx context.Context) error {
			return FromOAuth(ctx, fosite.ErrServerError.WithWrap(errors.New("unexpected session type")))
		}, status: 500, code: ServerError, level: "ERROR", causeHas: "unexpected session type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, lines := serve(t, tc.err, tc.fault)
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if rec.Code != tc.status || body["error"] != string(tc.code) || (tc.desc != "" && body["error_description"] != tc.desc) {
				t.Errorf("answered %d %v, want %d %s %q", rec.Code, body, tc.status, tc.code, tc.desc)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			if tc.header[0] != "" && rec.Header().Get(tc.header[0]) != tc.header[1] {
				t.Errorf("%s = %q, want %q", tc.header[0], rec.Header().Get(tc.header[0]), tc.header[1])
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json;charset=UTF-8" || rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("Content-Type %q, Cache-Control %q", ct, rec.Header().Get("Cache-Control"))
			}
			if len(lines) != 1 {
				t.Fatalf("logged %v, want one line", lines)
			}
			l := lines[0]
			if l["level"] != tc.level || l["request_id"] != rec.Header().Get("X-Request-Id") || l["request_id"] == "" {
				t.Errorf("logged %v, want level %s with the request id %q", l, tc.level, rec.Header().Get("X-Request-Id"))
			}
			if cause, _ := l["cause"].(string); tc.causeHas != "" && !strings.Contains(cause, tc.causeHas) {
				t.Errorf("logged cause %q, want it to say %q", cause, tc.causeHas)
			}
			if tc.status < 500 && strings.Contains(rec.Body.String(), "select users") {
				t.Errorf("the cause reached the client: %s", rec.Body.String())
			}
			if tc.status >= 500 && strings.Contains(rec.Body.String(), tc.causeHas) {
				t.Errorf("the cause reached the client: %s", rec.Body.String())
			}
		})
	}
}

func TestDecode(t *testing.T) {
	type body struct {
		Email string `json:"email"`
	}
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		desc                    string
	}{
		{"ok", "application/json", `{"email":"a@example.com"}`, 0, ""},
		{"charset allowed", "application/json; charset=utf-8", `{"email":"a"}`, 0, ""},
		{"form body", "application/x-www-form-urlencoded", `email=a`, 415, "Send a JSON body with Content-Type: application/json."},
		{"empty", "application/json", ``, 400, "The request body is empty."},
		{"unknown field", "application/json", `{"emial":"a"}`, 400, `Malformed JSON: unknown field "emial".`},
		{"wrong type", "application/json", `{"email":1}`, 400, `Malformed JSON: field "email" must be string.`},
		{"syntax, without echoing the input", "application/json", `{"email":"secret-password`, 400, "Malformed JSON: could not decode the body."},
		{"two objects", "application/json", `{"email":"a"}{"email":"b"}`, 400, "Send exactly one JSON object."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.contentType)
			var dst body
			err := Decode(r, &dst)
			var e *Error
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("Decode: %v", err)
			case tc.status != 0 && (!errors.As(err, &e) || e.Status != tc.status || e.Code != InvalidRequest || e.Description != tc.desc):
				t.Fatalf("Decode = %v, want %d %q", err, tc.status, tc.desc)
			}
		})
	}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"email":"`+strings.Repeat("a", 100)+`"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 20)
	var e *Error
	if err := Decode(r, &struct{ Email string }{}); !errors.As(err, &e) || e.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("an oversized body: %v, want 413", err)
	}
}
