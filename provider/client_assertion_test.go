package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkey/latchkey/models"
)

// BenchmarkClientAssertionTokenRequest is one client_credentials token request at the token endpoint over SQLite,
// authenticated with private_key_jwt (ES256) and, for comparison, client_secret_basic: fosite's parsing, client
// authentication (for the assertion: the client row read fresh, the signature verified, the jti recorded), the
// grant and the opaque token stored. Assertions are signed before the timer starts: signing is the client's cost.
func BenchmarkClientAssertionTokenRequest(b *testing.B) {
	f := newTokenAPIFixture(b)
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}}})
	for _, c := range []*models.Client{
		{ID: "pkjwt", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"},
			TokenEndpointAuthMethod: models.AuthMethodPrivateKeyJWT, JWKS: string(set)},
		{ID: "secret", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}, SecretHash: f.p.Hasher.HashSecret(backendSecret)},
	} {
		if err := f.store.CreateClient(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		b.Fatal(err)
	}
	tokenURL := "https://issuer.example" + PathToken
	request := func(form url.Values, basic bool) {
		req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth("secret", backendSecret)
		}
		ar, err := f.p.OAuth2.NewAccessRequest(ctx, req, NewSession())
		if err != nil {
			b.Fatal(errDetail(err))
		}
		if _, err := f.p.OAuth2.NewAccessResponse(ctx, ar); err != nil {
			b.Fatal(errDetail(err))
		}
	}
	b.Run("private_key_jwt ES256", func(b *testing.B) {
		forms := make([]url.Values, b.N)
		for i := range forms {
			now := time.Now()
			a, err := jwt.Signed(signer).Claims(map[string]any{"iss": "pkjwt", "sub": "pkjwt", "aud": tokenURL,
				"jti": fmt.Sprintf("bench-%d-%d", now.UnixNano(), i), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}).Serialize()
			if err != nil {
				b.Fatal(err)
			}
			forms[i] = url.Values{"grant_type": {"client_credentials"}, "scope": {"read"},
				"client_assertion_type": {clientAssertionType}, "client_assertion": {a}}
		}
		b.ResetTimer()
		for i := range b.N {
			request(forms[i], false)
		}
	})
	b.Run("private_key_jwt ES256 authentication alone", func(b *testing.B) {
		forms := make([]url.Values, b.N)
		for i := range forms {
			now := time.Now()
			a, err := jwt.Signed(signer).Claims(map[string]any{"iss": "pkjwt", "sub": "pkjwt", "aud": tokenURL,
				"jti": fmt.Sprintf("bench-auth-%d-%d", now.UnixNano(), i), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}).Serialize()
			if err != nil {
				b.Fatal(err)
			}
			forms[i] = url.Values{"client_assertion_type": {clientAssertionType}, "client_assertion": {a}}
		}
		req, _ := http.NewRequest(http.MethodPost, tokenURL, nil)
		b.ResetTimer()
		for i := range b.N {
			if _, err := f.p.AuthenticateClient(ctx, req, forms[i]); err != nil {
				b.Fatal(errDetail(err))
			}
		}
	})
	b.Run("client_secret_basic", func(b *testing.B) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
		for range b.N {
			request(form, true)
		}
	})
}
