package storetest

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/models"
)

// Fixtures and checks shared by the cases.

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

func mustClient(t *testing.T, s *models.Store, id string) *models.Client {
	t.Helper()
	c := &models.Client{
		ID:            id,
		Name:          "Client " + id,
		SecretHash:    "hash-of-" + id,
		RedirectURIs:  []string{"https://app.example/cb"},
		GrantTypes:    []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"},
		Scopes:        []string{"openid", "offline_access", "profile"},
		Audience:      []string{"https://api.example"},
	}
	if err := s.CreateClient(ctxT(t), c); err != nil {
		t.Fatalf("CreateClient(%q): %v", id, err)
	}
	return c
}

var baseTime = time.Now().UTC().Round(time.Second)

func newSession(subject string, exp time.Time) *openid.DefaultSession {
	return &openid.DefaultSession{
		Claims: &jwt.IDTokenClaims{
			Subject:  subject,
			Issuer:   "https://issuer.example",
			AuthTime: baseTime,
			Extra:    map[string]interface{}{"roles": []interface{}{"admin", "ops"}, "pool": "staff"},
		},
		Headers: &jwt.Headers{Extra: map[string]interface{}{"kid": "k1"}},
		ExpiresAt: map[fosite.TokenType]time.Time{
			fosite.AuthorizeCode:                 exp,
			fosite.AccessToken:                   exp,
			fosite.RefreshToken:                  exp,
			fosite.IDToken:                       exp,
			fosite.PushedAuthorizeRequestContext: exp,
		},
		Username: "alice@example.com",
		Subject:  subject,
	}
}

// newRequest is an authorize request of client for subject, its tokens expiring at exp.
func newRequest(client fosite.Client, requestID, subject string, exp time.Time) *fosite.AuthorizeRequest {
	redirect, _ := url.Parse("https://app.example/cb")
	return &fosite.AuthorizeRequest{
		ResponseTypes:        fosite.Arguments{"code"},
		RedirectURI:          redirect,
		State:                "state-123456",
		HandledResponseTypes: fosite.Arguments{"code"},
		ResponseMode:         fosite.ResponseModeFormPost,
		DefaultResponseMode:  fosite.ResponseModeQuery,
		Request: fosite.Request{
			ID:                requestID,
			RequestedAt:       baseTime,
			Client:            client,
			RequestedScope:    fosite.Arguments{"openid", "offline_access"},
			GrantedScope:      fosite.Arguments{"openid"},
			RequestedAudience: fosite.Arguments{"https://api.example"},
			GrantedAudience:   fosite.Arguments{"https://api.example"},
			Form: url.Values{
				"response_type":  {"code"},
				"scope":          {"openid offline_access"},
				"nonce":          {"nonce-abc"},
				"code_challenge": {"challenge-xyz"},
			},
			Session: newSession(subject, exp),
		},
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("%s: got error %v, want fosite.ErrNotFound", what, err)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// checkRequest compares what the store promises to keep.
func checkRequest(t *testing.T, got fosite.Requester, want *fosite.AuthorizeRequest) {
	t.Helper()
	if got == nil {
		t.Fatal("got nil requester")
	}
	if got.GetID() != want.GetID() {
		t.Errorf("ID = %q, want %q", got.GetID(), want.GetID())
	}
	if !got.GetRequestedAt().Equal(want.GetRequestedAt()) {
		t.Errorf("RequestedAt = %v, want %v", got.GetRequestedAt(), want.GetRequestedAt())
	}
	if got.GetClient() == nil || got.GetClient().GetID() != want.GetClient().GetID() {
		t.Errorf("Client = %v, want id %q", got.GetClient(), want.GetClient().GetID())
	}
	for _, f := range []struct {
		name      string
		got, want fosite.Arguments
	}{
		{"RequestedScopes", got.GetRequestedScopes(), want.GetRequestedScopes()},
		{"GrantedScopes", got.GetGrantedScopes(), want.GetGrantedScopes()},
		{"RequestedAudience", got.GetRequestedAudience(), want.GetRequestedAudience()},
		{"GrantedAudience", got.GetGrantedAudience(), want.GetGrantedAudience()},
	} {
		if !reflect.DeepEqual([]string(f.got), []string(f.want)) {
			t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
		}
	}
	for _, k := range []string{"nonce", "code_challenge", "scope", "response_type"} {
		if g, w := got.GetRequestForm().Get(k), want.GetRequestForm().Get(k); g != w {
			t.Errorf("form %s = %q, want %q", k, g, w)
		}
	}
	sess, ok := got.GetSession().(*openid.DefaultSession)
	if !ok {
		t.Fatalf("session is %T, want *openid.DefaultSession", got.GetSession())
	}
	wantSess := want.GetSession().(*openid.DefaultSession)
	if sess.Subject != wantSess.Subject || sess.GetSubject() != wantSess.GetSubject() || sess.Username != wantSess.Username {
		t.Errorf("session subject/username = %q/%q, want %q/%q", sess.Subject, sess.Username, wantSess.Subject, wantSess.Username)
	}
	for _, tt := range []fosite.TokenType{fosite.AccessToken, fosite.RefreshToken, fosite.AuthorizeCode} {
		if !sess.GetExpiresAt(tt).Equal(wantSess.GetExpiresAt(tt)) {
			t.Errorf("session ExpiresAt[%s] = %v, want %v", tt, sess.GetExpiresAt(tt), wantSess.GetExpiresAt(tt))
		}
	}
	if sess.Claims == nil || sess.Claims.Subject != wantSess.Claims.Subject || !sess.Claims.AuthTime.Equal(wantSess.Claims.AuthTime) ||
		!reflect.DeepEqual(sess.Claims.Extra, wantSess.Claims.Extra) {
		t.Errorf("session claims = %+v, want %+v", sess.Claims, wantSess.Claims)
	}
	if sess.Headers == nil || !reflect.DeepEqual(sess.Headers.Extra, wantSess.Headers.Extra) {
		t.Errorf("session headers = %+v, want %+v", sess.Headers, wantSess.Headers)
	}
}

// runWithDeadline runs fn and fails with every goroutine's stack if it does not finish in time.
func runWithDeadline(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(runDeadline):
		buf := make([]byte, 4<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("deadlock: not finished after %v; goroutines:\n%s", runDeadline, buf[:n])
	}
}
