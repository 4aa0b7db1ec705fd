// Package storetest is the storage contract suite: every behaviour fosite and Latchkey rely on, run once
// against each backend.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/models"
)

// deadline bounds every case's context; runDeadline, shorter, bounds the concurrent cases, so a deadlock
// fails with goroutine stacks instead of hanging CI.
const (
	deadline    = 30 * time.Second
	runDeadline = 20 * time.Second
)

// Run runs the contract suite. newStore returns a fresh, migrated store, closed by the test's cleanup.
func Run(t *testing.T, newStore func(t *testing.T) *models.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *models.Store)
	}{
		{"migrate is idempotent", testMigrateIdempotent},
		{"ping and dialect", testPingDialect},
		{"code invalidated returns its requester with ErrInvalidatedAuthorizeCode", testCodeInvalidated},
		{"code invalidated twice reports it was already used", testCodeDoubleInvalidate},
		{"refresh revoke by request id deactivates every refresh token of the grant", testRevokeRefresh},
		{"access revoke by request id deletes every access token of the grant", testRevokeAccess},
		{"refresh rotation deactivates the token and deletes the grant's access tokens", testRotate},
		{"refresh concurrent rotation in transactions: exactly one wins", func(t *testing.T, s *models.Store) {
			testConcurrentRotation(t, s, true)
		}},
		{"refresh concurrent rotation without transactions: exactly one wins", func(t *testing.T, s *models.Store) {
			testConcurrentRotation(t, s, false)
		}},
		{"openid session decodes into the requester's session", testOIDCIntoRequesterSession},
		{"par round trip keeps the authorize parameters", testPARRoundTrip},
		{"par expired is not found", testPARExpired},
		{"expired rows are deleted in bounded batches", testDeleteExpired},
		{"a cleanup round names the tables with more to delete", testDeleteExpiredRound},
		{"transaction commit makes writes visible", testTxCommit},
		{"transaction rollback leaves nothing", testTxRollback},
		{"transaction nested begin is refused", testTxNested},
		{"transaction failed step inside a caller's transaction changes nothing", testTxSavepoint},
		{"the same token statements inside and outside transactions", testTokenStatementsAcrossTx},
		{"clients create, get, list, update secret", testClientsCRUD},
		{"clients duplicate id is ErrConflict", testClientDuplicate},
		{"clients unknown id is not found", testClientNotFound},
		{"clients invalid fields are ErrInvalid", testClientInvalid},
		{"clients delete removes every token issued to the client", testClientDeleteCascades},
		{"users create, get by id and case-insensitive email, list, delete", testUsersCRUD},
		{"users duplicate email differing in case is ErrConflict", testUserDuplicateEmail},
		{"users invalid email or password is ErrInvalid", testUserInvalid},
		{"users create with name, extras and verified email round-trips", testUserProfile},
		{"users invalid extras or name are ErrInvalid and write nothing", testUserProfileInvalid},
		{"users authenticate: right, wrong, unknown, disabled, any case", testAuthenticate},
		{"users setters update the user and reject bad input", testUserSetters},
		{"users disabling ends their browser sessions and revokes their tokens", testUserDisable},
		{"users update applies every field in one transaction or none", testUpdateUser},
		{"users delete removes their browser sessions and consents", testUserDeleteCascades},
		{"clients origins come from redirect URIs and allowed origins", testClientOrigins},
		{"clients allowed origin that is not an origin is ErrInvalid and writes nothing", testClientOriginsInvalid},
		{"clients delete removes consents given to the client", testClientDeleteConsents},
		{"browser sessions create and look up by token", testBrowserSessionCreateLookup},
		{"browser sessions expire when idle and at the absolute deadline", testBrowserSessionExpiry},
		{"browser sessions touch extends the idle deadline, never past the absolute one", testBrowserSessionTouch},
		{"browser sessions end: lookup fails and tokens issued through it are revoked", testBrowserSessionEnd},
		{"browser sessions end all of a user's others: current one and other users kept", testBrowserSessionEndOthers},
		{"browser sessions list active ones, most recently active first", testBrowserSessionList},
		{"consents accumulate per user and client", testConsents},
		{"consents concurrent saves all land", testConsentsConcurrent},
		{"auth challenges need a browser session; consent and take are bound to it", testAuthChallenges},
		{"auth challenges concurrent take: exactly one finishes it", testConcurrentChallengeTake},
		{"auth challenges are capped per browser session", testChallengesCappedPerSession},
		{"expired sessions and challenges are deleted in bounded batches", testDeleteExpiredSessionsAndChallenges},
		{"jti unknown, known, duplicate, expired", testJTI},
		{"signing keys rotate by compare-and-swap", testSigningKeysCAS},
		{"signing keys concurrent first insert: exactly one wins", testSigningKeysConcurrentFirst},
		{"signing keys retired past NotAfter leave the list", testSigningKeysList},
		{"signing keys scheduled successor is next until its activation, then the old key retires", testSigningKeysScheduled},
		{"signing keys immediate rotation overtaking a scheduled one: one active key at every instant", testSigningKeysImmediateOvertakesScheduled},
		{"signing keys 40 concurrent rotations from one key: exactly one wins", testSigningKeysConcurrentRotation},
		{"pools default exists after Migrate; create, get, list, update", testPoolsCRUD},
		{"pools malformed names are ErrInvalid", testPoolInvalidNames},
		{"pools same email in two pools is two users", testUsersSameEmailTwoPools},
		{"pools duplicate email in one pool, any case, is ErrConflict", testUserDuplicateEmailInPool},
		{"pools authenticate finds the user only in the given pool", testAuthenticateInPool},
		{"pools unknown pool for a user or client is ErrInvalid", testUnknownPoolInvalid},
		{"pools list users of one pool or all", testListUsersByPool},
		{"clients pool defaults to default; allow_signup round trips", testClientPoolDefault},
		{"clients encryption settings round trip and the methods return the parsed keys", testClientEncryptionRoundTrip},
		{"clients unusable encryption settings are ErrInvalid and write nothing", testClientEncryptionInvalid},
		{"clients update changes every mutable field and the origins", testClientUpdate},
		{"throttle free attempts, then blocks of Base doubling up to Max", testThrottleBackoff},
		{"throttle reservation on several keys is all or nothing and stops at the first refusal", testThrottleKeysInOrder},
		{"throttle attempts older than Window are forgotten", testThrottleWindow},
		{"throttle refund gives an attempt back; reset forgets the key", testThrottleRefundReset},
		{"throttle invalid policy is ErrInvalid; doubling does not overflow", testThrottleInvalidPolicy},
		{"throttle 40 concurrent reservations on one key: exactly Free proceed", testThrottleConcurrent},
		{"throttle rows a day old with their block passed are deleted", testThrottleDeleteExpired},
		{"throttle a refund back to no attempts leaves no row", testThrottleRefundLeavesNoRow},
		{"sign-in password change ends the other sessions and their tokens in one step", testChangePasswordEndsOtherSessions},
		{"a user's own password change applies only while the checked password is current", testChangeOwnPasswordOnlyOnce},
		{"sign-in a session starts only while the checked password is current", testSessionNeedsTheCheckedPassword},
		{"sign-in 40 sessions racing a password change: none created with the old password survives", testSessionsRacingAPasswordChange},
		{"sign-in sessions beyond the cap end the oldest and revoke its tokens", testSessionCap},
		{"sign-in 40 concurrent sessions on top of 30: exactly the cap stays active", testSessionCapConcurrent},
		{"sign-in confirming a session that ended meanwhile revokes its tokens", testConfirmBrowserSession},
	}
	for _, k := range tokenKinds() {
		k := k
		tests = append(tests,
			struct {
				name string
				run  func(t *testing.T, s *models.Store)
			}{k.name + " create, get, delete with session round trip", func(t *testing.T, s *models.Store) { testKindRoundTrip(t, s, k) }},
			struct {
				name string
				run  func(t *testing.T, s *models.Store)
			}{k.name + " unknown signature is not found", func(t *testing.T, s *models.Store) { testKindNotFound(t, s, k) }},
			struct {
				name string
				run  func(t *testing.T, s *models.Store)
			}{k.name + " form secrets are not stored", func(t *testing.T, s *models.Store) { testKindFormSecrets(t, s, k) }},
			struct {
				name string
				run  func(t *testing.T, s *models.Store)
			}{k.name + " duplicate signature is rejected", func(t *testing.T, s *models.Store) { testKindDuplicate(t, s, k) }},
		)
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

// Fixtures.

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

// tokenKind drives the per-kind cases.
type tokenKind struct {
	name   string
	create func(ctx context.Context, s *models.Store, key string, req *fosite.AuthorizeRequest) error
	get    func(ctx context.Context, s *models.Store, key string) (fosite.Requester, error)
	del    func(ctx context.Context, s *models.Store, key string) error // nil: the kind has no delete
}

func tokenKinds() []tokenKind {
	return []tokenKind{
		{
			name: "access",
			create: func(ctx context.Context, s *models.Store, k string, r *fosite.AuthorizeRequest) error {
				return s.CreateAccessTokenSession(ctx, k, r)
			},
			get: func(ctx context.Context, s *models.Store, k string) (fosite.Requester, error) {
				return s.GetAccessTokenSession(ctx, k, new(openid.DefaultSession))
			},
			del: func(ctx context.Context, s *models.Store, k string) error { return s.DeleteAccessTokenSession(ctx, k) },
		},
		{
			name: "refresh",
			create: func(ctx context.Context, s *models.Store, k string, r *fosite.AuthorizeRequest) error {
				return s.CreateRefreshTokenSession(ctx, k, "access-of-"+k, r)
			},
			get: func(ctx context.Context, s *models.Store, k string) (fosite.Requester, error) {
				return s.GetRefreshTokenSession(ctx, k, new(openid.DefaultSession))
			},
			del: func(ctx context.Context, s *models.Store, k string) error { return s.DeleteRefreshTokenSession(ctx, k) },
		},
		{
			name: "code",
			create: func(ctx context.Context, s *models.Store, k string, r *fosite.AuthorizeRequest) error {
				return s.CreateAuthorizeCodeSession(ctx, k, r)
			},
			get: func(ctx context.Context, s *models.Store, k string) (fosite.Requester, error) {
				return s.GetAuthorizeCodeSession(ctx, k, new(openid.DefaultSession))
			},
		},
		{
			name: "pkce",
			create: func(ctx context.Context, s *models.Store, k string, r *fosite.AuthorizeRequest) error {
				return s.CreatePKCERequestSession(ctx, k, r)
			},
			get: func(ctx context.Context, s *models.Store, k string) (fosite.Requester, error) {
				return s.GetPKCERequestSession(ctx, k, new(openid.DefaultSession))
			},
			del: func(ctx context.Context, s *models.Store, k string) error { return s.DeletePKCERequestSession(ctx, k) },
		},
		{
			name: "oidc",
			create: func(ctx context.Context, s *models.Store, k string, r *fosite.AuthorizeRequest) error {
				return s.CreateOpenIDConnectSession(ctx, k, r)
			},
			get: func(ctx context.Context, s *models.Store, k string) (fosite.Requester, error) {
				return s.GetOpenIDConnectSession(ctx, k, &fosite.Request{Session: new(openid.DefaultSession)})
			},
			del: func(ctx context.Context, s *models.Store, k string) error {
				return s.DeleteOpenIDConnectSession(ctx, k)
			},
		},
		{
			name: "par",
			create: func(ctx context.Context, s *models.Store, k string, r *fosite.AuthorizeRequest) error {
				return s.CreatePARSession(ctx, k, r)
			},
			get: func(ctx context.Context, s *models.Store, k string) (fosite.Requester, error) {
				return s.GetPARSession(ctx, k)
			},
			del: func(ctx context.Context, s *models.Store, k string) error { return s.DeletePARSession(ctx, k) },
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

// Per-kind cases.

func testKindRoundTrip(t *testing.T, s *models.Store, k tokenKind) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	want := newRequest(client, "req-1", "usr_alice", baseTime.Add(time.Hour))
	must(t, "create", k.create(ctx, s, "sig-1", want))
	got, err := k.get(ctx, s, "sig-1")
	must(t, "get", err)
	checkRequest(t, got, want)
	if _, err := k.get(ctx, s, "sig-2"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("get of another signature: %v, want fosite.ErrNotFound", err)
	}
	if k.del == nil {
		return
	}
	must(t, "delete", k.del(ctx, s, "sig-1"))
	_, err = k.get(ctx, s, "sig-1")
	wantNotFound(t, "get after delete", err)
	must(t, "delete again (idempotent)", k.del(ctx, s, "sig-1"))
}

func testKindNotFound(t *testing.T, s *models.Store, k tokenKind) {
	req, err := k.get(ctxT(t), s, "no-such-signature")
	wantNotFound(t, "get", err)
	if req != nil {
		t.Errorf("got requester %v with not found", req)
	}
}

func testKindFormSecrets(t *testing.T, s *models.Store, k tokenKind) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	req := newRequest(client, "req-1", "usr_alice", baseTime.Add(time.Hour))
	secrets := []string{"client_secret", "client_assertion", "password", "code", "code_verifier", "refresh_token", "token", "assertion"}
	for _, key := range secrets {
		req.Form.Set(key, "SECRET-"+key)
	}
	must(t, "create", k.create(ctx, s, "sig-1", req))
	got, err := k.get(ctx, s, "sig-1")
	must(t, "get", err)
	for _, key := range secrets {
		if v, ok := got.GetRequestForm()[key]; ok {
			t.Errorf("form %s was stored: %q", key, v)
		}
	}
	if got.GetRequestForm().Get("nonce") != "nonce-abc" {
		t.Errorf("form nonce = %q, want it kept", got.GetRequestForm().Get("nonce"))
	}
	if req.Form.Get("client_secret") == "" {
		t.Error("create modified the caller's form")
	}
}

func testKindDuplicate(t *testing.T, s *models.Store, k tokenKind) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	must(t, "create", k.create(ctx, s, "sig-1", newRequest(client, "req-1", "usr_alice", baseTime.Add(time.Hour))))
	if err := k.create(ctx, s, "sig-1", newRequest(client, "req-2", "usr_bob", baseTime.Add(time.Hour))); err == nil {
		t.Fatal("second create with the same signature succeeded")
	}
	got, err := k.get(ctx, s, "sig-1")
	must(t, "get", err)
	if got.GetID() != "req-1" {
		t.Errorf("duplicate create overwrote the row: ID = %q", got.GetID())
	}
}

// Codes, refresh tokens, revocation.

func testCodeInvalidated(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	want := newRequest(client, "req-1", "usr_alice", baseTime.Add(time.Hour))
	must(t, "create", s.CreateAuthorizeCodeSession(ctx, "code-1", want))
	must(t, "invalidate", s.InvalidateAuthorizeCodeSession(ctx, "code-1"))
	got, err := s.GetAuthorizeCodeSession(ctx, "code-1", new(openid.DefaultSession))
	if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Fatalf("get invalidated code: err = %v, want fosite.ErrInvalidatedAuthorizeCode", err)
	}
	checkRequest(t, got, want)
}

