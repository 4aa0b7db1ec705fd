package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

// models.Client is what the verifier reads a client_secret_jwt client as.
var _ sealedSecretClient = (*models.Client)(nil)

var (
	jwtSecret      = strings.Repeat("s3cr3t-", 10) // 70 characters
	otherJWTSecret = strings.Repeat("0th3r-", 12)
)

// secretJWTFixture is the token API fixture's provider and store with client_secret_jwt clients: "hs" (HS256 by
// default), "hs512", "moved" (whose row holds hs's sealed secret) and "keys" (private_key_jwt, ES256).
type secretJWTFixture struct {
	*tokenAPIFixture
	esKey    *ecdsa.PrivateKey
	tokenURL string
}

func newSecretJWTFixture(t testing.TB) *secretJWTFixture {
	t.Helper()
	f := &secretJWTFixture{tokenAPIFixture: newTokenAPIFixture(t), tokenURL: "https://issuer.example" + PathToken}
	ctx := context.Background()
	var err error
	if f.esKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.esKey.PublicKey, KeyID: "k1", Use: "sig"}}})
	secretClient := func(id, secret, alg string) *models.Client {
		c := &models.Client{ID: id, GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"},
			TokenEndpointAuthMethod: models.AuthMethodClientSecretJWT, TokenEndpointAuthSigningAlg: alg}
		if c.SecretHash, c.SealedSecret, err = f.p.StoredSecret(id, secret, true); err != nil {
			t.Fatal(err)
		}
		return c
	}
	hs := secretClient("hs", jwtSecret, "")
	moved := secretClient("moved", jwtSecret, "")
	moved.SealedSecret = hs.SealedSecret
	for _, c := range []*models.Client{
		hs, moved, secretClient("hs512", otherJWTSecret, "HS512"),
		{ID: "keys", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"},
			TokenEndpointAuthMethod: models.AuthMethodPrivateKeyJWT, JWKS: string(set)},
	} {
		if err := f.store.CreateClient(ctx, c); err != nil {
			t.Fatalf("create %s: %v", c.ID, err)
		}
	}
	return f
}

