package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// writePublicJWK writes key's public half as a JWK file for `--encryption-jwk @file`.
func writePublicJWK(t *testing.T, pub any, kid string) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: pub, KeyID: kid, Use: "enc"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), kid+".jwk")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func decryptJWE(t *testing.T, token string, priv any) []byte {
	t.Helper()
	jwe, err := jose.ParseEncrypted(token,
		[]jose.KeyAlgorithm{jose.RSA_OAEP_256, jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatalf("not a JWE: %v", err)
	}
	plain, err := jwe.Decrypt(priv)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	return plain
}

func TestEncryptedTokens(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		clientKey, _ := rsa.GenerateKey(rand.Reader, 2048)
		rsKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		clientJWK := writePublicJWK(t, &clientKey.PublicKey, "client-enc")
		rsJWK := writePublicJWK(t, &rsKey.PublicKey, "rs-enc")

		// An OIDC client with encrypted ID tokens and userinfo.
		f := newOIDCFixture(t, env, "--encryption-jwk", "@"+clientJWK,
			"--id-token-encrypted-response-alg", "RSA-OAEP-256", "--userinfo-encrypted-response-alg", "RSA-OAEP-256")
		ctx := context.Background()
		b := newBrowser(t, spaCallback)
		verifier, nonce := oauth2.GenerateVerifier(), randomString(t)
		cb := f.signIn(t, b, verifier, "state-123456", nonce)
		tok, err := f.conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		if strings.Count(rawID, ".") != 4 {
			t.Fatalf("ID token is not a JWE: %q", rawID)
		}
		inner := decryptJWE(t, rawID, clientKey)
		idt, err := f.verifier.Verify(ctx, string(inner))
		if err != nil {
			t.Fatalf("decrypted ID token does not verify: %v", err)
		}
		if idt.Nonce != nonce {
			t.Errorf("nonce = %q", idt.Nonce)
		}

		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/jwt" {
			t.Fatalf("userinfo: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var claims map[string]any
		if err := json.Unmarshal(decryptJWE(t, string(body), clientKey), &claims); err != nil || claims["email"] != "ada@example.com" {
			t.Fatalf("decrypted userinfo = %v (%v)", claims, err)
		}

		// A service whose JWT access tokens are encrypted to its resource server.
		svc := env.createClient(t, "--name", "svc", "--scopes", "read", "--access-token-format", "jwt",
			"--access-token-encryption-jwk", "@"+rsJWK, "--access-token-encryption-alg", "ECDH-ES")
		rs := env.createClient(t, "--name", "rs")
		cc := clientcredentials.Config{ClientID: svc.ClientID, ClientSecret: svc.ClientSecret, TokenURL: f.srv.URL + "/oauth2/token", Scopes: []string{"read"}}
		at, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(at.AccessToken, ".") != 4 {
			t.Fatalf("access token is not a JWE: %q", at.AccessToken)
		}
		_, claimsJWT := verifyJWT(t, jwksKeys(t, f.srv.URL), string(decryptJWE(t, at.AccessToken, rsKey)))
		if claimsJWT["client_id"] != svc.ClientID {
			t.Errorf("inner JWT claims = %v", claimsJWT)
		}
		if _, _, in := postForm(t, f.srv.URL+"/oauth2/introspect", url.Values{"token": {at.AccessToken}}, rs.ClientID, rs.ClientSecret); in["active"] != true {
			t.Fatalf("introspection of an encrypted access token: %v", in)
		}
		tampered := at.AccessToken[:len(at.AccessToken)-2] + "xx"
		if _, _, in := postForm(t, f.srv.URL+"/oauth2/introspect", url.Values{"token": {tampered}}, rs.ClientID, rs.ClientSecret); in["active"] != false {
			t.Fatalf("tampered JWE introspects as %v", in)
		}

		// Registration refuses keys that cannot work.
		priv := filepath.Join(t.TempDir(), "private.jwk")
		pb, _ := json.Marshal(jose.JSONWebKey{Key: clientKey, KeyID: "oops"})
		_ = os.WriteFile(priv, pb, 0o600)
		for _, args := range [][]string{
			{"--encryption-jwk", "@" + priv, "--id-token-encrypted-response-alg", "RSA-OAEP-256"},
			{"--encryption-jwk", "@" + rsJWK, "--id-token-encrypted-response-alg", "RSA-OAEP-256"},
			{"--id-token-encrypted-response-alg", "RSA-OAEP-256"},
			{"--encryption-jwk", "@" + clientJWK, "--id-token-encrypted-response-alg", "RSA1_5"},
		} {
			_, errOut, code := env.cliCode(t, "", append([]string{"clients", "create", "--name", "bad"}, args...)...)
			if code != 1 || !strings.Contains(errOut, "--id-token-encrypted-response-alg") {
				t.Errorf("clients create %v: exit %d, %q", args, code, errOut)
			}
		}
	})
}