func testCodeDoubleInvalidate(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	must(t, "create", s.CreateAuthorizeCodeSession(ctx, "code-1", newRequest(client, "req-1", "usr_alice", baseTime.Add(time.Hour))))
	must(t, "first invalidate", s.InvalidateAuthorizeCodeSession(ctx, "code-1"))
	if err := s.InvalidateAuthorizeCodeSession(ctx, "code-1"); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Errorf("second invalidate: %v, want fosite.ErrInvalidatedAuthorizeCode (a code is exchanged once)", err)
	}
	wantNotFound(t, "invalidate unknown code", s.InvalidateAuthorizeCodeSession(ctx, "code-unknown"))
}

func testRevokeRefresh(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	exp := baseTime.Add(time.Hour)
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create r2", s.CreateRefreshTokenSession(ctx, "r2", "a2", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create r3", s.CreateRefreshTokenSession(ctx, "r3", "a3", newRequest(client, "grant-2", "usr_alice", exp)))
	must(t, "revoke", s.RevokeRefreshToken(ctx, "grant-1"))
	for _, sig := range []string{"r1", "r2"} {
		req, err := s.GetRefreshTokenSession(ctx, sig, new(openid.DefaultSession))
		if !errors.Is(err, fosite.ErrInactiveToken) {
			t.Errorf("get revoked %s: err = %v, want fosite.ErrInactiveToken", sig, err)
		}
		if req == nil || req.GetID() != "grant-1" {
			t.Errorf("get revoked %s: requester = %v, want the grant's request", sig, req)
		}
	}
	_, err := s.GetRefreshTokenSession(ctx, "r3", new(openid.DefaultSession))
	must(t, "other grant's token still active", err)
	must(t, "revoke unknown grant", s.RevokeRefreshToken(ctx, "grant-unknown"))
}

