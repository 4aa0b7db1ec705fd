package registration

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/models"
)

var fuzzPolicy = models.RegistrationPolicy{Pool: models.DefaultPool, Scopes: []string{"openid", "profile", "email"}}

// FuzzParseMetadata: whatever the body, parsing, mapping and validating a registration never panic, and every
// refusal is a 400 with one of RFC 7591's codes; what is accepted echoes back the same redirect URIs and name.
//
//	go test -run '^$' -fuzz FuzzParseMetadata -fuzztime 30s ./handlers/registration
func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{
		`{"client_name":"A","redirect_uris":["https://a.example/cb"]}`,
		`{"client_name":"A","redirect_uris":["com.example.app:/cb"],"token_endpoint_auth_method":"none","scope":"openid profile"}`,
		`{"client_name":"A","grant_types":["client_credentials"],"jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"1","y":"2","use":"enc"}]}}`,
		`{"redirect_uris":"x","client_name":7,"jwks":[],"jwks_uri":"https://x"}`,
		`{"client_name":null,"scope":null}`, `[]`, `null`, `{`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseMetadata(body)
		if err != nil {
			wantRefusal(t, err)
			return
		}
		c, err := m.client("id-1", fuzzPolicy)
		if err != nil {
			wantRefusal(t, err)
			return
		}
		if err := fuzzPolicy.Validate(c); err != nil {
			if e := validationError(err); e == nil {
				t.Fatalf("validation refused with %v, not a ValidationError", err)
			} else {
				wantRefusal(t, e)
			}
			return
		}
		echo := metadataOf(c)
		if echo.ClientName != m.ClientName || strings.Join(echo.RedirectURIs, " ") != strings.Join(m.RedirectURIs, " ") {
			t.Fatalf("echo %+v of %+v", echo, m)
		}
	})
}

func wantRefusal(t *testing.T, err error) {
	t.Helper()
	var e *jsonapi.Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest ||
		(e.Code != jsonapi.InvalidClientMetadata && e.Code != jsonapi.InvalidRedirectURI) || e.Description == "" {
		t.Fatalf("refusal %v, want 400 invalid_client_metadata or invalid_redirect_uri with a description", err)
	}
}
