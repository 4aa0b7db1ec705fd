package dpop_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/dpop"
)

const htu = "https://id.example.com/oauth2/token"

var now = time.Unix(1_800_000_000, 0)

// sign makes a proof: claims and header extras as given, the public key of priv in the header unless jwk is set.
func sign(t testing.TB, priv any, alg jose.SignatureAlgorithm, typ string, jwk any, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	if jwk == nil {
		switch k := priv.(type) {
		case *ecdsa.PrivateKey:
			jwk = &jose.JSONWebKey{Key: &k.PublicKey}
		case *rsa.PrivateKey:
			jwk = &jose.JSONWebKey{Key: &k.PublicKey}
		}
	}
	if jwk != nil && jwk != "omit" {
		opts = opts.WithHeader("jwk", jwk)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(claims)
	jws, err := s.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func baseClaims() map[string]any {
	return map[string]any{"jti": "j-1", "htm": "POST", "htu": htu, "iat": now.Unix()}
}

func with(m map[string]any, k string, v any) map[string]any {
	c := baseClaims()
	for kk, vv := range m {
		c[kk] = vv
	}
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func TestVerify(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	nonces := dpop.NewNonces([]byte(strings.Repeat("k", 32)), 0)
	good := nonces.Current(now)
	nonceOK := func(n string) bool { return nonces.Valid(n, now) }
	base := dpop.Expect{Method: "POST", URL: htu, Now: now}
	bearer := base
	bearer.AccessToken = "lk_at_token"
	withNonce := base
	withNonce.Nonce = nonceOK

	none := func() string { // alg none, hand made: go-jose will not sign one
		h, _ := json.Marshal(map[string]any{"alg": "none", "typ": "dpop+jwt", "jwk": jose.JSONWebKey{Key: &ec.PublicKey}})
		b, _ := json.Marshal(baseClaims())
		return enc(h) + "." + enc(b) + "."
	}
	badSig := func() string {
		p := sign(t, ec, jose.ES256, "dpop+jwt", nil, baseClaims())
		parts := strings.Split(p, ".")
		wrong := strings.Split(sign(t, other, jose.ES256, "dpop+jwt", nil, baseClaims()), ".")
		return parts[0] + "." + parts[1] + "." + wrong[2]
	}

	cases := []struct {
		name  string
		proof string
		want  dpop.Expect
		code  string // "" = accepted
	}{
		{"ES256 ok", sign(t, ec, jose.ES256, "dpop+jwt", nil, baseClaims()), base, ""},
		{"ES384 ok", sign(t, ec384, jose.ES384, "dpop+jwt", nil, baseClaims()), base, ""},
		{"PS256 ok", sign(t, rsaKey, jose.PS256, "dpop+jwt", nil, baseClaims()), base, ""},
		{"RS256 ok", sign(t, rsaKey, jose.RS256, "dpop+jwt", nil, baseClaims()), base, ""},
		{"htu normalised", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "htu", "HTTPS://ID.example.com:443/oauth2/token?x=1#f")), base, ""},
		{"missing", "", base, dpop.CodeInvalidProof},
		{"garbage", "a.b.c", base, dpop.CodeInvalidProof},
		{"wrong typ", sign(t, ec, jose.ES256, "JWT", nil, baseClaims()), base, dpop.CodeInvalidProof},
		{"alg none", none(), base, dpop.CodeInvalidProof},
		{"HS256", sign(t, []byte(strings.Repeat("s", 32)), jose.HS256, "dpop+jwt", &jose.JSONWebKey{Key: []byte(strings.Repeat("s", 32))}, baseClaims()), base, dpop.CodeInvalidProof},
		{"private jwk", sign(t, ec, jose.ES256, "dpop+jwt", &jose.JSONWebKey{Key: ec}, baseClaims()), base, dpop.CodeInvalidProof},
		{"no jwk", sign(t, ec, jose.ES256, "dpop+jwt", "omit", baseClaims()), base, dpop.CodeInvalidProof},
		{"bad signature", badSig(), base, dpop.CodeInvalidProof},
		{"key of another alg", sign(t, ec, jose.ES256, "dpop+jwt", &jose.JSONWebKey{Key: &ec384.PublicKey}, baseClaims()), base, dpop.CodeInvalidProof},
		{"wrong htm", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "htm", "GET")), base, dpop.CodeInvalidProof},
		{"wrong htu", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "htu", "https://evil.example/oauth2/token")), base, dpop.CodeInvalidProof},
		{"wrong htu path", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "htu", "https://id.example.com/oauth2/userinfo")), base, dpop.CodeInvalidProof},
		{"stale iat", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "iat", now.Add(-61*time.Second).Unix())), base, dpop.CodeInvalidProof},
		{"future iat", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "iat", now.Add(61*time.Second).Unix())), base, dpop.CodeInvalidProof},
		{"string iat", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "iat", "1800000000")), base, dpop.CodeInvalidProof},
		{"missing jti", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "jti", nil)), base, dpop.CodeInvalidProof},
		{"long jti", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "jti", strings.Repeat("j", 65))), base, dpop.CodeInvalidProof},
		{"ath ok", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "ath", dpop.AccessTokenHash("lk_at_token"))), bearer, ""},
		{"ath missing", sign(t, ec, jose.ES256, "dpop+jwt", nil, baseClaims()), bearer, dpop.CodeInvalidProof},
		{"ath mismatch", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "ath", dpop.AccessTokenHash("other"))), bearer, dpop.CodeInvalidProof},
		{"nonce ok", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "nonce", good)), withNonce, ""},
		{"nonce missing", sign(t, ec, jose.ES256, "dpop+jwt", nil, baseClaims()), withNonce, dpop.CodeUseNonce},
		{"nonce stale", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "nonce", nonces.Current(now.Add(-11*time.Minute)))), withNonce, dpop.CodeUseNonce},
		{"nonce previous window", sign(t, ec, jose.ES256, "dpop+jwt", nil, with(nil, "nonce", nonces.Current(now.Add(-dpop.DefaultNoncePeriod)))), withNonce, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := dpop.Verify(tc.proof, tc.want)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.JKT == "" || p.JTI != "j-1" || !p.SpendUntil.After(now) {
					t.Fatalf("proof %+v", p)
				}
				return
			}
			var de *dpop.Error
			if err == nil || !asError(err, &de) || de.Code != tc.code {
				t.Fatalf("want %s, got %v", tc.code, err)
			}
		})
	}
}

