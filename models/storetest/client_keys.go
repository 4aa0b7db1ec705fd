package storetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

// testClientKeys: a private_key_jwt client's JWK Set and signing alg are stored, read back as fosite reads them,
// replaced by an update, and never served from the client cache (its check confirms a secret hash, not keys).
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
	c := &models.Client{ID: "keyed", GrantTypes: []string{"client_credentials"},
		TokenEndpointAuthMethod: models.AuthMethodPrivateKeyJWT, JWKS: jwks("k1"), TokenEndpointAuthSigningAlg: "ES256"}
	must(t, "create", s.CreateClient(ctx, c))
	read := func(what, wantKid string) {
		t.Helper()
		cctx, check := s.WithClientCache(ctx)
		for range 2 { // the second read would come from the cache if keyed clients were cached
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
		if check.Used() {
			t.Errorf("%s: a client with keys was answered from the client cache", what)
		}
	}
	read("after create", "k1")
	c.JWKS = jwks("k2")
	must(t, "update", s.UpdateClient(ctx, c))
	read("after update", "k2")

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