func testRevokeAccess(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	exp := baseTime.Add(time.Hour)
	must(t, "create a1", s.CreateAccessTokenSession(ctx, "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create a2", s.CreateAccessTokenSession(ctx, "a2", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create a3", s.CreateAccessTokenSession(ctx, "a3", newRequest(client, "grant-2", "usr_alice", exp)))
	must(t, "revoke", s.RevokeAccessToken(ctx, "grant-1"))
	for _, sig := range []string{"a1", "a2"} {
		_, err := s.GetAccessTokenSession(ctx, sig, new(openid.DefaultSession))
		wantNotFound(t, "get revoked "+sig, err)
	}
	_, err := s.GetAccessTokenSession(ctx, "a3", new(openid.DefaultSession))
	must(t, "other grant's token kept", err)
	must(t, "revoke unknown grant", s.RevokeAccessToken(ctx, "grant-unknown"))
}

func testRotate(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	exp := baseTime.Add(time.Hour)
	must(t, "create a1", s.CreateAccessTokenSession(ctx, "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create a2", s.CreateAccessTokenSession(ctx, "a2", newRequest(client, "grant-2", "usr_alice", exp)))
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a1", newRequest(client, "grant-1", "usr_alice", exp)))

	must(t, "rotate", s.RotateRefreshToken(ctx, "grant-1", "r1"))
	req, err := s.GetRefreshTokenSession(ctx, "r1", new(openid.DefaultSession))
	if !errors.Is(err, fosite.ErrInactiveToken) || req == nil || req.GetID() != "grant-1" {
		t.Errorf("get rotated token: (%v, %v), want its requester with fosite.ErrInactiveToken", req, err)
	}
	_, err = s.GetAccessTokenSession(ctx, "a1", new(openid.DefaultSession))
	wantNotFound(t, "the grant's access token after rotation", err)
	_, err = s.GetAccessTokenSession(ctx, "a2", new(openid.DefaultSession))
	must(t, "another grant's access token after rotation", err)

	if err := s.RotateRefreshToken(ctx, "grant-1", "r1"); !errors.Is(err, fosite.ErrSerializationFailure) {
		t.Errorf("rotating an inactive token: %v, want fosite.ErrSerializationFailure", err)
	}
	wantNotFound(t, "rotating an unknown token", s.RotateRefreshToken(ctx, "grant-1", "r-unknown"))
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

func testConcurrentRotation(t *testing.T, s *models.Store, inTx bool) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	exp := baseTime.Add(time.Hour)
	must(t, "create a1", s.CreateAccessTokenSession(ctx, "a1", newRequest(client, "grant-1", "usr_alice", exp)))
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a1", newRequest(client, "grant-1", "usr_alice", exp)))

	const workers = 8
	errs := make([]error, workers)
	runWithDeadline(t, func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if !inTx {
					errs[i] = s.RotateRefreshToken(ctx, "grant-1", "r1")
					return
				}
				txCtx, err := s.BeginTX(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				if err := s.RotateRefreshToken(txCtx, "grant-1", "r1"); err != nil {
					errs[i] = err
					if rbErr := s.Rollback(txCtx); rbErr != nil {
						errs[i] = fmt.Errorf("%w (rollback: %v)", err, rbErr)
					}
					return
				}
				// What fosite does next inside the same transaction.
				if err := s.CreateRefreshTokenSession(txCtx, fmt.Sprintf("r-next-%d", i), "a-next",
					newRequest(client, "grant-1", "usr_alice", exp)); err != nil {
					errs[i] = err
					_ = s.Rollback(txCtx)
					return
				}
				errs[i] = s.Commit(txCtx)
			}()
		}
		close(start)
		wg.Wait()
	})
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, fosite.ErrSerializationFailure):
		default:
			t.Errorf("worker %d: %v, want nil or fosite.ErrSerializationFailure", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d rotations succeeded, want exactly 1 (errors: %v)", wins, errs)
	}
}

func testOIDCIntoRequesterSession(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	want := newRequest(client, "req-1", "usr_alice", baseTime.Add(time.Hour))
	must(t, "create", s.CreateOpenIDConnectSession(ctx, "code-1", want))
	sess := new(openid.DefaultSession)
	got, err := s.GetOpenIDConnectSession(ctx, "code-1", &fosite.Request{Session: sess})
	must(t, "get", err)
	if got.GetSession() != fosite.Session(sess) {
		t.Errorf("session was not decoded into the requester's session")
	}
	if sess.Subject != "usr_alice" || sess.Claims == nil || sess.Claims.Subject != "usr_alice" {
		t.Errorf("decoded session = %+v", sess)
	}
}

func testPARRoundTrip(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	want := newRequest(client, "req-1", "usr_alice", time.Now().Add(time.Minute))
	uri := "urn:ietf:params:oauth:request_uri:abcdef"
	must(t, "create", s.CreatePARSession(ctx, uri, want))
	got, err := s.GetPARSession(ctx, uri)
	must(t, "get", err)
	ar, ok := got.(*fosite.AuthorizeRequest)
	if !ok {
		t.Fatalf("GetPARSession returned %T, want *fosite.AuthorizeRequest", got)
	}
	if !reflect.DeepEqual(ar.ResponseTypes, want.ResponseTypes) || ar.State != want.State ||
		ar.ResponseMode != want.ResponseMode || ar.DefaultResponseMode != want.DefaultResponseMode ||
		!reflect.DeepEqual(ar.HandledResponseTypes, want.HandledResponseTypes) ||
		ar.RedirectURI == nil || ar.RedirectURI.String() != want.RedirectURI.String() {
		t.Errorf("authorize parameters = %+v, want %+v", ar, want)
	}
	if got.GetClient().GetID() != "app" || got.GetID() != "req-1" {
		t.Errorf("client/id = %q/%q", got.GetClient().GetID(), got.GetID())
	}
	must(t, "delete", s.DeletePARSession(ctx, uri))
	_, err = s.GetPARSession(ctx, uri)
	wantNotFound(t, "get after delete", err)
}

func testPARExpired(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	must(t, "create", s.CreatePARSession(ctx, "urn:par:old", newRequest(client, "req-1", "usr_alice", time.Now().Add(-time.Second))))
	_, err := s.GetPARSession(ctx, "urn:par:old")
	wantNotFound(t, "get expired PAR", err)
}

// Maintenance.

func testDeleteExpired(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	now := time.Now().UTC()
	const expired, live, batch = 5, 3, 2
	for i := range expired {
		must(t, "create expired", s.CreateAccessTokenSession(ctx, fmt.Sprintf("old-%d", i),
			newRequest(client, fmt.Sprintf("g-old-%d", i), "usr_alice", now.Add(-time.Duration(i+1)*time.Minute))))
	}
	for i := range live {
		must(t, "create live", s.CreateAccessTokenSession(ctx, fmt.Sprintf("new-%d", i),
			newRequest(client, fmt.Sprintf("g-new-%d", i), "usr_alice", now.Add(time.Hour))))
	}
	// A refresh token without expiry never expires.
	forever := newRequest(client, "g-forever", "usr_alice", now.Add(time.Hour))
	delete(forever.Session.(*openid.DefaultSession).ExpiresAt, fosite.RefreshToken)
	must(t, "create non-expiring refresh", s.CreateRefreshTokenSession(ctx, "r-forever", "", forever))
	// A retired key past its NotAfter goes; the active one stays.
	must(t, "first key", s.ReplaceActiveKey(ctx, "", keyRecord("k1", keys.RS256), now.Add(-2*time.Hour), time.Time{}))
	must(t, "rotate key", s.ReplaceActiveKey(ctx, "k1", keyRecord("k2", keys.RS256), now.Add(-time.Hour), now.Add(-time.Minute)))

	var counts []int64
	for range 4 {
		n, err := s.DeleteExpired(ctx, now, batch)
		must(t, "DeleteExpired", err)
		counts = append(counts, n)
	}
	// Round 1: 2 access tokens + 1 signing key; round 2: 2; round 3: the last 1; then nothing.
	if want := []int64{3, 2, 1, 0}; !reflect.DeepEqual(counts, want) {
		t.Errorf("DeleteExpired counts = %v, want %v", counts, want)
	}
	for i := range expired {
		_, err := s.GetAccessTokenSession(ctx, fmt.Sprintf("old-%d", i), new(openid.DefaultSession))
		wantNotFound(t, "expired token", err)
	}
	for i := range live {
		_, err := s.GetAccessTokenSession(ctx, fmt.Sprintf("new-%d", i), new(openid.DefaultSession))
		must(t, "live token kept", err)
	}
	_, err := s.GetRefreshTokenSession(ctx, "r-forever", new(openid.DefaultSession))
	must(t, "non-expiring refresh kept", err)
	ks, err := s.ListSigningKeys(ctx, now.Add(-24*time.Hour))
	must(t, "list keys", err)
	if len(ks) != 1 || ks[0].KID != "k2" {
		t.Errorf("keys after cleanup = %v, want only k2", kids(ks))
	}
	if _, err := s.DeleteExpired(ctx, now, 0); err == nil {
		t.Error("DeleteExpired with batch 0 succeeded")
	}
}

// A round names the tables it deleted a full batch from, and a round over only those touches no other table.
func testDeleteExpiredRound(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	now := time.Now().UTC()
	for i := range 3 {
		must(t, "create expired access", s.CreateAccessTokenSession(ctx, fmt.Sprintf("old-%d", i),
			newRequest(client, fmt.Sprintf("g-old-%d", i), "usr_alice", now.Add(-time.Minute))))
	}
	must(t, "create expired refresh", s.CreateRefreshTokenSession(ctx, "r-old", "", newRequest(client, "g-r", "usr_alice", now.Add(-time.Minute))))

	n, more, err := s.DeleteExpiredRound(ctx, now, 2, nil)
	must(t, "first round", err)
	if n != 3 || !reflect.DeepEqual(more, []string{"oauth2_access"}) {
		t.Fatalf("first round = %d, %v; want 3 (2 access + 1 refresh), [oauth2_access]", n, more)
	}
	// An expired refresh token appears now; a round over the access table alone leaves it.
	must(t, "create another expired refresh", s.CreateRefreshTokenSession(ctx, "r-old-2", "", newRequest(client, "g-r2", "usr_alice", now.Add(-time.Minute))))
	n, more, err = s.DeleteExpiredRound(ctx, now, 2, more)
	must(t, "second round", err)
	if n != 1 || len(more) != 0 {
		t.Fatalf("second round = %d, %v; want 1, none", n, more)
	}
	if n, err := s.DeleteExpired(ctx, now, 2); err != nil || n != 1 {
		t.Fatalf("a full sweep after = %d, %v; want 1: the refresh token the access-only round left", n, err)
	}
}

// Transactions.

func testTxCommit(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	txCtx, err := s.BeginTX(ctx)
	must(t, "begin", err)
	client := &models.Client{ID: "app", GrantTypes: []string{"authorization_code"}}
	must(t, "create client in tx", s.CreateClient(txCtx, client))
	must(t, "create token in tx", s.CreateAccessTokenSession(txCtx, "a1", newRequest(client, "g1", "usr_alice", baseTime.Add(time.Hour))))
	_, err = s.GetAccessTokenSession(txCtx, "a1", new(openid.DefaultSession))
	must(t, "read own write in tx", err)
	must(t, "commit", s.Commit(txCtx))
	must(t, "rollback after commit is harmless", s.Rollback(txCtx))
	_, err = s.GetAccessTokenSession(ctx, "a1", new(openid.DefaultSession))
	must(t, "read after commit", err)
}

func testTxRollback(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	must(t, "create r1", s.CreateRefreshTokenSession(ctx, "r1", "a0", newRequest(client, "g1", "usr_alice", baseTime.Add(time.Hour))))
	txCtx, err := s.BeginTX(ctx)
	must(t, "begin", err)
	must(t, "create in tx", s.CreateAccessTokenSession(txCtx, "a1", newRequest(client, "g1", "usr_alice", baseTime.Add(time.Hour))))
	must(t, "rotate in tx", s.RotateRefreshToken(txCtx, "g1", "r1"))
	_, err = s.CreateUser(txCtx, "tx@example.com", "pw", nil)
	must(t, "create user in tx", err)
	must(t, "rollback", s.Rollback(txCtx))
	_, err = s.GetAccessTokenSession(ctx, "a1", new(openid.DefaultSession))
	wantNotFound(t, "token after rollback", err)
	_, err = s.GetRefreshTokenSession(ctx, "r1", new(openid.DefaultSession))
	must(t, "refresh token active again after rollback", err)
	_, err = s.UserByEmail(ctx, "", "tx@example.com")
	wantNotFound(t, "user after rollback", err)
}

// testTokenStatementsAcrossTx runs the token insert and lookup outside a transaction, then inside ones that roll
// back and commit, then outside again: the statements prepared on the pool must serve the transactions (and be
// undone with them) without waiting for a connection the transaction holds, and duplicates stay conflicts.
func testTokenStatementsAcrossTx(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	req := func(id string) fosite.Requester { return newRequest(client, id, "usr_alice", baseTime.Add(time.Hour)) }
	get := func(ctx context.Context, sig string) error {
		_, err := s.GetAccessTokenSession(ctx, sig, new(openid.DefaultSession))
		return err
	}
	must(t, "create a0", s.CreateAccessTokenSession(ctx, "a0", req("g0")))
	must(t, "get a0", get(ctx, "a0"))

	txCtx, err := s.BeginTX(ctx)
	must(t, "begin", err)
	must(t, "create a1 in tx", s.CreateAccessTokenSession(txCtx, "a1", req("g1")))
	must(t, "get a1 in tx", get(txCtx, "a1"))
	must(t, "get a0 in tx", get(txCtx, "a0"))
	must(t, "rollback", s.Rollback(txCtx))

	txCtx, err = s.BeginTX(ctx)
	must(t, "begin", err)
	must(t, "create a2 in tx", s.CreateAccessTokenSession(txCtx, "a2", req("g2")))
	must(t, "commit", s.Commit(txCtx))

	wantNotFound(t, "a1 after rollback", get(ctx, "a1"))
	must(t, "get a2 after commit", get(ctx, "a2"))
	if err := s.CreateAccessTokenSession(ctx, "a2", req("g2")); !errors.Is(err, models.ErrConflict) {
		t.Errorf("duplicate access token: %v, want models.ErrConflict", err)
	}
	must(t, "create a3", s.CreateAccessTokenSession(ctx, "a3", req("g3")))
	must(t, "get a3", get(ctx, "a3"))
}

func testTxNested(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	txCtx, err := s.BeginTX(ctx)
	must(t, "begin", err)
	defer func() { must(t, "rollback", s.Rollback(txCtx)) }()
	if _, err := s.BeginTX(txCtx); err == nil {
		t.Error("nested BeginTX succeeded")
	}
	if err := s.Commit(ctx); err == nil {
		t.Error("Commit without a transaction succeeded")
	}
}

func testTxSavepoint(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	must(t, "first key", s.ReplaceActiveKey(ctx, "", keyRecord("k1", keys.RS256), baseTime, time.Time{}))
	txCtx, err := s.BeginTX(ctx)
	must(t, "begin", err)
	// k1 is retired, then the insert of a duplicate kid fails: the retirement must be undone.
	err = s.ReplaceActiveKey(txCtx, "k1", keyRecord("k1", keys.RS256), baseTime, baseTime.Add(time.Hour))
	if !errors.Is(err, keys.ErrRotationConflict) {
		t.Fatalf("ReplaceActiveKey with a duplicate kid: %v, want keys.ErrRotationConflict", err)
	}
	// The caller's transaction is still usable and commits without the half-done rotation.
	must(t, "list in tx", func() error { _, err := s.ListSigningKeys(txCtx, baseTime); return err }())
	must(t, "commit", s.Commit(txCtx))
	ks, err := s.ListSigningKeys(ctx, baseTime.Add(2*time.Hour))
	must(t, "list", err)
	if len(ks) != 1 || ks[0].KID != "k1" || ks[0].RetiredAt != nil {
		t.Errorf("keys = %+v, want k1 still active", ks)
	}
}

// Clients.

func testClientsCRUD(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	before := time.Now().Add(-time.Second)
	a := mustClient(t, s, "b-app")
	if a.CreatedAt.Before(before) || !a.UpdatedAt.Equal(a.CreatedAt) {
		t.Errorf("timestamps not set: %v %v", a.CreatedAt, a.UpdatedAt)
	}
	pub := &models.Client{ID: "a-spa", Public: true, RedirectURIs: []string{"http://localhost/cb"}, AccessTokenFormat: "jwt"}
	must(t, "create public", s.CreateClient(ctx, pub))

	got, err := s.ClientByID(ctx, "b-app")
	must(t, "ClientByID", err)
	if !reflect.DeepEqual(got.RedirectURIs, a.RedirectURIs) || !reflect.DeepEqual(got.Scopes, a.Scopes) ||
		!reflect.DeepEqual(got.Audience, a.Audience) || got.SecretHash != a.SecretHash || got.Name != a.Name ||
		!got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("ClientByID = %+v, want %+v", got, a)
	}
	fc, err := s.GetClient(ctx, "b-app")
	must(t, "GetClient", err)
	oidcClient, ok := fc.(fosite.OpenIDConnectClient)
	if !ok || oidcClient.GetTokenEndpointAuthMethod() != "client_secret_basic" {
		t.Errorf("confidential client auth method = %v", fc)
	}
	if string(fc.GetHashedSecret()) != "hash-of-b-app" || fc.IsPublic() {
		t.Errorf("GetClient secret/public = %q/%v", fc.GetHashedSecret(), fc.IsPublic())
	}
	gt := fc.GetGrantTypes()
	gt[0] = "mutated"
	if fc.GetGrantTypes()[0] != "authorization_code" {
		t.Error("GetGrantTypes returned the client's own slice")
	}
	if _, ok := fc.(fosite.ResponseModeClient); !ok {
		t.Error("client is not a fosite.ResponseModeClient")
	}
	pc, err := s.GetClient(ctx, "a-spa")
	must(t, "GetClient public", err)
	if pc.(fosite.OpenIDConnectClient).GetTokenEndpointAuthMethod() != "none" || !pc.IsPublic() ||
		pc.(*models.Client).AccessTokenFormat != "jwt" {
		t.Errorf("public client = %+v", pc)
	}

	list, err := s.ListClients(ctx)
	must(t, "ListClients", err)
	if len(list) != 2 || list[0].ID != "b-app" || list[1].ID != "a-spa" {
		t.Errorf("ListClients order = %v, want creation order [b-app a-spa]", clientIDs(list))
	}

	must(t, "UpdateClientSecret", s.UpdateClientSecret(ctx, "b-app", "new-hash"))
	got, err = s.ClientByID(ctx, "b-app")
	must(t, "ClientByID after update", err)
	if got.SecretHash != "new-hash" || got.UpdatedAt.Before(got.CreatedAt) {
		t.Errorf("after UpdateClientSecret: %+v", got)
	}
	wantNotFound(t, "UpdateClientSecret unknown", s.UpdateClientSecret(ctx, "nope", "x"))
}

