package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/models"
)

// tokenCases: token rows, one shape per fosite token kind (access, refresh, code, PKCE, OpenID Connect, PAR),
// and client assertion jtis.
func tokenCases() []testCase {
	cases := []testCase{
		{"openid session decodes into the requester's session", testOIDCIntoRequesterSession},
		{"par round trip keeps the authorize parameters", testPARRoundTrip},
		{"par expired is not found", testPARExpired},
		{"jti unknown, known, duplicate, expired", testJTI},
		{"jti presented at once by many is accepted once", testJTIConcurrent},
	}
	for _, k := range tokenKinds() {
		cases = append(cases,
			testCase{k.name + " create, get, delete with session round trip", func(t *testing.T, s *models.Store) { testKindRoundTrip(t, s, k) }},
			testCase{k.name + " unknown signature is not found", func(t *testing.T, s *models.Store) { testKindNotFound(t, s, k) }},
			testCase{k.name + " form secrets are not stored", func(t *testing.T, s *models.Store) { testKindFormSecrets(t, s, k) }},
			testCase{k.name + " duplicate signature is rejected", func(t *testing.T, s *models.Store) { testKindDuplicate(t, s, k) }},
		)
	}
	return cases
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

// testJTIConcurrent: goroutines recording the same jti at once (nodes sharing the database), on a fresh jti and
// on an expired one: exactly one is accepted, every other gets fosite.ErrJTIKnown.
func testJTIConcurrent(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	must(t, "set expired", s.SetClientAssertionJWT(ctx, "jti-race-old", time.Now().Add(-time.Minute)))
	for _, jti := range []string{"jti-race", "jti-race-old"} {
		const n = 8
		errs := make(chan error, n)
		start := make(chan struct{})
		for range n {
			go func() {
				<-start
				errs <- s.SetClientAssertionJWT(ctx, jti, time.Now().Add(time.Hour))
			}()
		}
		close(start)
		won := 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				won++
			case !errors.Is(err, fosite.ErrJTIKnown):
				t.Errorf("%s: %v, want nil or fosite.ErrJTIKnown", jti, err)
			}
		}
		if won != 1 {
			t.Errorf("%s: accepted %d times, want once", jti, won)
		}
	}
}