// claims are a live assertion's claims for client at the token endpoint.
func (f *secretJWTFixture) claims(client string) map[string]any {
	now := time.Now()
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return map[string]any{"iss": client, "sub": client, "aud": f.tokenURL, "jti": base64.RawURLEncoding.EncodeToString(b),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
}

func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// authenticate runs the public endpoints' client authentication on form (and HTTP Basic, if user is set).
func (f *secretJWTFixture) authenticate(form url.Values, user, pass string) (fosite.Client, error) {
	req, _ := http.NewRequest(http.MethodPost, f.tokenURL, strings.NewReader(form.Encode()))
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return f.p.AuthenticateClient(context.Background(), req, form)
}

func assertionForm(assertion string) url.Values {
	return url.Values{"client_assertion_type": {clientAssertionType}, "client_assertion": {assertion}}
}

func TestClientSecretJWT(t *testing.T) {
	f := newSecretJWTFixture(t)
	hs := []byte(jwtSecret)
	with := func(client string, edit func(map[string]any)) map[string]any {
		c := f.claims(client)
		edit(c)
		return c
	}
	none := func(claims map[string]any) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		p, _ := json.Marshal(claims)
		return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
	}
	publicJWK, _ := json.Marshal(jose.JSONWebKey{Key: &f.esKey.PublicKey, KeyID: "k1", Use: "sig"})
	replayed := sign(t, jose.HS256, hs, f.claims("hs"))
	if _, err := f.authenticate(assertionForm(replayed), "", ""); err != nil {
		t.Fatalf("first use of the replayed assertion: %s", errDetail(err))
	}

	for _, tc := range []struct {
		name   string
		form   url.Values
		client string // authenticated; "" for refused (401 invalid_client)
	}{
		{"good, aud the token endpoint", assertionForm(sign(t, jose.HS256, hs, f.claims("hs"))), "hs"},
		{"good, aud the issuer", assertionForm(sign(t, jose.HS256, hs, with("hs", func(c map[string]any) { c["aud"] = "https://issuer.example" }))), "hs"},
		{"good, aud a list", assertionForm(sign(t, jose.HS256, hs, with("hs", func(c map[string]any) { c["aud"] = []string{"https://x.example", f.tokenURL} }))), "hs"},
		{"good, HS512 as registered", assertionForm(sign(t, jose.HS512, []byte(otherJWTSecret), f.claims("hs512"))), "hs512"},
		{"good, with a matching client_id", func() url.Values {
			v := assertionForm(sign(t, jose.HS256, hs, f.claims("hs")))
			v.Set("client_id", "hs")
			return v
		}(), "hs"},
		{"wrong secret", assertionForm(sign(t, jose.HS256, []byte(otherJWTSecret), f.claims("hs"))), ""},
		{"wrong aud", assertionForm(sign(t, jose.HS256, hs, with("hs", func(c map[string]any) { c["aud"] = "https://other.example/oauth2/token" }))), ""},
		{"aud of another endpoint", assertionForm(sign(t, jose.HS256, hs, with("hs", func(c map[string]any) { c["aud"] = "https://issuer.example" + PathIntrospect }))), ""},
		{"expired", assertionForm(sign(t, jose.HS256, hs, with("hs", func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-time.Second).Unix()
		}))), ""},
		{"exp over ten minutes away", assertionForm(sign(t, jose.HS256, hs, with("hs", func(c map[string]any) { c["exp"] = time.Now().Add(11 * time.Minute).Unix() }))), ""},
		{"no exp", assertionForm(sign(t, jose.HS256, hs, with("hs", func(c map[string]any) { delete(c, "exp") }))), ""},
		{"nbf in the future", assertionForm(sign(t, jose.HS256, hs, with("hs", func(c map[string]any) { c["nbf"] = time.Now().Add(time.Minute).Unix() }))), ""},
		{"replayed jti", assertionForm(replayed), ""},
		{"no jti", assertionForm(sign(t, jose.HS256, hs, with("hs", func(c map[string]any) { delete(c, "jti") }))), ""},
		{"alg none", assertionForm(none(f.claims("hs"))), ""},
		{"ES256 header for a client_secret_jwt client", assertionForm(sign(t, jose.ES256, f.esKey, f.claims("hs"))), ""},
		{"HS384 for a client registered HS256", assertionForm(sign(t, jose.HS384, []byte(jwtSecret), f.claims("hs"))), ""},
		{"HS256 for a private_key_jwt client, keyed with its public key", assertionForm(sign(t, jose.HS256, publicJWK, f.claims("keys"))), ""},
		{"HS256 for a client_secret_basic client, keyed with its secret", assertionForm(sign(t, jose.HS256, []byte(backendSecret), f.claims("thirdbackend"))), ""},
		{"iss is not sub", assertionForm(sign(t, jose.HS256, hs, with("hs", func(c map[string]any) { c["iss"] = "hs512" }))), ""},
		{"client_id is another client", func() url.Values {
			v := assertionForm(sign(t, jose.HS256, hs, f.claims("hs")))
			v.Set("client_id", "hs512")
			return v
		}(), ""},
		{"unknown client", assertionForm(sign(t, jose.HS256, hs, f.claims("nobody"))), ""},
		{"no sub and no client_id", assertionForm(sign(t, jose.HS256, hs, with("hs", func(c map[string]any) { delete(c, "sub") }))), ""},
		{"a sealed secret copied onto another client's row", assertionForm(sign(t, jose.HS256, hs, f.claims("moved"))), ""},
		{"not a JWS", assertionForm("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.x"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := f.authenticate(tc.form, "", "")
			if tc.client != "" {
				if err != nil || c.GetID() != tc.client {
					t.Fatalf("authenticate: %v, %s; want client %s", c, errDetail(err), tc.client)
				}
				return
			}
			if err == nil || !errors.Is(err, fosite.ErrInvalidClient) || fosite.ErrorToRFC6749Error(err).CodeField != http.StatusUnauthorized {
				t.Errorf("authenticate: %v, %s; want 401 invalid_client", c, errDetail(err))
			}
		})
	}

	t.Run("the secret is not a way in by HTTP Basic or the form", func(t *testing.T) {
		if _, err := f.authenticate(url.Values{}, "hs", jwtSecret); !errors.Is(err, fosite.ErrInvalidClient) {
			t.Errorf("client_secret_basic: %s, want invalid_client", errDetail(err))
		}
		if _, err := f.authenticate(url.Values{"client_id": {"hs"}, "client_secret": {jwtSecret}}, "", ""); !errors.Is(err, fosite.ErrInvalidClient) {
			t.Errorf("client_secret_post: %s, want invalid_client", errDetail(err))
		}
	})

	t.Run("a refused assertion does not spend its jti", func(t *testing.T) {
		c := f.claims("hs")
		bad := with("hs", func(m map[string]any) { m["jti"], m["aud"] = c["jti"], "https://other.example" })
		if _, err := f.authenticate(assertionForm(sign(t, jose.HS256, hs, bad)), "", ""); err == nil {
			t.Fatal("wrong aud accepted")
		}
		if _, err := f.authenticate(assertionForm(sign(t, jose.HS256, hs, c)), "", ""); err != nil {
			t.Errorf("the same jti, now right: %s", errDetail(err))
		}
	})
}