func testClientDuplicate(t *testing.T, s *models.Store) {
	mustClient(t, s, "app")
	err := s.CreateClient(ctxT(t), &models.Client{ID: "app"})
	if !errors.Is(err, models.ErrConflict) {
		t.Errorf("duplicate CreateClient: %v, want models.ErrConflict", err)
	}
}

func testClientNotFound(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	_, err := s.GetClient(ctx, "nope")
	wantNotFound(t, "GetClient", err)
	_, err = s.ClientByID(ctx, "nope")
	if !errors.Is(err, models.ErrNotFound) {
		t.Errorf("ClientByID: %v, want models.ErrNotFound", err)
	}
	wantNotFound(t, "DeleteClient", s.DeleteClient(ctx, "nope"))
}

func testClientInvalid(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	for _, c := range []*models.Client{
		{ID: ""},
		{ID: "x", TokenEndpointAuthMethod: "private_key_jwt_typo"},
		{ID: "y", AccessTokenFormat: "jwe"},
	} {
		if err := s.CreateClient(ctx, c); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("CreateClient(%+v): %v, want models.ErrInvalid", c, err)
		}
	}
}

func testClientDeleteCascades(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	a := mustClient(t, s, "a")
	b := mustClient(t, s, "b")
	kinds := tokenKinds()
	exp := time.Now().Add(time.Hour)
	for _, k := range kinds {
		must(t, "create "+k.name+" for a", k.create(ctx, s, "a-"+k.name, newRequest(a, "ga", "usr_alice", exp)))
		must(t, "create "+k.name+" for b", k.create(ctx, s, "b-"+k.name, newRequest(b, "gb", "usr_alice", exp)))
	}
	must(t, "DeleteClient", s.DeleteClient(ctx, "a"))
	_, err := s.ClientByID(ctx, "a")
	wantNotFound(t, "deleted client", err)
	for _, k := range kinds {
		_, err := k.get(ctx, s, "a-"+k.name)
		wantNotFound(t, k.name+" of deleted client", err)
		_, err = k.get(ctx, s, "b-"+k.name)
		must(t, k.name+" of other client", err)
	}
}

