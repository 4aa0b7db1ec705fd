package storetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/models"
)

// clientSettingsCases: clients in pools, their OpenID Connect encryption settings, and updates of every mutable
// field.
func clientSettingsCases() []testCase {
	return []testCase{
		{"clients pool defaults to default; allow_signup round trips", testClientPoolDefault},
		{"clients encryption settings round trip and the methods return the parsed keys", testClientEncryptionRoundTrip},
		{"clients unusable encryption settings are ErrInvalid and write nothing", testClientEncryptionInvalid},
		{"clients update changes every mutable field and the origins", testClientUpdate},
	}
}

var (
	rsaKeyOnce sync.Once
	rsaKey     *rsa.PrivateKey
)

// testRSAKey is one 2048-bit key shared by the cases (generating one takes a while).
func testRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	rsaKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func jwkJSON(t *testing.T, k jose.JSONWebKey) string {
	t.Helper()
	b, err := k.MarshalJSON()
	if err != nil {
		t.Fatalf("marshal JWK: %v", err)
	}
	return string(b)
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// encryptionClient returns a client with every encryption setting: ID tokens and userinfo to an RSA key,
// access tokens to an EC key.
func encryptionClient(t *testing.T, id string) (*models.Client, *rsa.PrivateKey, *ecdsa.PrivateKey) {
	rk, ek := testRSAKey(t), newECKey(t)
	return &models.Client{
		ID:                           id,
		RedirectURIs:                 []string{"https://rp.example/cb"},
		EncryptionJWK:                jwkJSON(t, jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "rp-enc", Use: "enc"}),
		IDTokenEncryptedResponseAlg:  "RSA-OAEP-256",
		IDTokenEncryptedResponseEnc:  "A128CBC-HS256",
		UserinfoEncryptedResponseAlg: "RSA-OAEP",
		AccessTokenEncryptionJWK:     jwkJSON(t, jose.JSONWebKey{Key: &ek.PublicKey, KeyID: "rs-enc", Algorithm: "ECDH-ES+A256KW"}),
		AccessTokenEncryptionAlg:     "ECDH-ES+A256KW",
		AccessTokenEncryptionEnc:     "A256GCM",
		AccessTokenFormat:            "jwt", // only JWT access tokens are encrypted
	}, rk, ek
}

func testClientPoolDefault(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	mustPool(t, s, "customers")
	c := mustClient(t, s, "plain")
	if c.Pool != models.DefaultPool {
		t.Errorf("created client Pool = %q, want %q", c.Pool, models.DefaultPool)
	}
	must(t, "CreateClient in customers", s.CreateClient(ctx, &models.Client{ID: "shop", Pool: "customers", AllowSignup: true}))
	for _, tc := range []struct {
		id, pool    string
		allowSignup bool
	}{
		{"plain", models.DefaultPool, false},
		{"shop", "customers", true},
	} {
		got, err := s.ClientByID(ctx, tc.id)
		must(t, "ClientByID", err)
		if got.Pool != tc.pool || got.AllowSignup != tc.allowSignup {
			t.Errorf("client %s: pool %q, allow_signup %v; want %q, %v", tc.id, got.Pool, got.AllowSignup, tc.pool, tc.allowSignup)
		}
		if _, _, _, ok := got.IDTokenEncryption(); ok {
			t.Errorf("client %s without encryption settings reports ID token encryption", tc.id)
		}
	}
	list, err := s.ListClients(ctx)
	must(t, "ListClients", err)
	if len(list) != 2 || list[0].Pool != models.DefaultPool || list[1].Pool != "customers" {
		t.Errorf("ListClients pools = %+v", list)
	}
}

