package storetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

// testClientKeys: a private_key_jwt client's JWK Set and signing alg are stored, read back as fosite reads them,
// and replaced by an update. Served from the client cache, the row is confirmed by the statement that records the
// assertion's jti: a key changed meanwhile (by another node) makes it record nothing and report ErrStaleClient.
func testClientKeys(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	jwks := func(kid string) string {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: kid}}})
		return string(b)
	}
	exp := time.Now().Add(time.Minute)
	c := &models.Client{ID: "keyed", GrantTypes: []string{"client_credentials"},
		TokenEndpointAuthMethod: models.AuthMethodPrivateKeyJWT, JWKS: jwks("k1"), TokenEndpointAuthSigningAlg: "ES256"}
	must(t, "create", s.CreateClient(ctx, c))
	read := func(cctx context.Context, what, wantKid string) {
		t.Helper()
		for range 2 { // the second read comes from the cache
			fc, err := s.GetClient(cctx, "keyed")
			must(t, what, err)
			oc := fc.(fosite.OpenIDConnectClient)
			set := oc.GetJSONWebKeys()
			if oc.GetTokenEndpointAuthMethod() != models.AuthMethodPrivateKeyJWT || oc.GetTokenEndpointAuthSigningAlgorithm() != "ES256" ||
				set == nil || len(set.Key(wantKid)) != 1 || set.Key(wantKid)[0].Use != "sig" {
				t.Fatalf("%s: method %s, alg %s, keys %v; want private_key_jwt, ES256 and kid %s for signing", what,
					oc.GetTokenEndpointAuthMethod(), oc.GetTokenEndpointAuthSigningAlgorithm(), set, wantKid)
			}
		}
	}
	for i, kid := range []string{"k1", "k2"} {
		if i > 0 {
			c.JWKS = jwks(kid)
			must(t, "update", s.UpdateClient(ctx, c))
		}
		cctx, check := s.WithClientCache(ctx)
		read(cctx, "read "+kid, kid)
		must(t, "record a jti, confirming the row", s.SetClientAssertionJWT(cctx, "jti-"+kid, exp))
		if !check.Used() || check.Unconfirmed() {
			t.Errorf("%s: used %v, unconfirmed %v; want the cached row used and confirmed", kid, check.Used(), check.Unconfirmed())
		}
	}

	// Another node replaces the keys after this request read the cached row.
	cctx, check := s.WithClientCache(ctx)
	read(cctx, "before the change", "k2")
	changed := *c
	changed.JWKS = jwks("k3")
	must(t, "update", s.UpdateClient(ctx, &changed))
	if err := s.SetClientAssertionJWT(cctx, "jti-stale", exp); !errors.Is(err, models.ErrStaleClient) || !check.Unconfirmed() {
		t.Errorf("jti recorded on a stale row: %v (unconfirmed %v), want ErrStaleClient", err, check.Unconfirmed())
	}
	must(t, "the stale attempt spent no jti", s.SetClientAssertionJWT(ctx, "jti-stale", exp))
	if err := s.SetClientAssertionJWT(ctx, "jti-stale", exp); !errors.Is(err, fosite.ErrJTIKnown) {
		t.Errorf("a jti recorded twice: %v, want ErrJTIKnown", err)
	}
	c.JWKS = changed.JWKS

	// Signed request object settings (RFC 9101) round-trip.
	c.RequireSignedRequestObject, c.RequestObjectSigningAlg = true, "ES256"
	must(t, "update request object settings", s.UpdateClient(ctx, c))
	fc, err := s.GetClient(ctx, "keyed")
	must(t, "read request object settings", err)
	if rc := fc.(*models.Client); !rc.RequiresSignedRequestObject() || rc.GetRequestObjectSigningAlgorithm() != "ES256" {
		t.Errorf("request object settings read back as %v, %q", rc.RequiresSignedRequestObject(), rc.GetRequestObjectSigningAlgorithm())
	}
	c.RequireSignedRequestObject, c.RequestObjectSigningAlg = false, ""
	// Keys by URL instead: stored, read back as fosite reads them, and removed.
	c.JWKS, c.JWKSURI = "", "https://keys.example/billing.jwks"
	must(t, "update to a jwks_uri", s.UpdateClient(ctx, c))
	got, err := s.GetClient(ctx, "keyed")
	must(t, "get", err)
	if oc := got.(fosite.OpenIDConnectClient); oc.GetJSONWebKeysURI() != c.JWKSURI || oc.GetJSONWebKeys() != nil {
		t.Fatalf("jwks_uri %q, jwks %v; want %q and none", oc.GetJSONWebKeysURI(), oc.GetJSONWebKeys(), c.JWKSURI)
	}
	c.TokenEndpointAuthMethod, c.JWKSURI, c.TokenEndpointAuthSigningAlg = models.AuthMethodClientSecretBasic, "", ""
	must(t, "update without keys", s.UpdateClient(ctx, c))
	got, err = s.GetClient(ctx, "keyed")
	must(t, "get", err)
	if uri := got.(fosite.OpenIDConnectClient).GetJSONWebKeysURI(); uri != "" {
		t.Fatalf("jwks_uri %q after removing it", uri)
	}
}
