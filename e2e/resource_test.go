package e2e

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"golang.org/x/oauth2"
)

// RFC 8707 resource indicators in the authorization code flow and at refresh (issue 15, item 5): the resources
// an authorization asks for are granted with the code, a code exchange or refresh may narrow them, and a JWT
// access token's aud (and introspection) names exactly what was granted.

const (
	resourceA = "https://api-a.example.com"
	resourceB = "https://api-b.example.com"
)

// audOf is a JWT access token's or an introspection's aud as a list.
func audOf(t *testing.T, claims map[string]any) []string {
	t.Helper()
	switch a := claims["aud"].(type) {
	case string:
		return []string{a}
	case []any:
		out := make([]string, 0, len(a))
		for _, v := range a {
			out = append(out, v.(string))
		}
		return out
	default:
		t.Fatalf("aud = %#v", claims["aud"])
		return nil
	}
}

func TestResourceIndicatorsCodeFlow(t *testing.T) {
	forEachDB(t, func(t *testing.T, env testEnv) {
		rs := env.createClient(t, "--name", "resource-server")
		e := newEdge(t, env, "--access-token-format", "jwt", "--audience", resourceA+" "+resourceB)
		introspect := func(t *testing.T, token string) map[string]any {
			t.Helper()
			code, _, in := postForm(t, e.srv.URL+"/oauth2/introspect", url.Values{"token": {token}}, rs.ClientID, rs.ClientSecret)
			if code != http.StatusOK || in["active"] != true {
				t.Fatalf("introspect: %d %v", code, in)
			}
			return in
		}
		// authorize runs the browser part asking for these resources and returns the code and verifier.
		authorize := func(t *testing.T, resources ...string) (string, string) {
			t.Helper()
			b := newBrowser(t, spaCallback)
			verifier, state := oauth2.GenerateVerifier(), randomString(t)
			u := e.authURL(e.conf, state, verifier)
			if len(resources) > 0 {
				// RFC 8707 repeats the parameter; oauth2.SetAuthURLParam sets one value.
				parsed, _ := url.Parse(u)
				q := parsed.Query()
				q["resource"] = resources
				parsed.RawQuery = q.Encode()
				u = parsed.String()
			}
			q := callback(t, e.walk(b, u).page)
			if q.Get("code") == "" || q.Get("state") != state {
				t.Fatalf("callback query = %v", q)
			}
			return q.Get("code"), verifier
		}
		exchange := func(t *testing.T, code, verifier string, resources ...string) (int, map[string]any) {
			t.Helper()
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
				"redirect_uri": {spaCallback}}
			if len(resources) > 0 {
				form["resource"] = resources
			}
			return e.tokenCall(t, form)
		}
		mustToken := func(t *testing.T) func(int, map[string]any) (string, string) {
			return func(status int, body map[string]any) (string, string) {
				t.Helper()
				if status != http.StatusOK {
					t.Fatalf("token: %d %v", status, body)
				}
				at, _ := body["access_token"].(string)
				rt, _ := body["refresh_token"].(string)
				if at == "" || rt == "" {
					t.Fatalf("token answer without access and refresh tokens: %v", body)
				}
				return at, rt
			}
		}
		wantAud := func(t *testing.T, at string, want ...string) {
			t.Helper()
			if got := audOf(t, jwtPayload(t, at)); !reflect.DeepEqual(got, want) {
				t.Errorf("JWT aud = %v, want %v", got, want)
			}
			if got := audOf(t, introspect(t, at)); !reflect.DeepEqual(got, want) {
				t.Errorf("introspection aud = %v, want %v", got, want)
			}
		}
		refresh := func(t *testing.T, rt string, resources ...string) (int, map[string]any) {
			t.Helper()
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
			if len(resources) > 0 {
				form["resource"] = resources
			}
			return e.tokenCall(t, form)
		}

		t.Run("a resource asked for at authorization is the JWT's aud", func(t *testing.T) {
			code, verifier := authorize(t, resourceA)
			at, rt := mustToken(t)(exchange(t, code, verifier))
			wantAud(t, at, resourceA)
			at2, _ := mustToken(t)(refresh(t, rt))
			wantAud(t, at2, resourceA)
		})

		t.Run("two resources; the exchange narrows to one and a refresh may ask again for any authorized", func(t *testing.T) {
			code, verifier := authorize(t, resourceA, resourceB)
			at, rt := mustToken(t)(exchange(t, code, verifier, resourceB))
			wantAud(t, at, resourceB)
			at, rt = mustToken(t)(refresh(t, rt, resourceA))
			wantAud(t, at, resourceA)
			at, rt = mustToken(t)(refresh(t, rt))
			wantAud(t, at, resourceA, resourceB)
			status, body := refresh(t, rt, "https://elsewhere.example.com")
			if status != http.StatusBadRequest || body["error"] != "invalid_target" {
				t.Errorf("refresh asking for an unauthorized resource: %d %v, want 400 invalid_target", status, body)
			}
			// The refused refresh spent nothing: the token still refreshes.
			at, _ = mustToken(t)(refresh(t, rt, resourceB))
			wantAud(t, at, resourceB)
		})

		t.Run("a code exchange may not widen what was authorized", func(t *testing.T) {
			code, verifier := authorize(t, resourceA)
			status, body := exchange(t, code, verifier, resourceB)
			if status != http.StatusBadRequest || body["error"] != "invalid_target" {
				t.Fatalf("exchange asking for an unauthorized resource: %d %v, want 400 invalid_target", status, body)
			}
			// invalid_target spent nothing: the code still redeems.
			at, _ := mustToken(t)(exchange(t, code, verifier))
			wantAud(t, at, resourceA)
		})

		t.Run("an unregistered resource is invalid_target at the redirect URI", func(t *testing.T) {
			for _, res := range []string{"https://elsewhere.example.com", "not-a-uri", resourceA + "#frag"} {
				b := newBrowser(t, spaCallback)
				state := randomString(t)
				u, _ := url.Parse(e.authURL(e.conf, state, oauth2.GenerateVerifier()))
				q := u.Query()
				q.Add("resource", resourceA)
				q.Add("resource", res)
				u.RawQuery = q.Encode()
				got := callback(t, b.get(u.String()))
				if got.Get("error") != "invalid_target" || got.Get("state") != state || got.Get("code") != "" {
					t.Errorf("resource %q: callback query = %v, want error=invalid_target with the state", res, got)
				}
			}
		})

		t.Run("resources pushed with PAR are granted; an unregistered one is invalid_target", func(t *testing.T) {
			verifier, state := oauth2.GenerateVerifier(), randomString(t)
			params := url.Values{
				"response_type": {"code"}, "client_id": {"spa"}, "redirect_uri": {spaCallback}, "scope": {"openid offline_access"},
				"state": {state}, "nonce": {randomString(t)}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
				"code_challenge_method": {"S256"}, "resource": {resourceB},
			}
			bad := url.Values{}
			for k, v := range params {
				bad[k] = v
			}
			bad["resource"] = []string{resourceB, "https://elsewhere.example.com"}
			if status, _, body := postForm(t, e.srv.URL+"/oauth2/par", bad, "", ""); status != http.StatusBadRequest || body["error"] != "invalid_target" {
				t.Errorf("PAR with an unregistered resource: %d %v, want 400 invalid_target", status, body)
			}
			status, _, body := postForm(t, e.srv.URL+"/oauth2/par", params, "", "")
			requestURI, _ := body["request_uri"].(string)
			if status != http.StatusCreated || requestURI == "" {
				t.Fatalf("PAR: %d %v", status, body)
			}
			b := newBrowser(t, spaCallback)
			q := callback(t, e.walk(b, e.srv.URL+"/oauth2/auth?"+url.Values{"client_id": {"spa"}, "request_uri": {requestURI}}.Encode()).page)
			if q.Get("code") == "" || q.Get("state") != state {
				t.Fatalf("callback query = %v", q)
			}
			at, _ := mustToken(t)(exchange(t, q.Get("code"), verifier))
			wantAud(t, at, resourceB)
		})

		t.Run("no resource: aud is the issuer, as before", func(t *testing.T) {
			code, verifier := authorize(t)
			at, rt := mustToken(t)(exchange(t, code, verifier))
			if got := jwtPayload(t, at)["aud"]; got != e.srv.URL {
				t.Errorf("JWT aud = %v, want the issuer %s", got, e.srv.URL)
			}
			if aud, ok := introspect(t, at)["aud"]; ok {
				t.Errorf("introspection aud = %v, want none", aud)
			}
			status, body := refresh(t, rt, resourceA)
			if status != http.StatusBadRequest || body["error"] != "invalid_target" {
				t.Errorf("refresh asking for a resource never authorized: %d %v, want 400 invalid_target", status, body)
			}
		})
	})
}
