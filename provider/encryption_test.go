package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/keys"
)

// recipient is a key pair a client (or resource server) registered for encryption: the public half is what we
// encrypt to, the private half is what the test decrypts with.
type recipient struct {
	priv *jose.JSONWebKey
	pub  *jose.JSONWebKey
}

func newRecipient(t testing.TB, kind string) recipient {
	t.Helper()
	var priv any
	var err error
	switch kind {
	case "RSA-2048":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "RSA-1024":
		priv, err = rsa.GenerateKey(rand.Reader, 1024)
	case "P-256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P-384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "P-521":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	default:
		t.Fatalf("unknown key kind %s", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	jwk := &jose.JSONWebKey{Key: priv, KeyID: "enc-" + kind, Use: "enc"}
	pub := jwk.Public()
	return recipient{priv: jwk, pub: &pub}
}

// recipients generates each kind of key once per test binary run that asks for it.
type recipients map[string]recipient

func (rs recipients) get(t testing.TB, kind string) recipient {
	if r, ok := rs[kind]; ok {
		return r
	}
	rs[kind] = newRecipient(t, kind)
	return rs[kind]
}

var allKeyAlgs = []jose.KeyAlgorithm{
	jose.RSA_OAEP_256, jose.RSA_OAEP, jose.ECDH_ES, jose.ECDH_ES_A128KW, jose.ECDH_ES_A192KW, jose.ECDH_ES_A256KW,
}
var allEncs = []jose.ContentEncryption{
	jose.A128GCM, jose.A192GCM, jose.A256GCM, jose.A128CBC_HS256, jose.A192CBC_HS384, jose.A256CBC_HS512,
}

// decrypt opens a compact JWE with the recipient's private key and returns its protected header and plaintext.
func decrypt(t *testing.T, token string, priv *jose.JSONWebKey) (jose.Header, []byte) {
	t.Helper()
	jwe, err := jose.ParseEncryptedCompact(token, allKeyAlgs, allEncs)
	if err != nil {
		t.Fatalf("parse JWE %q: %v", token, err)
	}
	plain, err := jwe.Decrypt(priv)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	return jwe.Header, plain
}

func TestEncryptCompactRoundTrips(t *testing.T) {
	keys := recipients{}
	for _, tc := range []struct {
		name, kind, alg, enc, cty string
	}{
		{"RSA-OAEP-256 with A256GCM", "RSA-2048", "RSA-OAEP-256", "A256GCM", ""},
		{"RSA-OAEP-256 with A128CBC-HS256, nested JWT", "RSA-2048", "RSA-OAEP-256", "A128CBC-HS256", "JWT"},
		{"ECDH-ES on P-256 with A256GCM", "P-256", "ECDH-ES", "A256GCM", ""},
		{"ECDH-ES on P-384 with A128GCM, nested JWT", "P-384", "ECDH-ES", "A128GCM", "JWT"},
		{"ECDH-ES+A256KW on P-521 with A256GCM", "P-521", "ECDH-ES+A256KW", "A256GCM", "JWT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := keys.get(t, tc.kind)
			plaintext := []byte(`{"sub":"usr_1","email":"ada@example.com"}`)
			token, err := EncryptCompact(plaintext, r.pub, tc.alg, tc.enc, tc.cty)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(token, "."); n != 4 {
				t.Fatalf("compact JWE has %d dots, want 4", n)
			}
			if strings.Contains(token, "ada@example.com") {
				t.Fatal("plaintext visible in the JWE")
			}
			hdr, got := decrypt(t, token, r.priv)
			if string(got) != string(plaintext) {
				t.Errorf("plaintext = %s, want %s", got, plaintext)
			}
			if hdr.Algorithm != tc.alg {
				t.Errorf("alg = %q, want %q", hdr.Algorithm, tc.alg)
			}
			if enc := hdr.ExtraHeaders[jose.HeaderKey("enc")]; enc != tc.enc {
				t.Errorf("enc = %v, want %q", enc, tc.enc)
			}
			if hdr.KeyID != r.pub.KeyID {
				t.Errorf("kid = %q, want the recipient's %q", hdr.KeyID, r.pub.KeyID)
			}
			cty, present := hdr.ExtraHeaders[jose.HeaderContentType]
			if tc.cty == "" && present {
				t.Errorf("cty = %v, want none", cty)
			}
			if tc.cty != "" && cty != tc.cty {
				t.Errorf("cty = %v, want %q", cty, tc.cty)
			}
			if again, _ := EncryptCompact(plaintext, r.pub, tc.alg, tc.enc, tc.cty); again == token {
				t.Error("two encryptions of the same plaintext are equal")
			}
		})
	}
	t.Run("every advertised alg and enc round-trips", func(t *testing.T) {
		for _, alg := range SupportedEncryptionAlgs {
			kind := "P-256"
			if strings.HasPrefix(alg, "RSA") {
				kind = "RSA-2048"
			}
			r := keys.get(t, kind)
			for _, enc := range SupportedEncryptionEncs {
				token, err := EncryptCompact([]byte("hello"), r.pub, alg, enc, "JWT")
				if err != nil {
					t.Errorf("%s/%s: %v", alg, enc, err)
					continue
				}
				if hdr, got := decrypt(t, token, r.priv); string(got) != "hello" || hdr.Algorithm != alg {
					t.Errorf("%s/%s: decrypted %q with alg %q", alg, enc, got, hdr.Algorithm)
				}
			}
		}
	})
	t.Run("a key without kid gives a JWE without kid", func(t *testing.T) {
		r := keys.get(t, "P-256")
		pub := *r.pub
		pub.KeyID = ""
		token, err := EncryptCompact([]byte("x"), &pub, "ECDH-ES", "A256GCM", "")
		if err != nil {
			t.Fatal(err)
		}
		if hdr, _ := decrypt(t, token, r.priv); hdr.KeyID != "" {
			t.Errorf("kid = %q, want none", hdr.KeyID)
		}
	})
	t.Run("an unusable registration is refused, not encrypted", func(t *testing.T) {
		r := keys.get(t, "P-256")
		if token, err := EncryptCompact([]byte("x"), r.priv, "ECDH-ES", "A256GCM", ""); err == nil {
			t.Errorf("encrypting to a private key gave %q", token)
		}
	})
}

// encryptingClient is a client that registered encryption keys, as models.Client will.
type encryptingClient struct {
	fakeClient
	idToken, userinfo, accessToken *encryptionSetting
}

type encryptionSetting struct {
	key      *jose.JSONWebKey
	alg, enc string
}

func (s *encryptionSetting) get() (*jose.JSONWebKey, string, string, bool) {
	if s == nil {
		return nil, "", "", false
	}
	return s.key, s.alg, s.enc, true
}

func (c *encryptingClient) IDTokenEncryption() (*jose.JSONWebKey, string, string, bool) {
	return c.idToken.get()
}
func (c *encryptingClient) UserinfoEncryption() (*jose.JSONWebKey, string, string, bool) {
	return c.userinfo.get()
}
func (c *encryptingClient) AccessTokenEncryption() (*jose.JSONWebKey, string, string, bool) {
	return c.accessToken.get()
}

var _ encryptionClient = (*encryptingClient)(nil)

func TestEncryptedJWTAccessTokens(t *testing.T) {
	ctx := context.Background()
	rsKeys := recipients{}
	for _, tc := range []struct {
		name, signingAlg, kind, alg, enc string
	}{
		{"RS256 inside RSA-OAEP-256/A256GCM", keys.RS256, "RSA-2048", "RSA-OAEP-256", "A256GCM"},
		{"ES256 inside ECDH-ES/A256GCM", keys.ES256, "P-256", "ECDH-ES", "A256GCM"},
		{"ES256 inside ECDH-ES+A256KW/A128GCM", keys.ES256, "P-384", "ECDH-ES+A256KW", "A128GCM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newStrategy(t, FormatOpaque, tc.signingAlg)
			rs := rsKeys.get(t, tc.kind)
			cl := &encryptingClient{
				fakeClient:  *client("svc", FormatJWT),
				accessToken: &encryptionSetting{rs.pub, tc.alg, tc.enc},
			}
			r := requester(cl, f.now)
			token, sig, err := f.s.GenerateAccessToken(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(token, "."); n != 4 {
				t.Fatalf("token has %d dots, want a 5-part JWE", n)
			}

			t.Run("the resource server decrypts a JWT that verifies with the signing key", func(t *testing.T) {
				hdr, inner := decrypt(t, token, rs.priv)
				if cty := hdr.ExtraHeaders[jose.HeaderContentType]; cty != "JWT" {
					t.Errorf("JWE cty = %v, want JWT", cty)
				}
				if hdr.KeyID != rs.pub.KeyID {
					t.Errorf("JWE kid = %q, want %q", hdr.KeyID, rs.pub.KeyID)
				}
				jwtHdr, claims := parseJWT(t, string(inner))
				if typ := jwtHdr.ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
					t.Errorf("inner typ = %v, want at+jwt", typ)
				}
				pub, ok := f.keys.PublicKey(jwtHdr.KeyID)
				if !ok {
					t.Fatalf("inner kid %q not published", jwtHdr.KeyID)
				}
				jws, err := jose.ParseSignedCompact(string(inner), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tc.signingAlg)})
				if err != nil {
					t.Fatalf("inner JWT is not a compact JWS: %v", err)
				}
				if _, err := jws.Verify(pub); err != nil {
					t.Errorf("inner JWT does not verify: %v", err)
				}
				if claims["sub"] != "svc" || claims["client_id"] != "svc" || claims["iss"] != testIssuer {
					t.Errorf("claims = %v", claims)
				}
			})
			t.Run("the browser sees no claims", func(t *testing.T) {
				_, inner := decrypt(t, token, rs.priv)
				payload := strings.Split(string(inner), ".")[1]
				if strings.Contains(token, payload) {
					t.Error("the JWE carries the JWT payload in the clear")
				}
			})
			t.Run("its storage signature is what AccessTokenSignature computes", func(t *testing.T) {
				if sig == "" || f.s.AccessTokenSignature(ctx, token) != sig {
					t.Errorf("AccessTokenSignature = %q, generate said %q", f.s.AccessTokenSignature(ctx, token), sig)
				}
				other, otherSig, _ := f.s.GenerateAccessToken(ctx, r)
				if other == token || otherSig == sig {
					t.Error("two encrypted access tokens share a signature")
				}
			})
			t.Run("a token with any part changed has another signature", func(t *testing.T) {
				parts := strings.Split(token, ".")
				for i := range parts[:4] {
					changed := append([]string(nil), parts...)
					changed[i] = "A" + changed[i]
					if f.s.AccessTokenSignature(ctx, strings.Join(changed, ".")) == sig {
						t.Errorf("changing part %d keeps the signature, so the stored grant would still match", i)
					}
				}
			})
			t.Run("validates against a live session", func(t *testing.T) {
				if err := f.s.ValidateAccessToken(ctx, r, token); err != nil {
					t.Errorf("validate: %v", err)
				}
			})
			t.Run("an expired session is refused", func(t *testing.T) {
				expired := r.Sanitize(nil).(*fosite.Request)
				expired.Session = r.GetSession().Clone()
				expired.Session.SetExpiresAt(fosite.AccessToken, f.now.Add(-time.Second))
				if err := f.s.ValidateAccessToken(ctx, expired, token); !errors.Is(err, fosite.ErrTokenExpired) {
					t.Errorf("error = %v, want ErrTokenExpired", err)
				}
			})
			t.Run("a five-part string that is not our JWE is refused", func(t *testing.T) {
				for _, bad := range []string{"a.b.c.d.e", "...."} {
					if err := f.s.ValidateAccessToken(ctx, r, bad); !errors.Is(err, fosite.ErrInvalidTokenFormat) {
						t.Errorf("%q: error = %v, want ErrInvalidTokenFormat", bad, err)
					}
				}
				// A JWE that is not a nested JWT.
				plain, _ := EncryptCompact([]byte("{}"), rs.pub, tc.alg, tc.enc, "")
				if err := f.s.ValidateAccessToken(ctx, r, plain); !errors.Is(err, fosite.ErrInvalidTokenFormat) {
					t.Errorf("JWE without cty JWT: error = %v, want ErrInvalidTokenFormat", err)
				}
			})
		})
	}

	rs := rsKeys.get(t, "P-256")
	for _, tc := range []struct {
		name      string
		format    string
		setting   *encryptionSetting
		wantDots  int
		wantError bool
	}{
		{"a JWT client without access token encryption gets a plain JWT", FormatJWT, nil, 2, false},
		{"an opaque client is not encrypted: there are no claims to hide", FormatOpaque, &encryptionSetting{rs.pub, "ECDH-ES", "A256GCM"}, 1, false},
		{"a bad registration fails issuance instead of leaking claims", FormatJWT, &encryptionSetting{rs.priv, "ECDH-ES", "A256GCM"}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newStrategy(t, FormatOpaque, keys.ES256)
			cl := &encryptingClient{fakeClient: *client("svc", tc.format), accessToken: tc.setting}
			r := requester(cl, f.now)
			token, sig, err := f.s.GenerateAccessToken(ctx, r)
			if tc.wantError {
				if err == nil || token != "" || sig != "" {
					t.Errorf("token %q, signature %q, error %v; want only an error", token, sig, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(token, "."); n != tc.wantDots {
				t.Errorf("token has %d dots, want %d", n, tc.wantDots)
			}
			if f.s.AccessTokenSignature(ctx, token) != sig {
				t.Error("AccessTokenSignature disagrees with GenerateAccessToken")
			}
			if err := f.s.ValidateAccessToken(ctx, r, token); err != nil {
				t.Errorf("validate: %v", err)
			}
		})
	}
}

// fakeIDTokens is an inner ID token strategy that returns a fixed token (or error).
type fakeIDTokens struct {
	token string
	err   error
}

func (f fakeIDTokens) GenerateIDToken(context.Context, time.Duration, fosite.Requester) (string, error) {
	return f.token, f.err
}

func TestIDTokenEncryption(t *testing.T) {
	ctx := context.Background()
	rp := newRecipient(t, "P-256")
	const signed = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c3JfMSJ9.c2ln"
	for _, tc := range []struct {
		name        string
		client      fosite.Client
		inner       fakeIDTokens
		wantPlain   bool
		wantErr     bool
		wantNoToken bool
	}{
		{"a plain fosite client gets the signed token", &fosite.DefaultClient{ID: "rp"}, fakeIDTokens{token: signed}, true, false, false},
		{"a client without ID token encryption gets the signed token",
			&encryptingClient{fakeClient: *client("rp", ""), userinfo: &encryptionSetting{rp.pub, "ECDH-ES", "A256GCM"}},
			fakeIDTokens{token: signed}, true, false, false},
		{"a client with ID token encryption gets it nested in a JWE",
			&encryptingClient{fakeClient: *client("rp", ""), idToken: &encryptionSetting{rp.pub, "ECDH-ES", "A256GCM"}},
			fakeIDTokens{token: signed}, false, false, false},
		{"an inner error passes through",
			&encryptingClient{fakeClient: *client("rp", ""), idToken: &encryptionSetting{rp.pub, "ECDH-ES", "A256GCM"}},
			fakeIDTokens{err: fosite.ErrServerError}, false, true, true},
		{"a bad registration fails rather than sending the token in the clear",
			&encryptingClient{fakeClient: *client("rp", ""), idToken: &encryptionSetting{rp.pub, "RSA-OAEP-256", "A256GCM"}},
			fakeIDTokens{token: signed}, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ar := fosite.NewAccessRequest(NewSession())
			ar.Client = tc.client
			token, err := encryptingIDTokenStrategy{inner: tc.inner}.GenerateIDToken(ctx, time.Hour, ar)
			if tc.wantErr != (err != nil) {
				t.Fatalf("error = %v, want error: %v", err, tc.wantErr)
			}
			if tc.wantNoToken {
				if token != "" {
					t.Errorf("token %q alongside an error", token)
				}
				return
			}
			if tc.wantPlain {
				if token != signed {
					t.Errorf("token = %q, want the inner token unchanged", token)
				}
				return
			}
			hdr, inner := decrypt(t, token, rp.priv)
			if string(inner) != signed {
				t.Errorf("decrypted = %q, want the signed ID token", inner)
			}
			if cty := hdr.ExtraHeaders[jose.HeaderContentType]; cty != "JWT" {
				t.Errorf("cty = %v, want JWT", cty)
			}
		})
	}

	t.Run("with fosite's strategy the decrypted ID token verifies", func(t *testing.T) {
		signing := newFakeKeys(t)
		signer := newIDTokenSigner(signing, keys.ES256)
		cfg := &fosite.Config{IDTokenIssuer: testIssuer, MinParameterEntropy: fosite.MinParameterEntropy}
		s := encryptingIDTokenStrategy{inner: &openid.DefaultStrategy{Signer: signer, Config: cfg}}
		sess := NewSession()
		sess.Subject = "usr_1"
		sess.IDTokenClaims().Subject = "usr_1"
		ar := fosite.NewAccessRequest(sess)
		ar.Client = &encryptingClient{fakeClient: *client("rp", ""), idToken: &encryptionSetting{rp.pub, "ECDH-ES", "A256GCM"}}
		token, err := s.GenerateIDToken(ctx, time.Hour, ar)
		if err != nil {
			t.Fatal(err)
		}
		_, inner := decrypt(t, token, rp.priv)
		parsed, err := signer.Decode(ctx, string(inner))
		if err != nil {
			t.Fatalf("decrypted ID token does not verify: %v", err)
		}
		if parsed.Claims["sub"] != "usr_1" || parsed.Claims["iss"] != testIssuer {
			t.Errorf("claims = %v", parsed.Claims)
		}
	})
}
