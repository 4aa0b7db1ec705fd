package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkey/latchkey/jwksfetch"
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
	// The same keys by URL, from a host on loopback (so the fetcher is allowed private addresses).
	keyHost := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(set) }))
	defer keyHost.Close()
	f.p.Config.JWKSFetcherStrategy = jwksfetch.New(jwksfetch.Options{AllowPrivate: true})
	for _, c := range []*models.Client{
		{ID: "pkjwt", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"},
			TokenEndpointAuthMethod: models.AuthMethodPrivateKeyJWT, JWKS: string(set)},
		{ID: "pkjwt-uri", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"},
			TokenEndpointAuthMethod: models.AuthMethodPrivateKeyJWT, JWKSURI: keyHost.URL, TokenEndpointAuthSigningAlg: "ES256"},
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
	authAlone := func(client string) func(b *testing.B) {
		return func(b *testing.B) {
			auth := f.p // the public endpoints' client authentication (fosite's, through assertionErrors)
			forms := make([]url.Values, b.N+1)
			for i := range forms {
				now := time.Now()
				a, err := jwt.Signed(signer).Claims(map[string]any{"iss": client, "sub": client, "aud": tokenURL,
					"jti": fmt.Sprintf("bench-auth-%d-%d", now.UnixNano(), i), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}).Serialize()
				if err != nil {
					b.Fatal(err)
				}
				forms[i] = url.Values{"client_assertion_type": {clientAssertionType}, "client_assertion": {a}}
			}
			req, _ := http.NewRequest(http.MethodPost, tokenURL, nil)
			if _, err := auth.AuthenticateClient(ctx, req, forms[b.N]); err != nil { // jwks_uri: the one fetch
				b.Fatal(errDetail(err))
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := auth.AuthenticateClient(ctx, req, forms[i]); err != nil {
					b.Fatal(errDetail(err))
				}
			}
		}
	}
	b.Run("private_key_jwt ES256 authentication alone", authAlone("pkjwt"))
	b.Run("private_key_jwt ES256 authentication alone, keys by jwks_uri (cached)", authAlone("pkjwt-uri"))
	b.Run("client_secret_basic", func(b *testing.B) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
		for range b.N {
			request(form, true)
		}
	})
}
