package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestDiscoveryAdvertisesOnlyWhatWorks(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	srv := env.startServer(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		code, hdr, body := get(t, srv.URL+path)
		if code != 200 || hdr.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s: %d, CORS %q", path, code, hdr.Get("Access-Control-Allow-Origin"))
		}
		m := mustJSON(t, body)
		if m["issuer"] != srv.URL {
			t.Errorf("issuer = %v", m["issuer"])
		}
		if g := fmt.Sprint(m["grant_types_supported"]); g != "[authorization_code refresh_token client_credentials password urn:ietf:params:oauth:grant-type:token-exchange "+deviceGrant+" implicit]" {
			t.Errorf("grant_types_supported = %v", g)
		}
		if g := fmt.Sprint(m["response_types_supported"]); g != "[code id_token]" {
			t.Errorf("response_types_supported = %v (no hybrid flow, no access token from the authorization endpoint)", g)
		}
		if g := fmt.Sprint(m["code_challenge_methods_supported"]); g != "[S256]" {
			t.Errorf("code_challenge_methods_supported = %v (plain must not be offered)", g)
		}
		for k, v := range m {
			if !strings.HasSuffix(k, "_endpoint") && k != "jwks_uri" {
				continue
			}
			// Every advertised endpoint is mounted: an empty POST gets an OAuth error or a document, never a 404.
			resp, err := http.Post(v.(string), "application/x-www-form-urlencoded", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 404 || resp.StatusCode >= 500 {
				t.Errorf("%s (%s) answered %d", k, v, resp.StatusCode)
			}
		}
	}

	code, hdr, body := get(t, srv.URL+"/.well-known/jwks.json")
	if code != 200 || !strings.Contains(hdr.Get("Cache-Control"), "max-age") || hdr.Get("ETag") == "" {
		t.Fatalf("jwks: %d %v", code, hdr)
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	var algs []string
	for _, k := range raw.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS key %v publishes private member %q", k["kid"], private)
			}
		}
		algs = append(algs, k["alg"].(string))
	}
	slices.Sort(algs)
	if !slices.Equal(algs, []string{"ES256", "RS256"}) {
		t.Errorf("JWKS algorithms = %v, want ES256 and RS256", algs)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/.well-known/jwks.json", nil)
	req.Header.Set("If-None-Match", hdr.Get("ETag"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional JWKS request: %v %v", resp.StatusCode, err)
	}

	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/nope": 404} {
		if code, _, _ := get(t, srv.URL+path); code != want {
			t.Errorf("GET %s = %d, want %d", path, code, want)
		}
	}
}