func TestThumbprintRFC7638(t *testing.T) {
	// RFC 7638 §3.1's example key and thumbprint.
	var k jose.JSONWebKey
	raw := `{"kty":"RSA","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}`
	if err := k.UnmarshalJSON([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	got, err := dpop.Thumbprint(&k)
	if err != nil || got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("thumbprint %q %v", got, err)
	}
}

func TestNoncesAcrossNodes(t *testing.T) {
	key := []byte(strings.Repeat("n", 32))
	a, b := dpop.NewNonces(key, time.Minute), dpop.NewNonces(key, time.Minute)
	n := a.Current(now)
	if !b.Valid(n, now) || !b.Valid(n, now.Add(time.Minute)) || b.Valid(n, now.Add(2*time.Minute)) {
		t.Fatal("a nonce must be good on every node for its window and the next, and no longer")
	}
	if dpop.NewNonces([]byte(strings.Repeat("x", 32)), time.Minute).Valid(n, now) || a.Valid("", now) {
		t.Fatal("a nonce of another key, or none, must be refused")
	}
}

func FuzzVerify(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(sign(f, ec, jose.ES256, "dpop+jwt", nil, baseClaims()))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := dpop.Verify(proof, dpop.Expect{Method: "POST", URL: htu, Now: now, AccessToken: "x"})
		if err == nil && p.JKT == "" {
			t.Fatal("accepted without a thumbprint")
		}
	})
}

// BenchmarkVerifyES256 is the pure part of a proof's check: parse, ES256 signature, claims, thumbprint.
func BenchmarkVerifyES256(b *testing.B) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	proof := sign(b, ec, jose.ES256, "dpop+jwt", nil, baseClaims())
	want := dpop.Expect{Method: "POST", URL: htu, Now: now}
	b.ReportAllocs()
	for range b.N {
		if _, err := dpop.Verify(proof, want); err != nil {
			b.Fatal(err)
		}
	}
}