// Users.

func testUsersCRUD(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u, err := s.CreateUser(ctx, "  Alice@Example.COM ", "correct horse", []string{"admin"})
	must(t, "CreateUser", err)
	if !strings.HasPrefix(u.ID, "usr_") || len(u.ID) != len("usr_")+26 || u.Email != "Alice@Example.COM" ||
		!reflect.DeepEqual(u.Roles, []string{"admin"}) || u.CreatedAt.IsZero() {
		t.Errorf("created user = %+v", u)
	}
	ok, err := models.VerifyPassword(u.PasswordHash, "correct horse")
	if err != nil || !ok {
		t.Errorf("VerifyPassword(right) = %v, %v", ok, err)
	}
	ok, err = models.VerifyPassword(u.PasswordHash, "wrong horse")
	if err != nil || ok {
		t.Errorf("VerifyPassword(wrong) = %v, %v", ok, err)
	}
	byID, err := s.UserByID(ctx, u.ID)
	must(t, "UserByID", err)
	byEmail, err := s.UserByEmail(ctx, "", "alice@EXAMPLE.com")
	must(t, "UserByEmail", err)
	if byID.ID != u.ID || byEmail.ID != u.ID || byID.PasswordHash != u.PasswordHash || !byID.CreatedAt.Equal(u.CreatedAt) {
		t.Errorf("lookups = %+v / %+v, want %+v", byID, byEmail, u)
	}
	bob, err := s.CreateUser(ctx, "bob@example.com", "pw", nil)
	must(t, "CreateUser bob", err)
	list, err := s.ListUsers(ctx, "")
	must(t, "ListUsers", err)
	if len(list) != 2 || list[0].ID != u.ID || list[1].ID != bob.ID || list[1].Roles == nil {
		t.Errorf("ListUsers = %+v", list)
	}

	client := mustClient(t, s, "app")
	must(t, "token for alice", s.CreateAccessTokenSession(ctx, "a-alice", newRequest(client, "g", u.ID, time.Now().Add(time.Hour))))
	must(t, "DeleteUser", s.DeleteUser(ctx, u.ID))
	_, err = s.UserByID(ctx, u.ID)
	wantNotFound(t, "deleted user", err)
	_, err = s.GetAccessTokenSession(ctx, "a-alice", new(openid.DefaultSession))
	wantNotFound(t, "deleted user's token", err)
	wantNotFound(t, "DeleteUser again", s.DeleteUser(ctx, u.ID))
	_, err = s.UserByEmail(ctx, "", "nobody@example.com")
	wantNotFound(t, "UserByEmail unknown", err)
}

