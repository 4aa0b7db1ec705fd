package storetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/models"
)

// poolCases: pools, users in pools, and clients in pools with their encryption settings and updates.
func poolCases() []testCase {
	return []testCase{
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
	}
}

// Pools.

func mustPool(t *testing.T, s *models.Store, name string) {
	t.Helper()
	if err := s.CreatePool(ctxT(t), models.Pool{Name: name}); err != nil {
		t.Fatalf("CreatePool(%q): %v", name, err)
	}
}

func testPoolsCRUD(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	def, err := s.GetPool(ctx, models.DefaultPool)
	must(t, "GetPool default after Migrate", err)
	if def.Name != "default" || def.SignupEnabled || def.DefaultRoles == nil || len(def.DefaultRoles) != 0 || def.CreatedAt.IsZero() {
		t.Errorf("default pool = %+v, want signup off, no default roles", def)
	}

	must(t, "CreatePool customers", s.CreatePool(ctx, models.Pool{
		Name: "customers", SignupEnabled: true, DefaultRoles: []string{"customer"},
	}))
	must(t, "CreatePool staff", s.CreatePool(ctx, models.Pool{Name: "staff"}))
	got, err := s.GetPool(ctx, "customers")
	must(t, "GetPool customers", err)
	if !got.SignupEnabled || !reflect.DeepEqual(got.DefaultRoles, []string{"customer"}) || got.CreatedAt.IsZero() {
		t.Errorf("customers = %+v", got)
	}
	if err := s.CreatePool(ctx, models.Pool{Name: "customers"}); !errors.Is(err, models.ErrConflict) {
		t.Errorf("duplicate CreatePool: %v, want models.ErrConflict", err)
	}
	list, err := s.ListPools(ctx)
	must(t, "ListPools", err)
	var names []string
	for _, p := range list {
		names = append(names, p.Name)
	}
	if !reflect.DeepEqual(names, []string{"default", "customers", "staff"}) {
		t.Errorf("ListPools = %v, want [default customers staff] (creation order)", names)
	}

	must(t, "UpdatePool", s.UpdatePool(ctx, models.Pool{Name: "customers", SignupEnabled: false, DefaultRoles: []string{"a", "b"}}))
	got, err = s.GetPool(ctx, "customers")
	must(t, "GetPool after update", err)
	if got.SignupEnabled || !reflect.DeepEqual(got.DefaultRoles, []string{"a", "b"}) {
		t.Errorf("customers after UpdatePool = %+v", got)
	}
	must(t, "UpdatePool default", s.UpdatePool(ctx, models.Pool{Name: models.DefaultPool, SignupEnabled: true}))
	if def, err := s.GetPool(ctx, models.DefaultPool); err != nil || !def.SignupEnabled || len(def.DefaultRoles) != 0 {
		t.Errorf("default after UpdatePool = %+v, %v", def, err)
	}
	wantNotFound(t, "UpdatePool unknown", s.UpdatePool(ctx, models.Pool{Name: "nope"}))
	_, err = s.GetPool(ctx, "nope")
	wantNotFound(t, "GetPool unknown", err)
}

func testPoolInvalidNames(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"0", true},
		{"eu-customers_2", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"Customers", false},
		{"-leading-dash", false},
		{"_leading_underscore", false},
		{"has space", false},
		{"dot.ted", false},
		{"slash/ed", false},
		{"ümlaut", false},
		{"trailing\n", false},
	}
	for _, tc := range tests {
		err := s.CreatePool(ctx, models.Pool{Name: tc.name})
		if tc.ok && err != nil {
			t.Errorf("CreatePool(%q): %v, want success", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, models.ErrInvalid) {
			t.Errorf("CreatePool(%q): %v, want models.ErrInvalid", tc.name, err)
		}
	}
}

// Users in pools.

func testUsersSameEmailTwoPools(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	mustPool(t, s, "customers")
	inDefault, err := s.CreateUserWith(ctx, models.NewUser{Email: "ada@example.com", Password: "pw-default"})
	must(t, "create in default", err)
	inCustomers, err := s.CreateUserWith(ctx, models.NewUser{Pool: "customers", Email: "Ada@Example.com", Password: "pw-customers"})
	must(t, "create in customers", err)
	if inDefault.ID == inCustomers.ID || inDefault.Pool != models.DefaultPool || inCustomers.Pool != "customers" {
		t.Fatalf("users = %+v / %+v, want two users with different ids in default and customers", inDefault, inCustomers)
	}
	for _, tc := range []struct{ pool, wantID string }{
		{"", inDefault.ID}, {"default", inDefault.ID}, {"customers", inCustomers.ID},
	} {
		u, err := s.UserByEmail(ctx, tc.pool, "ADA@example.com")
		if err != nil || u.ID != tc.wantID {
			t.Errorf("UserByEmail(%q) = %+v, %v; want %s", tc.pool, u, err, tc.wantID)
		}
	}
	_, err = s.UserByEmail(ctx, "nope", "ada@example.com")
	wantNotFound(t, "UserByEmail in an unknown pool", err)
	byID, err := s.UserByID(ctx, inCustomers.ID)
	must(t, "UserByID", err)
	if byID.Pool != "customers" {
		t.Errorf("UserByID pool = %q, want customers", byID.Pool)
	}
	// Deleting one leaves the other.
	must(t, "DeleteUser", s.DeleteUser(ctx, inDefault.ID))
	_, err = s.UserByEmail(ctx, "customers", "ada@example.com")
	must(t, "other pool's user after delete", err)
}

