package e2e

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/models"
)

// Signed request objects (RFC 9101): by value at the authorization endpoint and pushed with PAR, verified with
// the client's registered keys; the object's parameters are the request, the outer ones are ignored.

// signObject signs claims as a request object with k (typ oauth-authz-req+jwt), as a client library does.
func signObject(t *testing.T, k assertionKey, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("oauth-authz-req+jwt").WithHeader("kid", k.kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// objectRequest is an authorization request of client to issuer as request object claims, with PKCE over
// verifier, live for five minutes.
func objectRequest(client, issuer, state, verifier string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": client, "aud": issuer, "client_id": client, "exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(),
		"response_type": "code", "redirect_uri": spaCallback, "scope": "openid profile", "state": state,
		"nonce": "object-nonce-123", "code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256",
	}
}

func authorizeURL(srv *server, params url.Values) string {
	return srv.URL + "/oauth2/auth?" + params.Encode()
}

func TestRequestObjects(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		key := newES256Key(t, "k1")
		e := newEdge(t, env, "--jwks", jwksFile(t, key))
		iss := e.srv.URL
		// strict requires signed request objects, ES256 only.
		env.cli(t, "clients", "create", "--id", "strict", "--name", "Strict SPA", "--public", "--grant-types", "authorization_code",
			"--redirect-uris", spaCallback, "--scopes", "openid profile", "--jwks", jwksFile(t, key),
			"--require-signed-request-object", "--request-object-signing-alg", "ES256")

		// signedIn walks a browser through the request at u (sign-in, consent) and exchanges the code.
		signedIn := func(t *testing.T, u, state, verifier string) map[string]any {
			t.Helper()
			q := callback(t, e.walk(newBrowser(t, spaCallback), u).page)
			if q.Get("state") != state || q.Get("code") == "" || q.Get("iss") != iss {
				t.Fatalf("callback query = %v, want the object's state %q", q, state)
			}
			tok, claims := e.exchange(t, e.scoped("openid", "profile"), q.Get("code"), verifier)
			if s, _ := tok.Extra("scope").(string); s != "openid profile" {
				t.Errorf("granted scope = %q, want the object's %q", s, "openid profile")
			}
			return claims
		}

		t.Run("by value, with PKCE", func(t *testing.T) {
			verifier, state := oauth2.GenerateVerifier(), randomString(t)
			obj := signObject(t, key, objectRequest("spa", iss, state, verifier))
			claims := signedIn(t, authorizeURL(e.srv, url.Values{"client_id": {"spa"}, "request": {obj}}), state, verifier)
			if claims["nonce"] != "object-nonce-123" {
				t.Errorf("ID token nonce = %v, want the object's", claims["nonce"])
			}
		})

		t.Run("outer parameters are ignored", func(t *testing.T) {
			verifier, state := oauth2.GenerateVerifier(), randomString(t)
			obj := signObject(t, key, objectRequest("spa", iss, state, verifier))
			signedIn(t, authorizeURL(e.srv, url.Values{"client_id": {"spa"}, "request": {obj},
				"redirect_uri": {"https://evil.example/cb"}, "scope": {"openid email roles"}, "state": {"outer-state-123"},
				"response_type": {"id_token"}, "prompt": {"none"}}), state, verifier)
		})

		t.Run("pushed with PAR", func(t *testing.T) {
			verifier, state := oauth2.GenerateVerifier(), randomString(t)
			obj := signObject(t, key, objectRequest("spa", iss, state, verifier))
			code, _, body := postForm(t, iss+"/oauth2/par", url.Values{"client_id": {"spa"}, "request": {obj}, "scope": {"email"}}, "", "")
			uri, _ := body["request_uri"].(string)
			if code != http.StatusCreated || uri == "" {
				t.Fatalf("PAR with a request object: %d %v", code, body)
			}
			signedIn(t, authorizeURL(e.srv, url.Values{"client_id": {"spa"}, "request_uri": {uri}, "state": {"outer-state-123"}}), state, verifier)
		})

		t.Run("a client requiring signed request objects", func(t *testing.T) {
			verifier, state := oauth2.GenerateVerifier(), randomString(t)
			plain := url.Values{"client_id": {"strict"}, "response_type": {"code"}, "redirect_uri": {spaCallback},
				"scope": {"openid"}, "state": {state}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
			resp, body := fetch(t, noRedirects(nil), http.MethodGet, authorizeURL(e.srv, plain), nil)
			if q := redirectedTo(t, resp, body, spaCallback+"?"); q.Get("error") != "invalid_request" || q.Get("code") != "" {
				t.Errorf("plain request of a client requiring objects: %v, want invalid_request", q)
			}
			if code, _, body := postForm(t, iss+"/oauth2/par", plain, "", ""); code != http.StatusBadRequest || body["error"] != "invalid_request" {
				t.Errorf("plain push of a client requiring objects: %d %v, want 400 invalid_request", code, body)
			}
			// Signed, it is served through sign-in and consent (the resumed request is not asked again).
			obj := signObject(t, key, objectRequest("strict", iss, state, verifier))
			q := callback(t, e.walk(newBrowser(t, spaCallback), authorizeURL(e.srv, url.Values{"client_id": {"strict"}, "request": {obj}})).page)
			if q.Get("state") != state || q.Get("code") == "" {
				t.Errorf("signed request of the strict client: %v", q)
			}
			code, _, pushed := postForm(t, iss+"/oauth2/par", url.Values{"client_id": {"strict"}, "request": {signObject(t, key, objectRequest("strict", iss, state, verifier))}}, "", "")
			uri, _ := pushed["request_uri"].(string)
			if code != http.StatusCreated {
				t.Fatalf("signed push of the strict client: %d %v", code, pushed)
			}
			q = callback(t, e.walk(newBrowser(t, spaCallback), authorizeURL(e.srv, url.Values{"client_id": {"strict"}, "request_uri": {uri}})).page)
			if q.Get("state") != state || q.Get("code") == "" {
				t.Errorf("pushed signed request of the strict client: %v", q)
			}
			// An object signed with another key is refused for it too.
			bad := signObject(t, newES256Key(t, "k1"), objectRequest("strict", iss, state, verifier))
			resp, body = fetch(t, noRedirects(nil), http.MethodGet, authorizeURL(e.srv, url.Values{"client_id": {"strict"}, "request": {bad}}), nil)
			isOurErrorPage(t, resp, body, http.StatusBadRequest)
		})

		// Objects that cannot be verified: nothing in them is trusted, so our page answers, never a redirect.
		t.Run("unverifiable objects get our page", func(t *testing.T) {
			verifier, state := oauth2.GenerateVerifier(), randomString(t)
			claims := objectRequest("spa", iss, state, verifier)
			payload, _ := json.Marshal(claims)
			b64 := base64.RawURLEncoding.EncodeToString
			hmacWithPublicKey := func() string {
				der, _ := x509.MarshalPKIXPublicKey(&key.key.(*ecdsa.PrivateKey).PublicKey)
				signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: der}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := jwt.Signed(signer).Claims(claims).Serialize()
				return raw
			}()
			padded := objectRequest("spa", iss, state, verifier)
			padded["pad"] = strings.Repeat("p", 10<<10) // over the 8 KiB bound, under the server's header limit
			for name, obj := range map[string]string{
				"signed with another key":   signObject(t, newES256Key(t, "k1"), claims),
				"alg none":                  b64([]byte(`{"alg":"none","typ":"oauth-authz-req+jwt"}`)) + "." + b64(payload) + ".",
				"HS256 with the public key": hmacWithPublicKey,
				"not a JWT":                 "not-a-jwt",
				"encrypted (five parts)":    "a.b.c.d.e",
				"over the size limit":       signObject(t, key, padded),
				"typ of another kind": func() string {
					signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: key.alg, Key: key.key}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
					raw, _ := jwt.Signed(signer).Claims(claims).Serialize()
					return raw
				}(),
			} {
				resp, body := fetch(t, noRedirects(nil), http.MethodGet, authorizeURL(e.srv, url.Values{"client_id": {"spa"}, "request": {obj}, "redirect_uri": {spaCallback}}), nil)
				if resp.StatusCode >= 500 {
					t.Errorf("%s: %d", name, resp.StatusCode)
				}
				isOurErrorPage(t, resp, body, http.StatusBadRequest)
				if name != "over the size limit" && !strings.Contains(body, "request") {
					t.Errorf("%s: the page does not say what is wrong:\n%s", name, body)
				}
				code, _, pushed := postForm(t, iss+"/oauth2/par", url.Values{"client_id": {"spa"}, "request": {obj}}, "", "")
				if code != http.StatusBadRequest || (pushed["error"] != "invalid_request_object" && pushed["error"] != "invalid_request") {
					t.Errorf("%s pushed: %d %v, want 400 invalid_request_object", name, code, pushed)
				}
			}
		})

		t.Run("a 40 KiB pushed object is refused", func(t *testing.T) {
			claims := objectRequest("spa", iss, "state-123456", oauth2.GenerateVerifier())
			claims["pad"] = strings.Repeat("p", 40<<10)
			code, _, pushed := postForm(t, iss+"/oauth2/par", url.Values{"client_id": {"spa"}, "request": {signObject(t, key, claims)}}, "", "")
			if code != http.StatusBadRequest || pushed["error"] != "invalid_request" {
				t.Errorf("40 KiB push: %d %v, want 400 invalid_request", code, pushed)
			}
		})

		// Objects the client signed that say the wrong thing: the error goes to the redirect URI they name.
		t.Run("verified objects with bad claims are invalid_request_object", func(t *testing.T) {
			verifier, state := oauth2.GenerateVerifier(), randomString(t)
			for name, change := range map[string]func(c map[string]any){
				"wrong aud":          func(c map[string]any) { c["aud"] = "https://other.example" },
				"expired":            func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() },
				"exp too far":        func(c map[string]any) { c["exp"] = time.Now().Add(2 * time.Hour).Unix() },
				"no exp":             func(c map[string]any) { delete(c, "exp") },
				"nbf in the future":  func(c map[string]any) { c["nbf"] = time.Now().Add(10 * time.Minute).Unix() },
				"iss mismatch":       func(c map[string]any) { c["iss"] = "strict" },
				"client_id mismatch": func(c map[string]any) { c["client_id"] = "strict" },
				"nested request_uri": func(c map[string]any) { c["request_uri"] = "https://evil.example/ro" },
			} {
				claims := objectRequest("spa", iss, state, verifier)
				change(claims)
				resp, body := fetch(t, noRedirects(nil), http.MethodGet, authorizeURL(e.srv, url.Values{"client_id": {"spa"}, "request": {signObject(t, key, claims)}}), nil)
				if name == "nested request_uri" {
					// Refused while its parameters are read: nothing in it is used.
					isOurErrorPage(t, resp, body, http.StatusBadRequest)
					continue
				}
				q := redirectedTo(t, resp, body, spaCallback+"?")
				if q.Get("error") != "invalid_request_object" || q.Get("state") != state || q.Get("code") != "" {
					t.Errorf("%s: %v, want invalid_request_object with the object's state", name, q)
				}
				code, _, pushed := postForm(t, iss+"/oauth2/par", url.Values{"client_id": {"spa"}, "request": {signObject(t, key, claims)}}, "", "")
				if code != http.StatusBadRequest || pushed["error"] != "invalid_request_object" {
					t.Errorf("%s pushed: %d %v, want 400 invalid_request_object", name, code, pushed)
				}
			}
		})

		t.Run("request_uri other than ours is refused", func(t *testing.T) {
			for _, uri := range []string{"https://evil.example/request.jwt", "urn:example:other"} {
				resp, body := fetch(t, noRedirects(nil), http.MethodGet, authorizeURL(e.srv, url.Values{"client_id": {"spa"}, "request_uri": {uri},
					"response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {spaCallback}}), nil)
				isOurErrorPage(t, resp, body, http.StatusBadRequest)
			}
		})

		t.Run("discovery and registration", func(t *testing.T) {
			_, _, raw := get(t, iss+"/.well-known/openid-configuration")
			m := mustJSON(t, raw)
			if m["request_parameter_supported"] != true || m["request_uri_parameter_supported"] != false || m["require_request_uri_registration"] != false {
				t.Errorf("request parameters: %v %v %v", m["request_parameter_supported"], m["request_uri_parameter_supported"], m["require_request_uri_registration"])
			}
			var algs []string
			for _, a := range m["request_object_signing_alg_values_supported"].([]any) {
				algs = append(algs, a.(string))
			}
			if !slices.Equal(algs, models.RequestObjectSigningAlgs) {
				t.Errorf("request_object_signing_alg_values_supported = %v, want %v", algs, models.RequestObjectSigningAlgs)
			}
			if _, stderr, code := env.cliCode(t, "", "clients", "create", "--name", "X", "--public", "--redirect-uris", spaCallback,
				"--require-signed-request-object"); code == 0 || !strings.Contains(stderr, "require-signed-request-object") {
				t.Errorf("requiring objects without keys: exit %d %s", code, stderr)
			}
			if _, stderr, code := env.cliCode(t, "", "clients", "update", "--id", "spa", "--request-object-signing-alg", "none"); code == 0 || !strings.Contains(stderr, "request-object-signing-alg") {
				t.Errorf("alg none: exit %d %s", code, stderr)
			}
		})
	})
}
