package provider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/keys"
)

// fakeKeys is a small SigningKeys: one active key per algorithm and a set of published public keys.
type fakeKeys struct {
	mu        sync.Mutex
	active    map[string]*jose.JSONWebKey
	published map[string]*jose.JSONWebKey
}

func newFakeKeys(t testing.TB) *fakeKeys {
	t.Helper()
	k := &fakeKeys{active: map[string]*jose.JSONWebKey{}, published: map[string]*jose.JSONWebKey{}}
	k.rotate(t, keys.RS256)
	k.rotate(t, keys.ES256)
	return k
}

// rotate makes a new active key for alg; the previous one stays published (retired, not yet expired).
func (k *fakeKeys) rotate(t testing.TB, alg string) *jose.JSONWebKey {
	t.Helper()
	var priv any
	var err error
	switch alg {
	case keys.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case keys.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	jwk := &jose.JSONWebKey{Key: priv, Algorithm: alg, Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	pub := jwk.Public()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.active[alg] = jwk
	k.published[jwk.KeyID] = &pub
	return jwk
}

func (k *fakeKeys) unpublish(kid string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.published, kid)
}

func (k *fakeKeys) SigningKey(alg string) (*jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, ok := k.active[alg]
	if !ok {
		return nil, fmt.Errorf("no active %s key", alg)
	}
	c := *key
	return &c, nil
}

func (k *fakeKeys) LookupPublicKey(kid string) (*jose.JSONWebKey, error) {
	key, _ := k.PublicKey(kid)
	return key, nil
}

func (k *fakeKeys) PublicKey(kid string) (*jose.JSONWebKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, ok := k.published[kid]
	if !ok {
		return nil, false
	}
	c := *key
	return &c, true
}

// fakeClient chooses its access token format, as models.Client does.
type fakeClient struct {
	fosite.DefaultClient
	format string
}

func (c *fakeClient) GetAccessTokenFormat() string { return c.format }

const testIssuer = "https://auth.example.com"

type strategyFixture struct {
	s    *tokenStrategy
	keys *fakeKeys
	now  time.Time
}

func newStrategy(t testing.TB, defaultFormat, alg string) *strategyFixture {
	t.Helper()
	return newStrategyWithSecret(t, testSystemSecret, defaultFormat, alg)
}

func newStrategyWithSecret(t testing.TB, systemSecret, defaultFormat, alg string) *strategyFixture {
	t.Helper()
	f := &strategyFixture{keys: newFakeKeys(t), now: time.Now().Truncate(time.Second)}
	cfg := &fosite.Config{
		AccessTokenLifespan:   time.Hour,
		RefreshTokenLifespan:  24 * time.Hour,
		AuthorizeCodeLifespan: time.Minute,
		GlobalSecret:          keys.Derive([]byte(systemSecret), "fosite-hmac"),
	}
	f.s = newTokenStrategy(cfg, f.keys, testIssuer, defaultFormat, alg, func() time.Time { return f.now })
	return f
}

// requester is a granted client-credentials request for client, expiring in an hour unless the caller changes it.
func requester(client fosite.Client, now time.Time) *fosite.AccessRequest {
	sess := &Session{Subject: client.GetID(), ClientID: client.GetID(), Roles: []string{"reader"}, Extras: map[string]any{"tenant": "acme"}}
	sess.SetExpiresAt(fosite.AccessToken, now.Add(time.Hour))
	sess.SetExpiresAt(fosite.RefreshToken, now.Add(24*time.Hour))
	sess.SetExpiresAt(fosite.AuthorizeCode, now.Add(time.Minute))
	ar := fosite.NewAccessRequest(sess)
	ar.Client = client
	ar.RequestedAt = now
	ar.GrantScope("read")
	ar.GrantScope("write")
	ar.GrantAudience("https://api.example.com")
	return ar
}

func client(id, format string) *fakeClient {
	return &fakeClient{DefaultClient: fosite.DefaultClient{ID: id}, format: format}
}

func TestOpaqueTokensArePrefixedAndValidate(t *testing.T) {
	ctx := context.Background()
	f := newStrategy(t, FormatOpaque, keys.RS256)
	r := requester(client("svc", ""), f.now)

	for _, tc := range []struct {
		name      string
		prefix    string
		generate  func(context.Context, fosite.Requester) (string, string, error)
		validate  func(context.Context, fosite.Requester, string) error
		signature func(context.Context, string) string
	}{
		{"access token", "lk_at_", f.s.GenerateAccessToken, f.s.ValidateAccessToken, f.s.AccessTokenSignature},
		{"refresh token", "lk_rt_", f.s.GenerateRefreshToken, f.s.ValidateRefreshToken, f.s.RefreshTokenSignature},
		{"authorization code", "lk_ac_", f.s.GenerateAuthorizeCode, f.s.ValidateAuthorizeCode, f.s.AuthorizeCodeSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token, sig, err := tc.generate(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(token, tc.prefix) {
				t.Fatalf("%s = %q, want prefix %s", tc.name, token, tc.prefix)
			}
			if strings.Count(token, ".") != 1 {
				t.Errorf("opaque %s %q should have exactly one dot", tc.name, token)
			}
			if got := tc.signature(ctx, token); got != sig || sig == "" {
				t.Errorf("signature of the token = %q, generate said %q", got, sig)
			}
			if err := tc.validate(ctx, r, token); err != nil {
				t.Errorf("validate fresh %s: %v", tc.name, err)
			}

			unprefixed := strings.TrimPrefix(token, tc.prefix)
			for _, bad := range []struct {
				name, token string
			}{
				{"without its prefix", unprefixed},
				{"with another kind's prefix", otherPrefix(tc.prefix) + unprefixed},
				{"with a tampered signature", token[:len(token)-2] + flip2(token[len(token)-2:])},
				{"empty", ""},
				{"prefix alone", tc.prefix},
			} {
				err := tc.validate(ctx, r, bad.token)
				if err == nil {
					t.Errorf("%s %s validated", tc.name, bad.name)
				}
			}
			if err := tc.validate(ctx, r, unprefixed); !errors.Is(err, fosite.ErrInvalidTokenFormat) {
				t.Errorf("unprefixed %s: error = %v, want ErrInvalidTokenFormat", tc.name, err)
			}
		})
	}

	t.Run("tokens differ per call", func(t *testing.T) {
		a, _, _ := f.s.GenerateAccessToken(ctx, r)
		b, _, _ := f.s.GenerateAccessToken(ctx, r)
		if a == b {
			t.Error("two access tokens are equal")
		}
	})
	t.Run("a token from another system secret is refused", func(t *testing.T) {
		other := newStrategyWithSecret(t, otherSystemSecret, FormatOpaque, keys.RS256)
		token, _, err := other.s.GenerateAccessToken(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.s.ValidateAccessToken(ctx, r, token); !errors.Is(err, fosite.ErrTokenSignatureMismatch) {
			t.Errorf("error = %v, want ErrTokenSignatureMismatch", err)
		}
	})
}

func otherPrefix(p string) string {
	if p == "lk_at_" {
		return "lk_rt_"
	}
	return "lk_at_"
}

func flip2(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}

func TestAccessTokenFormatChoice(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name          string
		defaultFormat string
		clientFormat  string
		plainClient   bool // a fosite client that does not implement GetAccessTokenFormat
		wantJWT       bool
	}{
		{"opaque by default", FormatOpaque, "", false, false},
		{"jwt by server default", FormatJWT, "", false, true},
		{"client asks for jwt over an opaque default", FormatOpaque, FormatJWT, false, true},
		{"client asks for opaque over a jwt default", FormatJWT, FormatOpaque, false, false},
		{"client without a format method gets the default (jwt)", FormatJWT, "", true, true},
		{"client without a format method gets the default (opaque)", FormatOpaque, "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newStrategy(t, tc.defaultFormat, keys.RS256)
			var cl fosite.Client = client("svc", tc.clientFormat)
			if tc.plainClient {
				cl = &fosite.DefaultClient{ID: "svc"}
			}
			r := requester(cl, f.now)
			token, sig, err := f.s.GenerateAccessToken(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if isJWT := strings.Count(token, ".") == 2; isJWT != tc.wantJWT {
				t.Fatalf("token %q: JWT = %v, want %v", token, isJWT, tc.wantJWT)
			}
			if tc.wantJWT == strings.HasPrefix(token, "lk_at_") {
				t.Errorf("token %q: prefix lk_at_ only on opaque tokens", token)
			}
			if f.s.AccessTokenSignature(ctx, token) != sig {
				t.Errorf("AccessTokenSignature disagrees with GenerateAccessToken")
			}
			if err := f.s.ValidateAccessToken(ctx, r, token); err != nil {
				t.Errorf("validate: %v", err)
			}
		})
	}
}

// parseJWT returns the header and claims of a compact JWS without verifying it.
func parseJWT(t *testing.T, token string) (jose.Header, map[string]any) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("parse %q: %v", token, err)
	}
	var claims map[string]any
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Protected, claims
}