func testUserDuplicateEmailInPool(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	mustPool(t, s, "customers")
	for _, pool := range []string{"", "customers"} {
		_, err := s.CreateUserWith(ctx, models.NewUser{Pool: pool, Email: "bo@example.com", Password: "pw"})
		must(t, "create in "+pool, err)
		_, err = s.CreateUserWith(ctx, models.NewUser{Pool: pool, Email: "  BO@example.COM", Password: "pw2"})
		if !errors.Is(err, models.ErrConflict) {
			t.Errorf("duplicate email in pool %q: %v, want models.ErrConflict", pool, err)
		}
	}
	_, err := s.CreateUserWith(ctx, models.NewUser{Pool: "default", Email: "bo@EXAMPLE.com", Password: "pw"})
	if !errors.Is(err, models.ErrConflict) {
		t.Errorf(`duplicate email in pool "default" (named): %v, want models.ErrConflict`, err)
	}
}

func testAuthenticateInPool(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	mustPool(t, s, "customers")
	mustPool(t, s, "empty")
	def, err := s.CreateUserWith(ctx, models.NewUser{Email: "cy@example.com", Password: "pw-default"})
	must(t, "create in default", err)
	cus, err := s.CreateUserWith(ctx, models.NewUser{Pool: "customers", Email: "cy@example.com", Password: "pw-customers"})
	must(t, "create in customers", err)
	tests := []struct {
		name, pool, password string
		wantID               string // "": ErrInvalidCredentials
	}{
		{"default pool by empty name", "", "pw-default", def.ID},
		{"default pool by name", "default", "pw-default", def.ID},
		{"customers pool", "customers", "pw-customers", cus.ID},
		{"other pool's password in default", "", "pw-customers", ""},
		{"other pool's password in customers", "customers", "pw-default", ""},
		{"pool without the user", "empty", "pw-default", ""},
		{"unknown pool", "nope", "pw-default", ""},
		{"malformed pool", "No Such Pool", "pw-default", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := s.Authenticate(ctx, tc.pool, "CY@example.com", tc.password)
			if tc.wantID == "" {
				if !errors.Is(err, models.ErrInvalidCredentials) || u != nil {
					t.Fatalf("Authenticate = (%+v, %v), want models.ErrInvalidCredentials", u, err)
				}
				return
			}
			if err != nil || u.ID != tc.wantID {
				t.Fatalf("Authenticate = (%+v, %v), want user %s", u, err, tc.wantID)
			}
		})
	}
}

func testUnknownPoolInvalid(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	for _, pool := range []string{"nope", "Bad Name", strings.Repeat("x", 65)} {
		_, err := s.CreateUserWith(ctx, models.NewUser{Pool: pool, Email: "dee@example.com", Password: "pw"})
		if !errors.Is(err, models.ErrInvalid) {
			t.Errorf("CreateUserWith in pool %q: %v, want models.ErrInvalid", pool, err)
		}
		err = s.CreateClient(ctx, &models.Client{ID: "app", Pool: pool})
		if !errors.Is(err, models.ErrInvalid) {
			t.Errorf("CreateClient in pool %q: %v, want models.ErrInvalid", pool, err)
		}
	}
	if l, err := s.ListUsers(ctx, ""); err != nil || len(l) != 0 {
		t.Errorf("users after rejected creates = %v, %v; want none", l, err)
	}
	_, err := s.ClientByID(ctx, "app")
	wantNotFound(t, "client after rejected create", err)

	mustClient(t, s, "app")
	c, err := s.ClientByID(ctx, "app")
	must(t, "ClientByID", err)
	c.Pool = "nope"
	if err := s.UpdateClient(ctx, c); !errors.Is(err, models.ErrInvalid) {
		t.Errorf("UpdateClient into an unknown pool: %v, want models.ErrInvalid", err)
	}
	if c, err := s.ClientByID(ctx, "app"); err != nil || c.Pool != models.DefaultPool {
		t.Errorf("client after rejected update = %+v, %v; want still in default", c, err)
	}
}

func testListUsersByPool(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	mustPool(t, s, "customers")
	mustPool(t, s, "empty")
	var ids = map[string][]string{}
	for _, u := range []struct{ pool, email string }{
		{"", "a@example.com"}, {"customers", "b@example.com"}, {"", "c@example.com"}, {"customers", "a@example.com"},
	} {
		got, err := s.CreateUserWith(ctx, models.NewUser{Pool: u.pool, Email: u.email, Password: "pw"})
		must(t, "CreateUserWith", err)
		ids[u.pool] = append(ids[u.pool], got.ID)
		ids["*"] = append(ids["*"], got.ID)
	}
	userIDs := func(l []models.User) []string {
		out := []string{}
		for _, u := range l {
			out = append(out, u.ID)
		}
		return out
	}
	tests := []struct {
		pool string
		want []string
	}{
		{"", ids["*"]},
		{"default", ids[""]},
		{"customers", ids["customers"]},
		{"empty", []string{}},
	}
	for _, tc := range tests {
		l, err := s.ListUsers(ctx, tc.pool)
		must(t, "ListUsers "+tc.pool, err)
		if got := userIDs(l); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ListUsers(%q) = %v, want %v (creation order)", tc.pool, got, tc.want)
		}
	}
	_, err := s.ListUsers(ctx, "nope")
	wantNotFound(t, "ListUsers of an unknown pool", err)
}

// Clients in pools, encryption settings, updates.

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
