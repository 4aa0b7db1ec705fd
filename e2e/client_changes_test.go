package e2e

// Holes a hostile review of client authentication, JAR, jwks_uri and registration found (issue 15), each kept
// closed by the test that first showed it open.

import (
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// A pushed authorization request is the authenticated client's (RFC 9126 §2: the AS authenticates the client and
// the pushed parameters are that client's). fosite v0.49.0 authenticates the client from HTTP Basic but then
// loads the request's client from the form's client_id without comparing the two, and requestObjects passes a
// plain push straight to it: client B, with its own secret, pushes a request stored as client A's.
func TestPARRequestIsTheAuthenticatedClients(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		victim := env.createClient(t, "--name", "Victim", "--grant-types", "authorization_code",
			"--redirect-uris", spaCallback, "--scopes", "openid")
		attacker := env.createClient(t, "--name", "Attacker", "--grant-types", "authorization_code",
			"--redirect-uris", "https://attacker.example/cb", "--scopes", "openid")
		srv := env.startServer(t)
		params := url.Values{
			"response_type": {"code"}, "client_id": {victim.ClientID}, "redirect_uri": {spaCallback}, "scope": {"openid"},
			"state": {randomString(t)}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())},
			"code_challenge_method": {"S256"},
		}
		code, _, body := postForm(t, srv.URL+"/oauth2/par", params, attacker.ClientID, attacker.ClientSecret)
		if code == http.StatusCreated {
			t.Errorf("client %s authenticated and pushed a request for client %s: %d %v; want 400/401 (the pushing client must be the request's client)",
				attacker.ClientID, victim.ClientID, code, body)
		}
	})
}

// A client_secret_jwt client's jwks_uri (kept: request objects are verified with it) escapes the jwks_uri rule
// (models.checkJWKSURI: https, no credentials, no fragment, bounded length): validateJWKS returns before it for
// client_secret_jwt, and validateSecretJWT checks only jwks. A stranger registers any string as jwks_uri.
func TestJWKSURIIsValidatedWhateverTheMethod(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv := env.startServer(t)
		for _, bad := range []string{
			"http://169.254.169.254/latest/meta-data/#x",
			"gopher://user:pw@internal.example:70/_x",
			"not a url at all",
		} {
			md := map[string]any{
				"client_name": "x", "redirect_uris": []string{spaCallback}, "grant_types": []string{"authorization_code"},
				"scope": "openid", "token_endpoint_auth_method": "client_secret_jwt", "jwks_uri": bad,
			}
			code, _, body := regCall(t, "POST", srv.URL+"/oauth2/register", registrationToken(t, env), md)
			if code != http.StatusBadRequest || body["error"] != "invalid_client_metadata" {
				t.Errorf("client_secret_jwt with jwks_uri %q: %d (jwks_uri stored as %v); want 400 invalid_client_metadata", bad, code, body["jwks_uri"])
			}
		}
	})
}

// A client that moves from a secret to private_key_jwt (RFC 7592 PUT) keeps its secret hash, and the other
// node's client cache confirms a cached client by its secret hash alone (models.ClientCheck.confirm): for up to
// clientCacheTTL the retired secret still authenticates there, although the client now authenticates only with
// its keys.
func TestSecretStopsOnEveryNodeWhenAClientMovesToKeys(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		nodeA, nodeB := env.startServer(t), env.startServer(t)
		md := map[string]any{"client_name": "Backend", "grant_types": []string{"client_credentials"}, "scope": "profile"}
		code, _, reg := regCall(t, "POST", nodeB.URL+"/oauth2/register", registrationToken(t, env), md)
		if code != http.StatusCreated {
			t.Fatalf("register: %d %v", code, reg)
		}
		id, _ := reg["client_id"].(string)
		secret, _ := reg["client_secret"].(string)
		regToken, _ := reg["registration_access_token"].(string)
		cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}}
		if code, _, body := postForm(t, nodeA.URL+"/oauth2/token", cc, id, secret); code != http.StatusOK {
			t.Fatalf("client_credentials with the secret on node A: %d %v", code, body)
		}

		key := newES256Key(t, "k1")
		pub := jose.JSONWebKey{Key: &key.key.(*ecdsa.PrivateKey).PublicKey, KeyID: "k1", Use: "sig"}
		rawKey, _ := json.Marshal(pub)
		md["client_id"] = id
		md["token_endpoint_auth_method"] = "private_key_jwt"
		md["jwks"] = map[string]any{"keys": []json.RawMessage{rawKey}}
		if code, _, body := regCall(t, "PUT", nodeB.URL+"/oauth2/register/"+id, regToken, md); code != http.StatusOK {
			t.Fatalf("switch to private_key_jwt on node B: %d %v", code, body)
		}
		if code, _, body := postForm(t, nodeB.URL+"/oauth2/token", cc, id, secret); code != http.StatusUnauthorized {
			t.Errorf("the retired secret on node B: %d %v; want 401", code, body)
		}
		if code, _, body := postForm(t, nodeA.URL+"/oauth2/token", cc, id, secret); code != http.StatusUnauthorized {
			t.Errorf("the retired secret on node A (client cached as client_secret_basic): %d %v; want 401", code, body)
		}
	})
}