func TestJWTAccessTokens(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{keys.RS256, keys.ES256} {
		t.Run(alg, func(t *testing.T) {
			f := newStrategy(t, FormatJWT, alg)
			r := requester(client("svc", ""), f.now)
			token, _, err := f.s.GenerateAccessToken(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			hdr, claims := parseJWT(t, token)
			active, _ := f.keys.SigningKey(alg)

			t.Run("header carries typ at+jwt, alg and kid", func(t *testing.T) {
				if typ := hdr.ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
					t.Errorf("typ = %v, want at+jwt", typ)
				}
				if hdr.Algorithm != alg {
					t.Errorf("alg = %q, want %q", hdr.Algorithm, alg)
				}
				if hdr.KeyID == "" || hdr.KeyID != active.KeyID {
					t.Errorf("kid = %q, want the active key %q", hdr.KeyID, active.KeyID)
				}
			})
			t.Run("verifies with the published key", func(t *testing.T) {
				pub, ok := f.keys.PublicKey(hdr.KeyID)
				if !ok {
					t.Fatal("kid not published")
				}
				jws, _ := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
				if _, err := jws.Verify(pub); err != nil {
					t.Fatalf("verify: %v", err)
				}
			})
			t.Run("claims follow RFC 9068", func(t *testing.T) {
				want := map[string]any{
					"iss": testIssuer, "sub": "svc", "client_id": "svc", "aud": "https://api.example.com",
					"scope": "read write", "exp": float64(f.now.Add(time.Hour).Unix()), "iat": float64(f.now.Unix()),
					"roles": []any{"reader"}, ExtrasClaim: map[string]any{"tenant": "acme"},
				}
				for k, v := range want {
					if got, _ := json.Marshal(claims[k]); string(got) != mustMarshal(v) {
						t.Errorf("claim %s = %s, want %s", k, got, mustMarshal(v))
					}
				}
				if jti, _ := claims["jti"].(string); len(jti) < 16 {
					t.Errorf("jti = %v", claims["jti"])
				}
			})
			t.Run("validates", func(t *testing.T) {
				if err := f.s.ValidateAccessToken(ctx, r, token); err != nil {
					t.Fatal(err)
				}
			})
		})
	}

	t.Run("custom claims cannot override registered claims", func(t *testing.T) {
		f := newStrategy(t, FormatJWT, keys.ES256)
		r := requester(client("svc", ""), f.now)
		r.GetSession().(*Session).Extras = map[string]any{"iss": "https://evil.example", "sub": "admin"}
		token, _, err := f.s.GenerateAccessToken(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		_, claims := parseJWT(t, token)
		if claims["iss"] != testIssuer || claims["sub"] != "svc" {
			t.Errorf("iss/sub = %v/%v", claims["iss"], claims["sub"])
		}
	})
	t.Run("no granted audience means the issuer; several stay a list", func(t *testing.T) {
		f := newStrategy(t, FormatJWT, keys.ES256)
		for _, tc := range []struct {
			aud  []string
			want string
		}{
			{nil, `"` + testIssuer + `"`},
			{[]string{"a", "b"}, `["a","b"]`},
		} {
			r := requester(client("svc", ""), f.now)
			r.GrantedAudience = tc.aud
			token, _, err := f.s.GenerateAccessToken(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			_, claims := parseJWT(t, token)
			if got := mustMarshal(claims["aud"]); got != tc.want {
				t.Errorf("aud for %v = %s, want %s", tc.aud, got, tc.want)
			}
		}
	})
}

func mustMarshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestJWTValidation(t *testing.T) {
	ctx := context.Background()
	f := newStrategy(t, FormatJWT, keys.RS256)
	r := requester(client("svc", ""), f.now)
	token, _, err := f.s.GenerateAccessToken(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := parseJWT(t, token)
	parts := strings.Split(token, ".")

	// A second strategy with its own keys: its tokens are well-formed but signed by keys we never published.
	stranger := newStrategy(t, FormatJWT, keys.RS256)
	foreign, _, err := stranger.s.GenerateAccessToken(ctx, r)
	if err != nil {
		t.Fatal(err)
	}

	tamperedPayload := func() string {
		_, claims := parseJWT(t, token)
		claims["scope"] = "read write admin"
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(mustMarshal(claims))) + "." + parts[2]
	}()
	untyped := func() string {
		key, _ := f.keys.SigningKey(keys.RS256)
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := signer.Sign([]byte(`{"sub":"svc"}`))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}()
	noneAlg := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"`+hdr.KeyID+`"}`)) + "." + parts[1] + "."

	for _, tc := range []struct {
		name  string
		token string
		want  *fosite.RFC6749Error
	}{
		{"tampered payload", tamperedPayload, fosite.ErrTokenSignatureMismatch},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flip2(parts[2][:4]) + parts[2][4:], fosite.ErrTokenSignatureMismatch},
		{"signed by an unpublished key", foreign, fosite.ErrTokenSignatureMismatch},
		{"typ JWT instead of at+jwt", untyped, fosite.ErrInvalidTokenFormat},
		{"alg none", noneAlg, fosite.ErrInvalidTokenFormat},
		{"three dots of garbage", "a.b.c", fosite.ErrInvalidTokenFormat},
		{"JWT with the opaque prefix", "lk_at_" + token, fosite.ErrInvalidTokenFormat},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			err := f.s.ValidateAccessToken(ctx, r, tc.token)
			if !errors.Is(err, tc.want) {
				t.Errorf("error = %v, want %v", err, tc.want.ErrorField)
			}
		})
	}

	t.Run("token signed by a retired but still published key validates", func(t *testing.T) {
		f.keys.rotate(t, keys.RS256)
		if cur, _ := f.keys.SigningKey(keys.RS256); cur.KeyID == hdr.KeyID {
			t.Fatal("rotation did not change the active key")
		}
		if err := f.s.ValidateAccessToken(ctx, r, token); err != nil {
			t.Errorf("old token after rotation: %v", err)
		}
		fresh, _, err := f.s.GenerateAccessToken(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if h, _ := parseJWT(t, fresh); h.KeyID == hdr.KeyID {
			t.Error("a token issued after rotation is still signed with the retired key (stale cached signer)")
		}
		if err := f.s.ValidateAccessToken(ctx, r, fresh); err != nil {
			t.Errorf("token after rotation: %v", err)
		}
	})
	t.Run("token signed by a key no longer published is refused", func(t *testing.T) {
		f.keys.unpublish(hdr.KeyID)
		if err := f.s.ValidateAccessToken(ctx, r, token); !errors.Is(err, fosite.ErrTokenSignatureMismatch) {
			t.Errorf("error = %v, want ErrTokenSignatureMismatch", err)
		}
	})
}

func TestExpiredSessionIsRefused(t *testing.T) {
	ctx := context.Background()
	for _, format := range []string{FormatOpaque, FormatJWT} {
		t.Run(format, func(t *testing.T) {
			f := newStrategy(t, format, keys.ES256)
			r := requester(client("svc", ""), f.now)
			token, _, err := f.s.GenerateAccessToken(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			refresh, _, err := f.s.GenerateRefreshToken(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			code, _, err := f.s.GenerateAuthorizeCode(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.s.ValidateAccessToken(ctx, r, token); err != nil {
				t.Fatalf("fresh token: %v", err)
			}

			// The stored session says every token expired a minute ago.
			expired := r.Sanitize(nil).(*fosite.Request)
			expired.Session = r.GetSession().Clone()
			past := time.Now().Add(-time.Minute)
			for _, tt := range []fosite.TokenType{fosite.AccessToken, fosite.RefreshToken, fosite.AuthorizeCode} {
				expired.Session.SetExpiresAt(tt, past)
			}
			f.now = time.Now() // the strategy's clock agrees with fosite's wall clock for the opaque checks
			for name, err := range map[string]error{
				"access token":       f.s.ValidateAccessToken(ctx, expired, token),
				"refresh token":      f.s.ValidateRefreshToken(ctx, expired, refresh),
				"authorization code": f.s.ValidateAuthorizeCode(ctx, expired, code),
			} {
				if !errors.Is(err, fosite.ErrTokenExpired) {
					t.Errorf("%s with an expired session: error = %v, want ErrTokenExpired", name, err)
				}
			}
		})
	}

	t.Run("JWT expiry follows the injected clock", func(t *testing.T) {
		f := newStrategy(t, FormatJWT, keys.ES256)
		r := requester(client("svc", ""), f.now)
		token, _, err := f.s.GenerateAccessToken(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		f.now = f.now.Add(59 * time.Minute)
		if err := f.s.ValidateAccessToken(ctx, r, token); err != nil {
			t.Errorf("59 minutes in: %v", err)
		}
		f.now = f.now.Add(2 * time.Minute)
		if err := f.s.ValidateAccessToken(ctx, r, token); !errors.Is(err, fosite.ErrTokenExpired) {
			t.Errorf("61 minutes in: error = %v, want ErrTokenExpired", err)
		}
	})
}

func TestJWTSigningFailsCleanlyWithoutKey(t *testing.T) {
	f := newStrategy(t, FormatJWT, "PS512")
	_, _, err := f.s.GenerateAccessToken(context.Background(), requester(client("svc", ""), f.now))
	if err == nil {
		t.Fatal("signing with an algorithm that has no key succeeded")
	}
}

func TestJWTSigningIsSafeForConcurrentUse(t *testing.T) {
	ctx := context.Background()
	f := newStrategy(t, FormatJWT, keys.ES256)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			for j := range 8 {
				if i == 0 && j == 4 {
					f.keys.rotate(t, keys.ES256)
				}
				r := requester(client("svc", ""), f.now)
				token, _, err := f.s.GenerateAccessToken(ctx, r)
				if err == nil {
					err = f.s.ValidateAccessToken(ctx, r, token)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkGenerateAccessTokenOpaque(b *testing.B) {
	ctx := context.Background()
	f := newStrategy(b, FormatOpaque, keys.RS256)
	r := requester(client("svc", ""), f.now)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := f.s.GenerateAccessToken(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerateAccessTokenJWT(b *testing.B) {
	ctx := context.Background()
	for _, alg := range []string{keys.ES256, keys.RS256} {
		b.Run(alg, func(b *testing.B) {
			f := newStrategy(b, FormatJWT, alg)
			r := requester(client("svc", ""), f.now)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := f.s.GenerateAccessToken(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