func testUserDuplicateEmail(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	_, err := s.CreateUser(ctx, "carol@example.com", "pw", nil)
	must(t, "CreateUser", err)
	if _, err := s.CreateUser(ctx, "CAROL@example.COM", "pw2", nil); !errors.Is(err, models.ErrConflict) {
		t.Errorf("duplicate email in other case: %v, want models.ErrConflict", err)
	}
}

func testUserInvalid(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	for _, c := range []struct{ email, password string }{
		{"no-at-sign", "pw"},
		{"two@at@example.com", "pw"},
		{"@example.com", "pw"},
		{"alice@", "pw"},
		{strings.Repeat("a", 250) + "@example.com", "pw"},
		{"ok@example.com", ""},
		{"ok@example.com", strings.Repeat("p", 1025)},
	} {
		if _, err := s.CreateUser(ctx, c.email, c.password, nil); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("CreateUser(%.20q, %d-byte password): %v, want models.ErrInvalid", c.email, len(c.password), err)
		}
	}
}

// Client assertion jtis.

func testJTI(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	must(t, "unknown jti is valid", s.ClientAssertionJWTValid(ctx, "jti-1"))
	must(t, "set", s.SetClientAssertionJWT(ctx, "jti-1", time.Now().Add(time.Hour)))
	if err := s.ClientAssertionJWTValid(ctx, "jti-1"); !errors.Is(err, fosite.ErrJTIKnown) {
		t.Errorf("known jti: %v, want fosite.ErrJTIKnown", err)
	}
	if err := s.SetClientAssertionJWT(ctx, "jti-1", time.Now().Add(time.Hour)); !errors.Is(err, fosite.ErrJTIKnown) {
		t.Errorf("set known jti: %v, want fosite.ErrJTIKnown", err)
	}
	must(t, "set expired", s.SetClientAssertionJWT(ctx, "jti-old", time.Now().Add(-time.Minute)))
	must(t, "expired jti is valid", s.ClientAssertionJWTValid(ctx, "jti-old"))
	must(t, "expired jti can be set again", s.SetClientAssertionJWT(ctx, "jti-old", time.Now().Add(time.Hour)))
	if err := s.ClientAssertionJWTValid(ctx, "jti-old"); !errors.Is(err, fosite.ErrJTIKnown) {
		t.Errorf("re-set jti: %v, want fosite.ErrJTIKnown", err)
	}
}

