package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

// requestObjectFixture is a provider over SQLite with a client "jar" that has an ES256 key, and its signer.
type requestObjectFixture struct {
	*tokenAPIFixture
	signer jose.Signer
}

func newRequestObjectFixture(t testing.TB) *requestObjectFixture {
	t.Helper()
	f := newTokenAPIFixture(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}}})
	if err := f.store.CreateClient(context.Background(), &models.Client{ID: "jar", Public: true, GrantTypes: []string{"authorization_code"},
		ResponseTypes: []string{"code"}, RedirectURIs: []string{"https://app.example/cb"}, Scopes: []string{"openid", "profile"},
		JWKS: string(set)}); err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType(RequestObjectType).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	return &requestObjectFixture{tokenAPIFixture: f, signer: signer}
}

// claims is a code request of client jar with PKCE, live for five minutes on the fixture's clock.
func (f *requestObjectFixture) claims() map[string]any {
	return map[string]any{
		"iss": "jar", "aud": "https://issuer.example", "client_id": "jar", "exp": f.now.Add(5 * time.Minute).Unix(),
		"response_type": "code", "redirect_uri": "https://app.example/cb", "scope": "openid profile", "state": "state-123456",
		"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256",
	}
}

func (f *requestObjectFixture) sign(t testing.TB, claims any) string {
	t.Helper()
	raw, err := jwt.Signed(f.signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (f *requestObjectFixture) authorize(query url.Values) (fosite.AuthorizeRequester, error) {
	req, _ := http.NewRequest(http.MethodGet, "https://issuer.example"+PathAuthorize+"?"+query.Encode(), nil)
	return f.p.OAuth2.NewAuthorizeRequest(context.Background(), req)
}

func TestRequestObjectParameters(t *testing.T) {
	f := newRequestObjectFixture(t)
	c := f.claims()
	c["max_age"] = 300
	c["resource"] = []string{"https://api.example/a", "https://api.example/b"}
	c["claims"] = map[string]any{"id_token": map[string]any{"email": nil}}
	c["jti"] = "ignored"
	ar, err := f.authorize(url.Values{"client_id": {"jar"}, "request": {f.sign(t, c)}, "scope": {"profile"}, "login_hint": {"outer"}})
	if err != nil && !errorsIsTarget(err) {
		t.Fatalf("NewAuthorizeRequest = %s", errDetail(err))
	}
	form := ar.GetRequestForm()
	for k, want := range map[string]string{"max_age": "300", "claims": `{"id_token":{"email":null}}`, "scope": "openid profile",
		"state": "state-123456", "login_hint": "", "request": "", "jti": "", "iss": "", "client_id": "jar"} {
		if got := form.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := form["resource"]; len(got) != 2 {
		t.Errorf("resource = %v, want both", got)
	}
}

// errorsIsTarget: the resources the object names are not registered for the client, which fosite reports after
// it parsed everything (invalid_target); the parameters are what this test looks at.
func errorsIsTarget(err error) bool {
	return fosite.ErrorToRFC6749Error(err).ErrorField == ErrInvalidTarget.ErrorField
}

func TestRequestObjectClaimsChecks(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	base := func() map[string]any {
		return map[string]any{"iss": "c", "aud": []string{"https://other.example", "https://issuer.example"}, "client_id": "c",
			"exp": now.Add(time.Minute).Unix(), "nbf": now.Add(10 * time.Second).Unix()}
	}
	check := func(c map[string]any) error {
		b, _ := json.Marshal(c)
		_, err := requestObjectParams(b, "c", "https://issuer.example", now)
		return err
	}
	if err := check(base()); err != nil {
		t.Fatalf("good claims refused: %s", errDetail(err))
	}
	for name, change := range map[string]func(map[string]any){
		"exp at now":         func(c map[string]any) { c["exp"] = now.Unix() },
		"exp as a string":    func(c map[string]any) { c["exp"] = "soon" },
		"exp past an hour":   func(c map[string]any) { c["exp"] = now.Add(MaxRequestObjectLifetime + time.Second).Unix() },
		"nbf past the skew":  func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() },
		"aud missing":        func(c map[string]any) { delete(c, "aud") },
		"iss missing":        func(c map[string]any) { delete(c, "iss") },
		"client_id missing":  func(c map[string]any) { delete(c, "client_id") },
		"client_id a number": func(c map[string]any) { c["client_id"] = 7 },
		"nested request":     func(c map[string]any) { c["request"] = "x.y.z" },
		"array of numbers":   func(c map[string]any) { c["resource"] = []int{1} },
	} {
		c := base()
		change(c)
		if err := check(c); fosite.ErrorToRFC6749Error(err).ErrorField != "invalid_request_object" {
			t.Errorf("%s: %s, want invalid_request_object", name, errDetail(err))
		}
	}
}

// FuzzRequestObject feeds the parser hostile objects (testdata/fuzz/FuzzRequestObject holds the seeds): as the
// whole object, and as the payload of an object the client's key really signed. It never panics, and whatever it
// accepts names the client and carries no nested request.
func FuzzRequestObject(f *testing.F) {
	fx := newRequestObjectFixture(f)
	p := fx.p.OAuth2.(authorizationEndpoint).OAuth2Provider.(requestObjects)
	client, err := fx.store.GetClient(context.Background(), "jar")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"iss":"jar"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		_ = unverifiedClientID(string(data))
		if _, err := p.verify(ctx, string(data), client); err == nil {
			t.Fatalf("an unsigned input verified: %q", data)
		}
		jws, err := fx.signer.Sign(data)
		if err != nil {
			t.Fatal(err)
		}
		object, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		params, err := p.verify(ctx, object, client)
		if err == nil && (params.Has("request") || params.Has("request_uri") || params.Has("iss")) {
			t.Fatalf("accepted %q as %v", data, params)
		}
	})
}

// BenchmarkAuthorizeRequestObject is fosite's parsing of one authorization request over SQLite, sent as an ES256
// request object by value and, for comparison, as plain parameters: the cost of verifying the object (client row
// read once more, signature, claims) on top of the request itself.
func BenchmarkAuthorizeRequestObject(b *testing.B) {
	f := newRequestObjectFixture(b)
	object := f.sign(b, f.claims())
	plain := url.Values{}
	for k, v := range f.claims() {
		if s, ok := v.(string); ok && k != "iss" && k != "aud" {
			plain.Set(k, s)
		}
	}
	for _, c := range []struct {
		name  string
		query url.Values
	}{
		{"request object ES256", url.Values{"client_id": {"jar"}, "request": {object}}},
		{"plain parameters", plain},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				if _, err := f.authorize(c.query); err != nil {
					b.Fatal(errDetail(err))
				}
			}
		})
	}
}