func testClientEncryptionRoundTrip(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	c, rk, ek := encryptionClient(t, "rp")
	must(t, "CreateClient", s.CreateClient(ctx, c))

	fromGet, err := s.GetClient(ctx, "rp")
	must(t, "GetClient", err)
	// The provider type-asserts exactly this method set on what GetClient returns.
	type encryptingClient interface {
		IDTokenEncryption() (key *jose.JSONWebKey, alg, enc string, ok bool)
		UserinfoEncryption() (key *jose.JSONWebKey, alg, enc string, ok bool)
		AccessTokenEncryption() (key *jose.JSONWebKey, alg, enc string, ok bool)
	}
	ec, ok := fromGet.(encryptingClient)
	if !ok {
		t.Fatalf("GetClient returned %T, which lacks the encryption methods", fromGet)
	}
	byID, err := s.ClientByID(ctx, "rp")
	must(t, "ClientByID", err)
	list, err := s.ListClients(ctx)
	must(t, "ListClients", err)

	for _, f := range []struct{ name, got, want string }{
		{"EncryptionJWK", byID.EncryptionJWK, c.EncryptionJWK},
		{"IDTokenEncryptedResponseAlg", byID.IDTokenEncryptedResponseAlg, "RSA-OAEP-256"},
		{"IDTokenEncryptedResponseEnc", byID.IDTokenEncryptedResponseEnc, "A128CBC-HS256"},
		{"UserinfoEncryptedResponseAlg", byID.UserinfoEncryptedResponseAlg, "RSA-OAEP"},
		{"UserinfoEncryptedResponseEnc", byID.UserinfoEncryptedResponseEnc, ""},
		{"AccessTokenEncryptionJWK", byID.AccessTokenEncryptionJWK, c.AccessTokenEncryptionJWK},
		{"AccessTokenEncryptionAlg", byID.AccessTokenEncryptionAlg, "ECDH-ES+A256KW"},
		{"AccessTokenEncryptionEnc", byID.AccessTokenEncryptionEnc, "A256GCM"},
	} {
		if f.got != f.want {
			t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
		}
	}

	rsaPub := func(k *jose.JSONWebKey) bool {
		p, ok := k.Key.(*rsa.PublicKey)
		return ok && p.Equal(&rk.PublicKey) && k.KeyID == "rp-enc"
	}
	ecPub := func(k *jose.JSONWebKey) bool {
		p, ok := k.Key.(*ecdsa.PublicKey)
		return ok && p.Equal(&ek.PublicKey) && k.KeyID == "rs-enc"
	}
	type method func() (*jose.JSONWebKey, string, string, bool)
	for _, src := range []struct {
		name string
		c    encryptingClient
	}{
		{"the created client", c}, {"GetClient", ec}, {"ClientByID", byID}, {"ListClients", &list[0]},
	} {
		for _, m := range []struct {
			name     string
			call     method
			keyOK    func(*jose.JSONWebKey) bool
			alg, enc string
		}{
			{"IDTokenEncryption", src.c.IDTokenEncryption, rsaPub, "RSA-OAEP-256", "A128CBC-HS256"},
			{"UserinfoEncryption", src.c.UserinfoEncryption, rsaPub, "RSA-OAEP", "A256GCM"}, // enc defaulted
			{"AccessTokenEncryption", src.c.AccessTokenEncryption, ecPub, "ECDH-ES+A256KW", "A256GCM"},
		} {
			key, alg, enc, ok := m.call()
			if !ok || key == nil || !m.keyOK(key) || alg != m.alg || enc != m.enc {
				t.Errorf("%s: %s() = (%v, %q, %q, %v), want the stored key, %q, %q, true",
					src.name, m.name, key, alg, enc, ok, m.alg, m.enc)
			}
		}
	}

	// A Client built by hand (no cache) answers the same; a changed JWK is noticed, not answered from the cache.
	hand := *byID
	hand.EncryptionJWK = jwkJSON(t, jose.JSONWebKey{Key: &newECKey(t).PublicKey, KeyID: "other"})
	if key, _, _, ok := hand.IDTokenEncryption(); !ok || key.KeyID != "other" {
		t.Errorf("IDTokenEncryption after changing EncryptionJWK = %v, %v; want the new key", key, ok)
	}
	hand.EncryptionJWK = "not json"
	if _, _, _, ok := hand.UserinfoEncryption(); ok {
		t.Error("UserinfoEncryption with an unparseable JWK reports ok")
	}
	hand.AccessTokenEncryptionAlg = ""
	if _, _, _, ok := hand.AccessTokenEncryption(); ok {
		t.Error("AccessTokenEncryption without an alg reports ok")
	}
	// A JWK without any alg is stored and reported as no encryption.
	keyOnly := &models.Client{ID: "key-only", EncryptionJWK: c.EncryptionJWK}
	must(t, "CreateClient with a key and no alg", s.CreateClient(ctx, keyOnly))
	if _, _, _, ok := keyOnly.IDTokenEncryption(); ok {
		t.Error("IDTokenEncryption without an alg reports ok")
	}
}

