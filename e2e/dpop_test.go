package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// A DPoP client (RFC 9449) as a client library would be: a key pair, and a fresh proof per request built with
// go-jose.

func publicOf(k assertionKey) any {
	switch key := k.key.(type) {
	case *ecdsa.PrivateKey:
		return &key.PublicKey
	case *rsa.PrivateKey:
		return &key.PublicKey
	}
	return nil
}

// dpopProof signs a proof for method and target; ath for accessToken when it is not "", nonce when not "".
func dpopProof(t testing.TB, k assertionKey, method, target, accessToken, nonce string) string {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	claims := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(b), "htm": method, "htu": target, "iat": time.Now().Unix()}
	if accessToken != "" {
		claims["ath"] = b64SHA256(accessToken)
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	opts := (&jose.SignerOptions{}).WithType("dpop+jwt").WithHeader("jwk", jose.JSONWebKey{Key: publicOf(k)})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(claims)
	jws, err := signer.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func b64SHA256(s string) string {
	h := crypto.SHA256.New()
	h.Write([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func jktOf(t testing.TB, k assertionKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: publicOf(k)}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// dpopToken posts a token request with proof (none when ""), authenticated by HTTP Basic when user is set.
func dpopToken(t *testing.T, endpoint string, form url.Values, user, pass, proof string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return do(t, req)
}

// resourceCall calls a resource with the token under scheme, and the proof when not "".
func resourceCall(t *testing.T, method, endpoint, scheme, token, proof string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, endpoint, nil)
	req.Header.Set("Authorization", scheme+" "+token)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return do(t, req)
}

func wantDPoPRefusal(t *testing.T, what string, code int, h http.Header, body map[string]any, status int, errCode string) {
	t.Helper()
	if code != status || body["error"] != errCode {
		t.Fatalf("%s: %d %v, want %d %s", what, code, body, status, errCode)
	}
	if status == http.StatusUnauthorized {
		if wa := h.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "DPoP ") || !strings.Contains(wa, `error="`+errCode+`"`) || !strings.Contains(wa, "algs=") {
			t.Fatalf("%s: WWW-Authenticate %q", what, wa)
		}
	}
}

func TestDPoPClientCredentials(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		admin := env.createClient(t, "--name", "backend", "--admin", "--grant-types", "client_credentials", "--access-token-format", "jwt")
		bound := env.createClient(t, "--name", "bound", "--grant-types", "client_credentials", "--scopes", "read", "--dpop-bound-access-tokens")
		srv := env.startServer(t)
		tokenURL, adminURL := srv.URL+"/oauth2/token", srv.URL+"/api/v1/admin/users"
		key, other := newAssertionKey(t, "ES256"), newAssertionKey(t, "ES256")
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"latchkey.admin"}}

		proof := dpopProof(t, key, "POST", tokenURL, "", "")
		code, _, body := dpopToken(t, tokenURL, form, admin.ClientID, admin.ClientSecret, proof)
		if code != http.StatusOK || body["token_type"] != "DPoP" {
			t.Fatalf("token with a proof: %d %v", code, body)
		}
		at := body["access_token"].(string)
		cnf, _ := jwtPayload(t, at)["cnf"].(map[string]any)
		if cnf["jkt"] != jktOf(t, key) {
			t.Fatalf("JWT cnf = %v, want jkt %s", cnf, jktOf(t, key))
		}
		code, _, intro := postForm(t, srv.URL+"/oauth2/introspect", url.Values{"token": {at}}, admin.ClientID, admin.ClientSecret)
		if icnf, _ := intro["cnf"].(map[string]any); code != http.StatusOK || intro["token_type"] != "DPoP" || icnf["jkt"] != jktOf(t, key) {
			t.Fatalf("introspection: %d %v", code, intro)
		}

		// The same proof again: refused, whichever node; 40 at once: one wins.
		code, _, body = dpopToken(t, tokenURL, form, admin.ClientID, admin.ClientSecret, proof)
		wantDPoPRefusal(t, "replayed proof", code, nil, body, http.StatusBadRequest, "invalid_dpop_proof")
		race := dpopProof(t, key, "POST", tokenURL, "", "")
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
		)
		for range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(admin.ClientID, admin.ClientSecret)
				req.Header.Set("DPoP", race)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				switch resp.StatusCode {
				case http.StatusOK:
					wins++
				case http.StatusBadRequest:
				default:
					t.Errorf("racing proof: status %d", resp.StatusCode)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("40 requests with one proof: %d succeeded, want 1", wins)
		}

		// At a resource (the admin API): with a proof by the key, yes; each way around it, no.
		code, _, body = resourceCall(t, "GET", adminURL, "DPoP", at, dpopProof(t, key, "GET", adminURL, at, ""))
		if code != http.StatusOK {
			t.Fatalf("admin API with DPoP: %d %v", code, body)
		}
		code, h, body := resourceCall(t, "GET", adminURL, "Bearer", at, "")
		wantDPoPRefusal(t, "bound token as Bearer", code, h, body, http.StatusUnauthorized, "invalid_token")
		code, h, body = resourceCall(t, "GET", adminURL, "DPoP", at, dpopProof(t, other, "GET", adminURL, at, ""))
		wantDPoPRefusal(t, "proof by another key", code, h, body, http.StatusUnauthorized, "invalid_token")
		code, h, body = resourceCall(t, "GET", adminURL, "DPoP", at, dpopProof(t, key, "GET", adminURL, "", ""))
		wantDPoPRefusal(t, "proof without ath", code, h, body, http.StatusUnauthorized, "invalid_dpop_proof")
		code, h, body = resourceCall(t, "GET", adminURL, "DPoP", at, dpopProof(t, key, "POST", adminURL, at, ""))
		wantDPoPRefusal(t, "proof for another method", code, h, body, http.StatusUnauthorized, "invalid_dpop_proof")
		code, h, body = resourceCall(t, "GET", adminURL, "DPoP", at, "")
		wantDPoPRefusal(t, "DPoP scheme without a proof", code, h, body, http.StatusUnauthorized, "invalid_dpop_proof")

		// A bearer token is not presented as DPoP.
		code, _, body = postForm(t, tokenURL, form, admin.ClientID, admin.ClientSecret)
		if code != http.StatusOK || !strings.EqualFold(body["token_type"].(string), "bearer") {
			t.Fatalf("token without a proof: %d %v", code, body)
		}
		plain := body["access_token"].(string)
		code, h, body = resourceCall(t, "GET", adminURL, "DPoP", plain, dpopProof(t, key, "GET", adminURL, plain, ""))
		wantDPoPRefusal(t, "bearer token as DPoP", code, h, body, http.StatusUnauthorized, "invalid_token")
		if code, _, body = resourceCall(t, "GET", adminURL, "Bearer", plain, ""); code != http.StatusOK {
			t.Fatalf("bearer token as Bearer: %d %v", code, body)
		}

		// A malformed proof, and a client registered for DPoP that sends none.
		code, _, body = dpopToken(t, tokenURL, form, admin.ClientID, admin.ClientSecret, "not.a.proof")
		wantDPoPRefusal(t, "malformed proof", code, nil, body, http.StatusBadRequest, "invalid_dpop_proof")
		code, _, body = postForm(t, tokenURL, url.Values{"grant_type": {"client_credentials"}}, bound.ClientID, bound.ClientSecret)
		wantDPoPRefusal(t, "bound client without a proof", code, nil, body, http.StatusBadRequest, "invalid_dpop_proof")
		code, _, body = dpopToken(t, tokenURL, url.Values{"grant_type": {"client_credentials"}}, bound.ClientID, bound.ClientSecret, dpopProof(t, key, "POST", tokenURL, "", ""))
		if code != http.StatusOK || body["token_type"] != "DPoP" {
			t.Fatalf("bound client with a proof: %d %v", code, body)
		}
	})
}

