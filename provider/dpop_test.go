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

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/models"
)

// BenchmarkDPoPTokenRequest is one client_credentials token request over SQLite, authenticated with
// client_secret_basic, plain and DPoP-bound with an ES256 proof: the proof verified (signature, claims, RFC 7638
// thumbprint), its jti spent in oauth2_jti, the session bound. Proofs are signed before the timer: signing is the
// client's cost. The difference of the two rows is what DPoP adds to the server.
func BenchmarkDPoPTokenRequest(b *testing.B) {
	f := newTokenAPIFixture(b)
	ctx := context.Background()
	if err := f.store.CreateClient(ctx, &models.Client{ID: "secret", GrantTypes: []string{"client_credentials"},
		Scopes: []string{"read"}, SecretHash: f.p.Hasher.HashSecret(backendSecret)}); err != nil {
		b.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("dpop+jwt").WithHeader("jwk", jose.JSONWebKey{Key: &key.PublicKey}))
	if err != nil {
		b.Fatal(err)
	}
	tokenURL := f.p.Issuer + PathToken
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	proofs := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			claims, _ := json.Marshal(map[string]any{"jti": fmt.Sprintf("bench-%d-%d", f.p.options.Now().UnixNano(), i),
				"htm": "POST", "htu": tokenURL, "iat": f.p.options.Now().Unix()})
			jws, err := signer.Sign(claims)
			if err != nil {
				b.Fatal(err)
			}
			out[i], _ = jws.CompactSerialize()
		}
		return out
	}
	request := func(proof string) {
		req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("secret", backendSecret)
		ctx := ctx
		if proof != "" {
			req.Header.Set("DPoP", proof)
			jkt, err := f.p.CheckDPoP(ctx, req, "")
			if err != nil || jkt == "" {
				b.Fatalf("proof: %v", err)
			}
			ctx = WithDPoPKey(ctx, jkt)
		}
		ar, err := f.p.OAuth2.NewAccessRequest(ctx, req, NewSession())
		if err != nil {
			b.Fatal(errDetail(err))
		}
		resp, err := f.p.OAuth2.NewAccessResponse(ctx, ar)
		if err != nil {
			b.Fatal(errDetail(err))
		}
		if proof != "" && ar.GetSession().(*Session).DPoPJKT == "" {
			b.Fatal("not bound")
		}
		_ = resp
	}
	b.Run("client_secret_basic", func(b *testing.B) {
		for range b.N {
			request("")
		}
	})
	b.Run("client_secret_basic DPoP ES256", func(b *testing.B) {
		ps := proofs(b.N)
		b.ResetTimer()
		for i := range b.N {
			request(ps[i])
		}
	})
	b.Run("DPoP ES256 proof check alone", func(b *testing.B) {
		ps := proofs(b.N)
		b.ResetTimer()
		for i := range b.N {
			req, _ := http.NewRequest(http.MethodPost, tokenURL, nil)
			req.Header.Set("DPoP", ps[i])
			if _, err := f.p.CheckDPoP(ctx, req, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