func testClientEncryptionInvalid(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	rk, ek := testRSAKey(t), newECKey(t)
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	must(t, "generate small RSA key", err)
	rsaPub := jwkJSON(t, jose.JSONWebKey{Key: &rk.PublicKey})
	ecPub := jwkJSON(t, jose.JSONWebKey{Key: &ek.PublicKey})
	tests := []struct {
		name   string
		modify func(c *models.Client)
	}{
		{"private RSA JWK", func(c *models.Client) {
			c.EncryptionJWK = jwkJSON(t, jose.JSONWebKey{Key: rk})
		}},
		{"private EC JWK for access tokens", func(c *models.Client) {
			c.AccessTokenEncryptionJWK = jwkJSON(t, jose.JSONWebKey{Key: ek})
		}},
		{"private JWK without an alg", func(c *models.Client) {
			c.IDTokenEncryptedResponseAlg, c.IDTokenEncryptedResponseEnc, c.UserinfoEncryptedResponseAlg = "", "", ""
			c.EncryptionJWK = jwkJSON(t, jose.JSONWebKey{Key: rk})
		}},
		{"symmetric JWK", func(c *models.Client) {
			c.EncryptionJWK = jwkJSON(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef")})
		}},
		{"alg without a JWK", func(c *models.Client) { c.EncryptionJWK = "" }},
		{"access token alg without a JWK", func(c *models.Client) { c.AccessTokenEncryptionJWK = "" }},
		{"unparseable JWK", func(c *models.Client) { c.EncryptionJWK = `{"kty":"RSA","n":"%%%","e":"AQAB"}` }},
		{"JWK that is not JSON", func(c *models.Client) { c.AccessTokenEncryptionJWK = "-----BEGIN PUBLIC KEY-----" }},
		{"JWK that is a JSON array", func(c *models.Client) { c.EncryptionJWK = "[" + rsaPub + "]" }},
		{"enc without alg", func(c *models.Client) { c.UserinfoEncryptedResponseAlg, c.UserinfoEncryptedResponseEnc = "", "A256GCM" }},
		{"unsupported alg", func(c *models.Client) { c.IDTokenEncryptedResponseAlg = "RSA1_5" }},
		{"symmetric alg", func(c *models.Client) { c.IDTokenEncryptedResponseAlg = "dir" }},
		{"unsupported enc", func(c *models.Client) { c.IDTokenEncryptedResponseEnc = "A256CTR" }},
		{"EC alg for an RSA key", func(c *models.Client) { c.IDTokenEncryptedResponseAlg = "ECDH-ES" }},
		{"RSA alg for an EC key", func(c *models.Client) { c.AccessTokenEncryptionAlg = "RSA-OAEP-256" }},
		{"RSA key under 2048 bits", func(c *models.Client) {
			c.EncryptionJWK = jwkJSON(t, jose.JSONWebKey{Key: &smallRSA.PublicKey})
		}},
		{"signing key", func(c *models.Client) {
			c.EncryptionJWK = jwkJSON(t, jose.JSONWebKey{Key: &rk.PublicKey, Use: "sig"})
		}},
		{"JWK for another alg", func(c *models.Client) {
			c.AccessTokenEncryptionJWK = jwkJSON(t, jose.JSONWebKey{Key: &ek.PublicKey, Algorithm: "ECDH-ES"})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := encryptionClient(t, "rp")
			c.EncryptionJWK, c.AccessTokenEncryptionJWK = rsaPub, ecPub
			tc.modify(c)
			if err := s.CreateClient(ctx, c); !errors.Is(err, models.ErrInvalid) {
				t.Fatalf("CreateClient: %v, want models.ErrInvalid", err)
			}
			_, err := s.ClientByID(ctx, "rp")
			wantNotFound(t, "client after rejected create", err)

			ok, _, _ := encryptionClient(t, "rp-update")
			ok.EncryptionJWK, ok.AccessTokenEncryptionJWK = rsaPub, ecPub
			if err := s.CreateClient(ctx, ok); err != nil && !errors.Is(err, models.ErrConflict) {
				t.Fatalf("CreateClient valid: %v", err)
			}
			upd, _, _ := encryptionClient(t, "rp-update")
			upd.EncryptionJWK, upd.AccessTokenEncryptionJWK = rsaPub, ecPub
			tc.modify(upd)
			if err := s.UpdateClient(ctx, upd); !errors.Is(err, models.ErrInvalid) {
				t.Fatalf("UpdateClient: %v, want models.ErrInvalid", err)
			}
		})
	}
	got, err := s.ClientByID(ctx, "rp-update")
	must(t, "ClientByID", err)
	if got.EncryptionJWK != rsaPub || got.AccessTokenEncryptionJWK != ecPub || got.IDTokenEncryptedResponseAlg != "RSA-OAEP-256" {
		t.Errorf("rejected updates changed the client: %+v", got)
	}
}

func testClientUpdate(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	mustPool(t, s, "customers")
	orig := mustClient(t, s, "app")
	mustClient(t, s, "other")
	must(t, "SaveConsent", s.SaveConsent(ctx, "usr_1", "app", []string{"openid"}, baseTime))

	upd, _, _ := encryptionClient(t, "app")
	upd.Name = "Renamed"
	upd.SecretHash = "attempted-secret-change" // not a mutable field of UpdateClient
	upd.RedirectURIs = []string{"https://new.example/cb", "com.example.app:/cb"}
	upd.GrantTypes = []string{"authorization_code"}
	upd.ResponseTypes = []string{"code"}
	upd.Scopes = []string{"openid"}
	upd.Audience = nil
	upd.Public = true
	upd.TokenEndpointAuthMethod = models.AuthMethodNone
	upd.AccessTokenFormat = "jwt"
	upd.FirstParty = true
	upd.PostLogoutRedirectURIs = []string{"https://new.example/bye"}
	upd.AllowedOrigins = []string{"HTTPS://Admin.New.Example:443"}
	upd.Pool = "customers"
	upd.AllowSignup = true
	must(t, "UpdateClient", s.UpdateClient(ctx, upd))
	if !reflect.DeepEqual(upd.AllowedOrigins, []string{"https://admin.new.example"}) || upd.UpdatedAt.IsZero() {
		t.Errorf("UpdateClient did not normalise AllowedOrigins or set UpdatedAt: %+v", upd)
	}

	got, err := s.ClientByID(ctx, "app")
	must(t, "ClientByID", err)
	if got.Name != "Renamed" || got.SecretHash != orig.SecretHash || !got.CreatedAt.Equal(orig.CreatedAt) ||
		!reflect.DeepEqual(got.RedirectURIs, upd.RedirectURIs) || !reflect.DeepEqual(got.GrantTypes, upd.GrantTypes) ||
		!reflect.DeepEqual(got.Scopes, upd.Scopes) || len(got.Audience) != 0 || !got.Public ||
		got.GetTokenEndpointAuthMethod() != models.AuthMethodNone || got.AccessTokenFormat != "jwt" || !got.FirstParty ||
		!reflect.DeepEqual(got.PostLogoutRedirectURIs, upd.PostLogoutRedirectURIs) ||
		!reflect.DeepEqual(got.AllowedOrigins, upd.AllowedOrigins) || got.Pool != "customers" || !got.AllowSignup ||
		got.EncryptionJWK != upd.EncryptionJWK || got.AccessTokenEncryptionAlg != upd.AccessTokenEncryptionAlg ||
		got.UpdatedAt.Before(got.CreatedAt) {
		t.Errorf("after UpdateClient: %+v", got)
	}
	if _, alg, _, ok := got.IDTokenEncryption(); !ok || alg != "RSA-OAEP-256" {
		t.Errorf("IDTokenEncryption after update = %q, %v", alg, ok)
	}
	for origin, want := range map[string]bool{
		"https://new.example":       true,  // a new redirect URI's origin
		"https://admin.new.example": true,  // a new allowed origin
		"https://app.example":       false, // the old redirect URI's origin is gone
	} {
		if ok, err := s.ClientOriginAllowed(ctx, "app", origin); err != nil || ok != want {
			t.Errorf("ClientOriginAllowed(app, %q) = %v, %v; want %v", origin, ok, err, want)
		}
	}
	// The other client still has https://app.example.
	if ok, err := s.OriginAllowed(ctx, "https://app.example"); err != nil || !ok {
		t.Errorf("other client's origin after update = %v, %v", ok, err)
	}
	if sc, err := s.ConsentedScopes(ctx, "usr_1", "app"); err != nil || len(sc) != 1 {
		t.Errorf("consent after UpdateClient = %v, %v; want kept", sc, err)
	}

	// Clearing the encryption settings and going back to the default pool.
	got.IDTokenEncryptedResponseAlg, got.IDTokenEncryptedResponseEnc = "", ""
	got.UserinfoEncryptedResponseAlg, got.UserinfoEncryptedResponseEnc = "", ""
	got.AccessTokenEncryptionAlg, got.AccessTokenEncryptionEnc, got.AccessTokenEncryptionJWK = "", "", ""
	got.Pool = ""
	got.AllowedOrigins = nil
	must(t, "UpdateClient clearing", s.UpdateClient(ctx, got))
	again, err := s.ClientByID(ctx, "app")
	must(t, "ClientByID", err)
	if again.Pool != models.DefaultPool || again.AccessTokenEncryptionJWK != "" || len(again.AllowedOrigins) != 0 {
		t.Errorf("after clearing update: %+v", again)
	}
	if _, _, _, ok := again.IDTokenEncryption(); ok {
		t.Error("IDTokenEncryption after clearing reports ok")
	}
	if ok, err := s.ClientOriginAllowed(ctx, "app", "https://admin.new.example"); err != nil || ok {
		t.Errorf("removed allowed origin still allowed: %v, %v", ok, err)
	}

	wantNotFound(t, "UpdateClient unknown", s.UpdateClient(ctx, &models.Client{ID: "nope"}))
	if ok, err := s.ClientOriginAllowed(ctx, "nope", "https://app.example"); err != nil || ok {
		t.Errorf("UpdateClient of an unknown client left origins: %v, %v", ok, err)
	}
	if err := s.UpdateClient(ctx, &models.Client{ID: "app", AllowedOrigins: []string{"https://x.example/path"}}); !errors.Is(err, models.ErrInvalid) {
		t.Errorf("UpdateClient with a bad origin: %v, want models.ErrInvalid", err)
	}
	if err := s.UpdateClient(ctx, &models.Client{ID: ""}); !errors.Is(err, models.ErrInvalid) {
		t.Errorf("UpdateClient without an id: %v, want models.ErrInvalid", err)
	}
}