func TestDPoPNonceRoundTrip(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env["LATCHKEY_DPOP_NONCE"] = "true"
		admin := env.createClient(t, "--name", "backend", "--admin", "--grant-types", "client_credentials")
		srv := env.startServer(t)
		tokenURL, adminURL := srv.URL+"/oauth2/token", srv.URL+"/api/v1/admin/users"
		key := newAssertionKey(t, "ES256")
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"latchkey.admin"}}

		code, h, body := dpopToken(t, tokenURL, form, admin.ClientID, admin.ClientSecret, dpopProof(t, key, "POST", tokenURL, "", ""))
		nonce := h.Get("DPoP-Nonce")
		if code != http.StatusBadRequest || body["error"] != "use_dpop_nonce" || nonce == "" {
			t.Fatalf("proof without a nonce: %d %v nonce %q", code, body, nonce)
		}
		code, h, body = dpopToken(t, tokenURL, form, admin.ClientID, admin.ClientSecret, dpopProof(t, key, "POST", tokenURL, "", nonce))
		if code != http.StatusOK || body["token_type"] != "DPoP" || h.Get("DPoP-Nonce") == "" {
			t.Fatalf("retry with the nonce: %d %v", code, body)
		}
		at := body["access_token"].(string)
		code, h, body = resourceCall(t, "GET", adminURL, "DPoP", at, dpopProof(t, key, "GET", adminURL, at, ""))
		wantDPoPRefusal(t, "resource proof without a nonce", code, h, body, http.StatusUnauthorized, "use_dpop_nonce")
		if h.Get("DPoP-Nonce") == "" {
			t.Fatal("use_dpop_nonce at a resource without a DPoP-Nonce")
		}
		if code, _, body = resourceCall(t, "GET", adminURL, "DPoP", at, dpopProof(t, key, "GET", adminURL, at, h.Get("DPoP-Nonce"))); code != http.StatusOK {
			t.Fatalf("resource retry with the nonce: %d %v", code, body)
		}
	})
}

