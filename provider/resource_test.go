package provider

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/ory/fosite"
)

// A resource indicator is one more audience, once, on the token endpoint's body and the authorization
// endpoint's query alike.
func TestFoldResource(t *testing.T) {
	post := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"a"}, "resource": {"https://api.example"}}.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	foldResource(post)
	if got := post.PostForm.Get("audience"); got != "https://api.example" {
		t.Fatalf("resource indicator not folded into audience: %v", post.PostForm)
	}
	if got := fosite.GetAudiences(post.Form); !reflect.DeepEqual(got, []string{"https://api.example"}) {
		t.Fatalf("form audiences = %v", got)
	}

	// Restored after sign-in, a request carries its folded audiences already: folding again adds nothing.
	get := httptest.NewRequest(http.MethodGet, "/oauth2/auth?"+url.Values{
		"audience": {"https://a.example"}, "resource": {"https://a.example", "https://b.example"}}.Encode(), nil)
	foldResource(get)
	foldResource(get)
	if got := fosite.GetAudiences(get.Form); !reflect.DeepEqual(got, []string{"https://a.example", "https://b.example"}) {
		t.Fatalf("audiences = %v", got)
	}
}

func TestCheckResources(t *testing.T) {
	for _, tc := range []struct {
		resource string
		ok       bool
	}{
		{"https://api.example", true},
		{"https://api.example/v1?x=1", true},
		{"urn:example:api", true},
		{"api", false},
		{"/relative", false},
		{"https://api.example#frag", false},
		{"https://api.example/a b", false},
	} {
		err := checkResources(url.Values{"resource": {tc.resource}})
		if tc.ok != (err == nil) {
			t.Errorf("%q: err = %v, want ok=%v", tc.resource, err, tc.ok)
		}
		if err != nil && fosite.ErrorToRFC6749Error(err).ErrorField != "invalid_target" {
			t.Errorf("%q: error %v, want invalid_target", tc.resource, err)
		}
	}
}