// Signing keys.

func keyRecord(kid, alg string) keys.Record {
	return keys.Record{
		KID: kid, Alg: alg,
		PublicJWK:     []byte(`{"kid":"` + kid + `"}`),
		SealedPrivate: []byte{0, 1, 2, 0xff, byte(len(kid))},
	}
}

func kids(rs []keys.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.KID)
	}
	sort.Strings(out)
	return out
}

func clientIDs(cs []models.Client) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func testSigningKeysCAS(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := time.Now().UTC()
	must(t, "first key", s.ReplaceActiveKey(ctx, "", keyRecord("k1", keys.RS256), now, time.Time{}))
	if err := s.ReplaceActiveKey(ctx, "", keyRecord("k2", keys.RS256), now, now.Add(time.Hour)); !errors.Is(err, keys.ErrRotationConflict) {
		t.Errorf("second first-key: %v, want keys.ErrRotationConflict", err)
	}
	must(t, "other alg is independent", s.ReplaceActiveKey(ctx, "", keyRecord("e1", keys.ES256), now, time.Time{}))
	must(t, "rotate k1 -> k2", s.ReplaceActiveKey(ctx, "k1", keyRecord("k2", keys.RS256), now, now.Add(time.Hour)))
	if err := s.ReplaceActiveKey(ctx, "k1", keyRecord("k3", keys.RS256), now, now.Add(time.Hour)); !errors.Is(err, keys.ErrRotationConflict) {
		t.Errorf("rotate from a retired kid: %v, want keys.ErrRotationConflict", err)
	}
	if err := s.ReplaceActiveKey(ctx, "e1", keyRecord("k3", keys.RS256), now, now.Add(time.Hour)); !errors.Is(err, keys.ErrRotationConflict) {
		t.Errorf("rotate from another alg's kid: %v, want keys.ErrRotationConflict", err)
	}
	ks, err := s.ListSigningKeys(ctx, now)
	must(t, "list", err)
	if got := kids(ks); !reflect.DeepEqual(got, []string{"e1", "k1", "k2"}) {
		t.Fatalf("keys = %v, want [e1 k1 k2]", got)
	}
	for _, k := range ks {
		switch k.KID {
		case "k1":
			if k.RetiredAt == nil || !k.RetiredAt.Equal(now.Truncate(time.Microsecond)) || k.NotAfter == nil ||
				!k.NotAfter.Equal(now.Add(time.Hour).Truncate(time.Microsecond)) {
				t.Errorf("retired k1 = %+v", k)
			}
		case "k2":
			if k.RetiredAt != nil || k.NotAfter != nil || k.Alg != keys.RS256 ||
				string(k.PublicJWK) != `{"kid":"k2"}` || !reflect.DeepEqual(k.SealedPrivate, keyRecord("k2", "").SealedPrivate) {
				t.Errorf("active k2 = %+v", k)
			}
		}
	}
}