func TestClientSecretSealer(t *testing.T) {
	s := NewClientSecretSealer([]byte("0123456789abcdef0123456789abcdef"))
	other := NewClientSecretSealer([]byte("fedcba9876543210fedcba9876543210"))
	sealed, err := s.Seal("app", jwtSecret)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, jwtSecret) || strings.Contains(sealed, base64.RawURLEncoding.EncodeToString([]byte(jwtSecret))) {
		t.Fatal("the sealed secret shows the secret")
	}
	if again, _ := s.Seal("app", jwtSecret); again == sealed {
		t.Error("two seals of one secret are equal: the nonce is not random")
	}
	if got, err := s.Open("app", sealed); err != nil || string(got) != jwtSecret {
		t.Fatalf("Open = %q, %v; want the secret", got, err)
	}
	tampered := []byte(sealed)
	tampered[len(tampered)/2] ^= 1
	for _, tc := range []struct {
		name, id, sealed string
		sealer           *ClientSecretSealer
	}{
		{"another client's id", "app2", sealed, s},
		{"another system secret", "app", sealed, other},
		{"tampered", "app", string(tampered), s},
		{"not base64url", "app", "!!!", s},
		{"empty", "app", "", s},
	} {
		if got, err := tc.sealer.Open(tc.id, tc.sealed); err == nil {
			t.Errorf("%s: Open = %q, want an error", tc.name, got)
		}
	}
}

// BenchmarkClientSecretJWTTokenRequest is one client_credentials token request at the token endpoint over SQLite,
// authenticated with client_secret_jwt (HS256): the client row read fresh, its secret unsealed, the MAC verified,
// the jti recorded, the grant and the opaque token stored; and the authentication alone. Assertions are MACed
// before the timer starts. Compare BenchmarkClientAssertionTokenRequest (private_key_jwt, client_secret_basic).
func BenchmarkClientSecretJWTTokenRequest(b *testing.B) {
	f := newSecretJWTFixture(b)
	ctx := context.Background()
	forms := func(b *testing.B, extra url.Values) []url.Values {
		out := make([]url.Values, b.N)
		for i := range out {
			c := f.claims("hs")
			c["jti"] = fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)
			out[i] = assertionForm(sign(b, jose.HS256, []byte(jwtSecret), c))
			for k, v := range extra {
				out[i][k] = v
			}
		}
		return out
	}
	b.Run("client_secret_jwt HS256", func(b *testing.B) {
		forms := forms(b, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
		b.ResetTimer()
		for i := range b.N {
			req, _ := http.NewRequest(http.MethodPost, f.tokenURL, strings.NewReader(forms[i].Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			ar, err := f.p.OAuth2.NewAccessRequest(ctx, req, NewSession())
			if err != nil {
				b.Fatal(errDetail(err))
			}
			if _, err := f.p.OAuth2.NewAccessResponse(ctx, ar); err != nil {
				b.Fatal(errDetail(err))
			}
		}
	})
	b.Run("client_secret_jwt HS256 authentication alone", func(b *testing.B) {
		forms := forms(b, nil)
		req, _ := http.NewRequest(http.MethodPost, f.tokenURL, nil)
		b.ResetTimer()
		for i := range b.N {
			if _, err := f.p.AuthenticateClient(ctx, req, forms[i]); err != nil {
				b.Fatal(errDetail(err))
			}
		}
	})
}