func TestDPoPPublicClientCodeFlowAndRefresh(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		f := newOIDCFixture(t, env)
		tokenURL, userinfoURL := f.srv.URL+"/oauth2/token", f.srv.URL+"/userinfo"
		key, other := newAssertionKey(t, "ES256"), newAssertionKey(t, "PS256")
		verifier := oauth2.GenerateVerifier()
		cb := f.signIn(t, newBrowser(t, spaCallback), verifier, randomString(t), randomString(t))
		form := url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")}, "client_id": {"spa"},
			"redirect_uri": {spaCallback}, "code_verifier": {verifier}}
		code, _, body := dpopToken(t, tokenURL, form, "", "", dpopProof(t, key, "POST", tokenURL, "", ""))
		if code != http.StatusOK || body["token_type"] != "DPoP" || body["refresh_token"] == nil {
			t.Fatalf("code exchange with a proof: %d %v", code, body)
		}
		at, rt := body["access_token"].(string), body["refresh_token"].(string)

		if code, _, body = resourceCall(t, "GET", userinfoURL, "DPoP", at, dpopProof(t, key, "GET", userinfoURL, at, "")); code != http.StatusOK || body["sub"] == nil {
			t.Fatalf("userinfo with DPoP: %d %v", code, body)
		}
		code, h, body := resourceCall(t, "GET", userinfoURL, "DPoP", at, dpopProof(t, other, "GET", userinfoURL, at, ""))
		wantDPoPRefusal(t, "userinfo, another key", code, h, body, http.StatusUnauthorized, "invalid_token")
		code, h, body = resourceCall(t, "GET", userinfoURL, "Bearer", at, "")
		wantDPoPRefusal(t, "userinfo, downgraded to Bearer", code, h, body, http.StatusUnauthorized, "invalid_token")
		// Nor in the form (RFC 6750 §2.2), which has no proof.
		req, _ := http.NewRequest(http.MethodPost, userinfoURL, strings.NewReader(url.Values{"access_token": {at}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if code, _, body = do(t, req); code != http.StatusUnauthorized {
			t.Fatalf("userinfo, token in the form: %d %v", code, body)
		}

		// The public client's refresh token is bound to the key: another key, or none, is refused, and spends nothing.
		refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"spa"}}
		code, _, body = dpopToken(t, tokenURL, refresh, "", "", dpopProof(t, other, "POST", tokenURL, "", ""))
		wantDPoPRefusal(t, "refresh with another key", code, nil, body, http.StatusBadRequest, "invalid_grant")
		code, _, body = dpopToken(t, tokenURL, refresh, "", "", "")
		wantDPoPRefusal(t, "refresh without a proof", code, nil, body, http.StatusBadRequest, "invalid_grant")
		code, _, body = dpopToken(t, tokenURL, refresh, "", "", dpopProof(t, key, "POST", tokenURL, "", ""))
		if code != http.StatusOK || body["token_type"] != "DPoP" {
			t.Fatalf("refresh with the key: %d %v", code, body)
		}
		at2 := body["access_token"].(string)
		if code, _, body = resourceCall(t, "GET", userinfoURL, "DPoP", at2, dpopProof(t, key, "GET", userinfoURL, at2, "")); code != http.StatusOK {
			t.Fatalf("userinfo with the refreshed token: %d %v", code, body)
		}
	})
}