func testSigningKeysConcurrentFirst(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	const workers = 6
	errs := make([]error, workers)
	runWithDeadline(t, func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.ReplaceActiveKey(ctx, "", keyRecord(fmt.Sprintf("k%d", i), keys.ES256), time.Now(), time.Time{})
			}()
		}
		close(start)
		wg.Wait()
	})
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, keys.ErrRotationConflict):
		default:
			t.Errorf("worker %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d first inserts succeeded, want 1", wins)
	}
}

func testSigningKeysList(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := time.Now().UTC()
	must(t, "k1", s.ReplaceActiveKey(ctx, "", keyRecord("k1", keys.RS256), now, time.Time{}))
	must(t, "k2", s.ReplaceActiveKey(ctx, "k1", keyRecord("k2", keys.RS256), now, now.Add(time.Hour)))
	ks, err := s.ListSigningKeys(ctx, now.Add(59*time.Minute))
	must(t, "list before NotAfter", err)
	if got := kids(ks); !reflect.DeepEqual(got, []string{"k1", "k2"}) {
		t.Errorf("before NotAfter: %v, want [k1 k2]", got)
	}
	ks, err = s.ListSigningKeys(ctx, now.Add(61*time.Minute))
	must(t, "list after NotAfter", err)
	if got := kids(ks); !reflect.DeepEqual(got, []string{"k2"}) {
		t.Errorf("after NotAfter: %v, want [k2]", got)
	}
}

// Schema.

func testMigrateIdempotent(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	v1, err := s.SchemaVersion(ctx)
	must(t, "SchemaVersion", err)
	if v1 < 1 {
		t.Fatalf("SchemaVersion after Migrate = %d", v1)
	}
	must(t, "Migrate again", s.Migrate(ctx))
	must(t, "Migrate a third time", s.Migrate(ctx))
	v2, err := s.SchemaVersion(ctx)
	must(t, "SchemaVersion", err)
	if v2 != v1 {
		t.Errorf("SchemaVersion changed %d -> %d", v1, v2)
	}
}

func testPingDialect(t *testing.T, s *models.Store) {
	must(t, "Ping", s.Ping(ctxT(t)))
	if d := s.Dialect(); d != "sqlite" && d != "postgres" {
		t.Errorf("Dialect = %q", d)
	}
}