func TestDPoPTokenAPI(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		key := newAssertionKey(t, "ES256")
		signup, login, me, refresh := srv.URL+"/api/v1/auth/signup", srv.URL+"/api/v1/auth/login", srv.URL+"/api/v1/auth/me", srv.URL+"/api/v1/auth/refresh"
		creds := map[string]any{"client_id": clientID, "email": "dora@example.com", "password": "a long enough passphrase 1", "scope": "openid offline_access"}
		if code, _, body := apiCall(t, "POST", signup, creds, nil); code != http.StatusCreated {
			t.Fatalf("signup: %d %v", code, body)
		}
		code, _, body := apiCall(t, "POST", login, creds, map[string]string{"DPoP": "garbage"})
		wantDPoPRefusal(t, "login with a bad proof", code, nil, body, http.StatusBadRequest, "invalid_dpop_proof")
		code, _, body = apiCall(t, "POST", login, creds, map[string]string{"DPoP": dpopProof(t, key, "POST", login, "", "")})
		if code != http.StatusOK || body["token_type"] != "DPoP" {
			t.Fatalf("login with a proof: %d %v", code, body)
		}
		at, rt := body["access_token"].(string), body["refresh_token"].(string)
		if code, _, body = resourceCall(t, "GET", me, "DPoP", at, dpopProof(t, key, "GET", me, at, "")); code != http.StatusOK {
			t.Fatalf("me with DPoP: %d %v", code, body)
		}
		code, h, body := resourceCall(t, "GET", me, "Bearer", at, "")
		wantDPoPRefusal(t, "me as Bearer", code, h, body, http.StatusUnauthorized, "invalid_token")
		code, _, body = apiCall(t, "POST", refresh, map[string]any{"refresh_token": rt}, map[string]string{"DPoP": dpopProof(t, key, "POST", refresh, "", "")})
		if code != http.StatusOK || body["token_type"] != "DPoP" {
			t.Fatalf("refresh with a proof: %d %v", code, body)
		}
		at = body["access_token"].(string)
		if code, _, body = resourceCall(t, "GET", me, "DPoP", at, dpopProof(t, key, "GET", me, at, "")); code != http.StatusOK {
			t.Fatalf("me with the refreshed DPoP token: %d %v", code, body)
		}
	})
}

// dpopBoundClientCredentials (discovery walk): a client_credentials token bound by a proof signed with alg, its
// JWT carrying the key's thumbprint.
func (w *discoveryWalker) dpopBoundClientCredentials(t *testing.T, alg string) {
	k := newAssertionKey(t, alg)
	if k.key == nil {
		t.Fatalf("no key type for DPoP alg %s", alg)
	}
	tokenURL := w.srv.URL + "/oauth2/token"
	code, _, body := dpopToken(t, tokenURL, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}},
		w.basic.ClientID, w.basic.ClientSecret, dpopProof(t, k, "POST", tokenURL, "", ""))
	if code != http.StatusOK || body["token_type"] != "DPoP" {
		t.Fatalf("DPoP %s: %d %v", alg, code, body)
	}
	if cnf, _ := jwtPayload(t, body["access_token"].(string))["cnf"].(map[string]any); cnf["jkt"] != jktOf(t, k) {
		t.Fatalf("DPoP %s: cnf %v", alg, cnf)
	}
}
