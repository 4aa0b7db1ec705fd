package models_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/models"
)

func publicJWK(t *testing.T, k jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jwks(t *testing.T, keys ...jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// validClient is a client every rule accepts: confidential, authorization code with refresh, encrypted ID
// tokens, userinfo and JWT access tokens.
func validClient(rsaPub, ecPub string) models.Client {
	return models.Client{
		ID: "app", Name: "App", SecretHash: "h",
		RedirectURIs: []string{"https://app.example/cb", "com.example.app:/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, Scopes: []string{"openid", "profile"}, AccessTokenFormat: "jwt",
		TokenEndpointAuthMethod: models.AuthMethodClientSecretPost, PostLogoutRedirectURIs: []string{"https://app.example/bye"},
		AllowedOrigins: []string{"https://app.example"}, Pool: "default",
		EncryptionJWK: rsaPub, IDTokenEncryptedResponseAlg: "RSA-OAEP-256", UserinfoEncryptedResponseAlg: "RSA-OAEP",
		UserinfoEncryptedResponseEnc: "A128CBC-HS256",
		AccessTokenEncryptionJWK:     ecPub, AccessTokenEncryptionAlg: "ECDH-ES+A256KW",
	}
}

// TestClientRules holds every client rule once: each case breaks one and must be refused naming the field at
// fault (as the client's JSON names it), with a reason mentioning what is wrong.
func TestClientRules(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub := publicJWK(t, jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "rp", Use: "enc"})
	ecPub := publicJWK(t, jose.JSONWebKey{Key: &ek.PublicKey, KeyID: "rs"})

	good := validClient(rsaPub, ecPub)
	if err := good.ValidateRegistration(); err != nil {
		t.Fatalf("the valid client is refused: %v", err)
	}

	for _, tc := range []struct {
		name         string
		change       func(c *models.Client)
		registration bool   // the rule is ValidateRegistration's only; Validate (the store's) accepts it
		field        string // the field the error names
		mention      string // and what the reason says
	}{
		{"empty id", func(c *models.Client) { c.ID = "" }, false, "id", "empty"},
		{"id with a colon", func(c *models.Client) { c.ID = "a:b" }, false, "id", "colons"},
		{"id with a space", func(c *models.Client) { c.ID = "a b" }, false, "id", "spaces"},
		{"id over 255 characters", func(c *models.Client) { c.ID = strings.Repeat("x", 256) }, false, "id", "255"},
		{"no name", func(c *models.Client) { c.Name = " " }, true, "name", "required"},
		{"authorization_code without redirect URIs", func(c *models.Client) { c.RedirectURIs = nil }, true, "redirect_uris", "authorization_code"},
		{"relative redirect URI", func(c *models.Client) { c.RedirectURIs = []string{"/cb"} }, false, "redirect_uris", `"/cb"`},
		{"redirect URI with a fragment", func(c *models.Client) { c.RedirectURIs = []string{"https://a.example/cb#x"} }, false, "redirect_uris", "fragment"},
		{"http redirect URI without a host", func(c *models.Client) { c.RedirectURIs = []string{"https:///cb"} }, false, "redirect_uris", "absolute"},
		{"unknown grant type", func(c *models.Client) { c.GrantTypes = []string{"urn:example:magic"} }, false, "grant_types", `"urn:example:magic"`},
		{"password grant on a client that is not first-party", func(c *models.Client) { c.GrantTypes = []string{"password"} }, false, "grant_types", `"password" is only for first-party apps`},
		{"implicit response type", func(c *models.Client) { c.ResponseTypes = []string{"token"} }, false, "response_types", `"token"`},
		{"id_token response type without the implicit grant", func(c *models.Client) { c.ResponseTypes = []string{"code", "id_token"} }, false, "grant_types", "needs the implicit grant"},
		{"implicit grant without the id_token response type", func(c *models.Client) { c.GrantTypes = append(c.GrantTypes, "implicit") }, false, "response_types", "needs the id_token response type"},
		{"id_token with an access token is not a response type", func(c *models.Client) {
			c.GrantTypes, c.ResponseTypes = append(c.GrantTypes, "implicit"), []string{"code", "id_token", "id_token token"}
		}, false, "response_types", `"id_token token"`},
		{"implicit without redirect URIs", func(c *models.Client) {
			c.GrantTypes, c.ResponseTypes, c.RedirectURIs = []string{"implicit"}, []string{"id_token"}, nil
		}, true, "redirect_uris", "implicit grant"},
		{"implicit to a plain http redirect URI", func(c *models.Client) {
			c.GrantTypes, c.ResponseTypes = append(c.GrantTypes, "implicit"), []string{"code", "id_token"}
			c.RedirectURIs = []string{"http://app.example/cb"}
		}, false, "redirect_uris", "https, or http on localhost"},
		{"scope with a quote", func(c *models.Client) { c.Scopes = []string{`"write"`} }, false, "scopes", "scope token"},
		{"empty scope", func(c *models.Client) { c.Scopes = []string{""} }, false, "scopes", "scope token"},
		{"public client with client_credentials", func(c *models.Client) {
			c.Public, c.TokenEndpointAuthMethod, c.GrantTypes = true, "", []string{"client_credentials"}
		}, false, "public", "client_credentials"},
		// private_key_jwt was the unknown method here until #15 made it known; tls_client_auth is still unknown.
		{"unknown auth method", func(c *models.Client) { c.TokenEndpointAuthMethod = "tls_client_auth" }, false, "token_endpoint_auth_method", "tls_client_auth"},
		{"auth method none on a confidential client", func(c *models.Client) { c.TokenEndpointAuthMethod = "none" }, false, "token_endpoint_auth_method", "public"},
		{"secret auth method on a public client", func(c *models.Client) { c.Public = true }, false, "token_endpoint_auth_method", "public"},
		{"unknown access token format", func(c *models.Client) { c.AccessTokenFormat, c.AccessTokenEncryptionAlg = "paseto", "" }, false, "access_token_format", "paseto"},
		{"relative post-logout URI", func(c *models.Client) { c.PostLogoutRedirectURIs = []string{"bye"} }, false, "post_logout_redirect_uris", `"bye"`},
		{"allowed origin with a path", func(c *models.Client) { c.AllowedOrigins = []string{"https://app.example/"} }, false, "allowed_origins", "without a path"},
		{"allowed origin of another scheme", func(c *models.Client) { c.AllowedOrigins = []string{"ftp://app.example"} }, false, "allowed_origins", "http(s)"},
		{"malformed pool name", func(c *models.Client) { c.Pool = "Bad Name" }, false, "pool", "pool name"},

		{"admin scope on a client that is not admin", func(c *models.Client) { c.Scopes = append(c.Scopes, models.AdminScope) }, false, "scopes", "only for admin clients"},
		{"admin pools on a client that is not admin", func(c *models.Client) { c.AdminPools = []string{"default"} }, false, "admin_pools", "only for admin clients"},
		{"public admin", func(c *models.Client) { adminize(c); c.Public, c.TokenEndpointAuthMethod = true, "none" }, false, "public", "cannot be public"},
		{"first-party admin", func(c *models.Client) { adminize(c); c.FirstParty = true }, false, "first_party", "first-party"},
		{"admin with a user grant", func(c *models.Client) { adminize(c); c.GrantTypes = append(c.GrantTypes, "refresh_token") }, false, "grant_types", "only the client_credentials grant"},
		{"admin without the admin scope", func(c *models.Client) { adminize(c); c.Scopes = []string{"read"} }, false, "scopes", models.AdminScope},
		{"admin pool with a bad name", func(c *models.Client) { adminize(c); c.AdminPools = []string{"Bad Name"} }, false, "admin_pools", "pool name"},
		{"admin pool listed twice", func(c *models.Client) { adminize(c); c.AdminPools = []string{"a", "a"} }, false, "admin_pools", "listed twice"},

		{"private JWK", func(c *models.Client) { c.EncryptionJWK = publicJWK(t, jose.JSONWebKey{Key: rk}) }, false, "encryption_jwk", "private"},
		{"symmetric JWK", func(c *models.Client) { c.EncryptionJWK = `{"kty":"oct","k":"c2VjcmV0"}` }, false, "encryption_jwk", "symmetric"},
		{"JWK that is not JSON", func(c *models.Client) { c.AccessTokenEncryptionJWK = "-----BEGIN PUBLIC KEY-----" }, false, "access_token_encryption_jwk", "JSON"},
		{"JWK over the size limit", func(c *models.Client) { c.EncryptionJWK = `{"x":"` + strings.Repeat("a", 17<<10) + `"}` }, false, "encryption_jwk", "longer"},
		{"an alg whose JWK is unusable", func(c *models.Client) { c.EncryptionJWK = `[]` }, false, "id_token_encrypted_response_alg", "usable encryption_jwk"},
		{"an alg without a JWK", func(c *models.Client) { c.AccessTokenEncryptionJWK = "" }, false, "access_token_encryption_alg", "access_token_encryption_jwk is empty"},
		{"unsupported alg", func(c *models.Client) { c.IDTokenEncryptedResponseAlg = "RSA1_5" }, false, "id_token_encrypted_response_alg", "RSA1_5"},
		{"symmetric alg", func(c *models.Client) { c.IDTokenEncryptedResponseAlg = "dir" }, false, "id_token_encrypted_response_alg", "not supported"},
		{"unsupported enc", func(c *models.Client) { c.IDTokenEncryptedResponseEnc = "A512GCM" }, false, "id_token_encrypted_response_enc", "A512GCM"},
		{"enc without alg", func(c *models.Client) { c.UserinfoEncryptedResponseAlg = "" }, false, "userinfo_encrypted_response_enc", "userinfo_encrypted_response_alg"},
		{"RSA alg for an EC key", func(c *models.Client) { c.AccessTokenEncryptionAlg = "RSA-OAEP-256" }, false, "access_token_encryption_alg", "needs an RSA key"},
		{"EC alg for an RSA key", func(c *models.Client) { c.IDTokenEncryptedResponseAlg = "ECDH-ES" }, false, "id_token_encrypted_response_alg", "needs an EC key"},
		{"RSA key under 2048 bits", func(c *models.Client) {
			c.EncryptionJWK = publicJWK(t, jose.JSONWebKey{Key: &small.PublicKey})
		}, false, "id_token_encrypted_response_alg", "2048"},
		{"signing key", func(c *models.Client) {
			c.EncryptionJWK = publicJWK(t, jose.JSONWebKey{Key: &rk.PublicKey, Use: "sig"})
		}, false, "id_token_encrypted_response_alg", `use "sig"`},
		{"JWK for another alg", func(c *models.Client) {
			c.AccessTokenEncryptionJWK = publicJWK(t, jose.JSONWebKey{Key: &ek.PublicKey, Algorithm: "ECDH-ES"})
		}, false, "access_token_encryption_alg", "is for alg"},
		{"access token encryption with the server's default format", func(c *models.Client) { c.AccessTokenFormat = "" }, false, "access_token_encryption_alg", "access_token_format jwt"},

		{"private_key_jwt without a JWK Set", func(c *models.Client) { c.TokenEndpointAuthMethod = "private_key_jwt" }, false, "jwks", "required for private_key_jwt"},
		{"private_key_jwt on a public client", func(c *models.Client) {
			c.Public, c.TokenEndpointAuthMethod, c.JWKS = true, "private_key_jwt", jwks(t, jose.JSONWebKey{Key: &ek.PublicKey})
		}, false, "token_endpoint_auth_method", "public"},
		{"client_secret_jwt on a public client", func(c *models.Client) {
			c.Public, c.TokenEndpointAuthMethod = true, models.AuthMethodClientSecretJWT
		}, false, "token_endpoint_auth_method", "public"},
		{"client_secret_jwt with an RSA alg", func(c *models.Client) {
			c.TokenEndpointAuthMethod, c.TokenEndpointAuthSigningAlg = models.AuthMethodClientSecretJWT, "RS256"
		}, false, "token_endpoint_auth_signing_alg", "HMAC"},
		{"client_secret_jwt with alg none", func(c *models.Client) {
			c.TokenEndpointAuthMethod, c.TokenEndpointAuthSigningAlg = models.AuthMethodClientSecretJWT, "none"
		}, false, "token_endpoint_auth_signing_alg", "HS256, HS384, HS512"},
		{"client_secret_jwt with a JWK Set", func(c *models.Client) {
			c.TokenEndpointAuthMethod, c.JWKS = models.AuthMethodClientSecretJWT, jwks(t, jose.JSONWebKey{Key: &ek.PublicKey})
		}, false, "jwks", "private_key_jwt"},
		{"HS256 signing alg without a JWK Set", func(c *models.Client) { c.TokenEndpointAuthSigningAlg = "HS256" }, false, "token_endpoint_auth_signing_alg", "without jwks"},
		{"private key in the JWK Set", func(c *models.Client) { c.JWKS = jwks(t, jose.JSONWebKey{Key: ek}) }, false, "jwks", "private"},
		{"symmetric key in the JWK Set", func(c *models.Client) { c.JWKS = `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}` }, false, "jwks", "symmetric"},
		{"JWK Set that is one JWK", func(c *models.Client) { c.JWKS = publicJWK(t, jose.JSONWebKey{Key: &ek.PublicKey}) }, false, "jwks", "no keys"},
		{"JWK Set that is not JSON", func(c *models.Client) { c.JWKS = "keys" }, false, "jwks", "JSON object"},
		{"encryption key in the JWK Set", func(c *models.Client) { c.JWKS = jwks(t, jose.JSONWebKey{Key: &ek.PublicKey, Use: "enc"}) }, false, "jwks", `use "enc"`},
		{"JWK Set of several keys without kids", func(c *models.Client) {
			c.JWKS = jwks(t, jose.JSONWebKey{Key: &ek.PublicKey, KeyID: "a"}, jose.JSONWebKey{Key: &ek.PublicKey})
		}, false, "jwks", "no kid"},
		{"JWK Set with a kid twice", func(c *models.Client) {
			c.JWKS = jwks(t, jose.JSONWebKey{Key: &ek.PublicKey, KeyID: "a"}, jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "a"})
		}, false, "jwks", "used twice"},
		{"RSA signing key under 2048 bits", func(c *models.Client) { c.JWKS = jwks(t, jose.JSONWebKey{Key: &small.PublicKey}) }, false, "jwks", "2048"},
		{"keys that do not fit one alg", func(c *models.Client) {
			c.JWKS = jwks(t, jose.JSONWebKey{Key: &ek.PublicKey, KeyID: "e"}, jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "r"})
		}, false, "jwks", "key 1 cannot verify ES256"},
		{"signing alg the key cannot verify", func(c *models.Client) {
			c.JWKS, c.TokenEndpointAuthSigningAlg = jwks(t, jose.JSONWebKey{Key: &ek.PublicKey}), "RS256"
		}, false, "jwks", "cannot verify RS256"},
		{"HS256 signing alg", func(c *models.Client) {
			c.JWKS, c.TokenEndpointAuthSigningAlg = jwks(t, jose.JSONWebKey{Key: &ek.PublicKey}), "HS256"
		}, false, "token_endpoint_auth_signing_alg", "HS256"},
		{"signing alg without a JWK Set", func(c *models.Client) { c.TokenEndpointAuthSigningAlg = "ES256" }, false, "token_endpoint_auth_signing_alg", "without jwks"},
		// Signed request objects (RFC 9101).
		{"signed request objects required without keys", func(c *models.Client) { c.RequireSignedRequestObject = true }, false, "require_signed_request_object", "jwks"},
		{"request object alg none", func(c *models.Client) {
			c.JWKS, c.RequestObjectSigningAlg = jwks(t, jose.JSONWebKey{Key: &ek.PublicKey}), "none"
		}, false, "request_object_signing_alg", "not accepted"},
		{"request object alg HS256", func(c *models.Client) {
			c.JWKS, c.RequestObjectSigningAlg = jwks(t, jose.JSONWebKey{Key: &ek.PublicKey}), "HS256"
		}, false, "request_object_signing_alg", "not accepted"},
		{"unknown request object alg", func(c *models.Client) {
			c.JWKS, c.RequestObjectSigningAlg = jwks(t, jose.JSONWebKey{Key: &ek.PublicKey}), "EdDSA"
		}, false, "request_object_signing_alg", "not supported"},
		{"request object alg no key fits", func(c *models.Client) {
			c.JWKS, c.RequestObjectSigningAlg = jwks(t, jose.JSONWebKey{Key: &ek.PublicKey}), "RS256"
		}, false, "request_object_signing_alg", "can verify RS256"},
		{"request object alg without keys", func(c *models.Client) { c.RequestObjectSigningAlg = "ES256" }, false, "request_object_signing_alg", "without jwks"},

		{"jwks and jwks_uri both", func(c *models.Client) {
			c.TokenEndpointAuthMethod, c.JWKS = "private_key_jwt", jwks(t, jose.JSONWebKey{Key: &ek.PublicKey})
			c.JWKSURI = "https://keys.example/jwks"
		}, false, "jwks_uri", "one way"},
		{"jwks_uri over http", func(c *models.Client) { c.JWKSURI = "http://keys.example/jwks" }, false, "jwks_uri", "must use https"},
		{"jwks_uri of another scheme", func(c *models.Client) { c.JWKSURI = "ftp://keys.example/jwks" }, false, "jwks_uri", "must use https"},
		{"relative jwks_uri", func(c *models.Client) { c.JWKSURI = "/jwks.json" }, false, "jwks_uri", "absolute"},
		{"jwks_uri with credentials", func(c *models.Client) { c.JWKSURI = "https://u:p@keys.example/jwks" }, false, "jwks_uri", "credentials"},
		{"jwks_uri with a fragment", func(c *models.Client) { c.JWKSURI = "https://keys.example/jwks#k" }, false, "jwks_uri", "fragment"},
		{"jwks_uri with an empty fragment", func(c *models.Client) { c.JWKSURI = "https://keys.example/jwks#" }, false, "jwks_uri", "fragment"},
		{"jwks_uri too long", func(c *models.Client) { c.JWKSURI = "https://keys.example/" + strings.Repeat("a", 2048) }, false, "jwks_uri", "longer"},
		{"jwks_uri with an unsupported signing alg", func(c *models.Client) {
			c.TokenEndpointAuthMethod, c.JWKSURI, c.TokenEndpointAuthSigningAlg = "private_key_jwt", "https://keys.example/jwks", "HS256"
		}, false, "token_endpoint_auth_signing_alg", "not supported"},
		{"access token encryption of opaque tokens", func(c *models.Client) { c.AccessTokenFormat = "opaque" }, false, "access_token_encryption_alg", "access_token_format jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validClient(rsaPub, ecPub)
			tc.change(&c)
			checks := []struct {
				what string
				err  error
			}{{"ValidateRegistration", c.ValidateRegistration()}}
			if tc.registration {
				if err := c.Validate(); err != nil {
					t.Errorf("Validate = %v; a registration rule must not bind stored clients", err)
				}
			} else {
				checks = append(checks, struct {
					what string
					err  error
				}{"Validate", c.Validate()})
			}
			for _, ch := range checks {
				var ve models.ValidationError
				if !errors.Is(ch.err, models.ErrInvalid) || !errors.As(ch.err, &ve) {
					t.Fatalf("%s = %v, want a models.ValidationError (ErrInvalid)", ch.what, ch.err)
				}
				if !slices.ContainsFunc(ve, func(f models.FieldError) bool {
					return f.Field == tc.field && strings.Contains(f.Problem, tc.mention)
				}) {
					t.Errorf("%s = %v, want a problem with the field %s mentioning %q", ch.what, ch.err, tc.field, tc.mention)
				}
			}
		})
	}

	t.Run("a first-party client may register the password grant, public or confidential", func(t *testing.T) {
		c := validClient(rsaPub, ecPub)
		c.FirstParty, c.GrantTypes = true, []string{"password", "refresh_token"}
		c.RedirectURIs, c.ResponseTypes = nil, nil
		if err := c.ValidateRegistration(); err != nil {
			t.Errorf("confidential: %v", err)
		}
		c.Public, c.TokenEndpointAuthMethod = true, models.AuthMethodNone
		if err := c.ValidateRegistration(); err != nil {
			t.Errorf("public: %v", err)
		}
	})
	t.Run("every problem is reported at once", func(t *testing.T) {
		c := validClient(rsaPub, ecPub)
		c.Name, c.GrantTypes, c.AccessTokenFormat, c.IDTokenEncryptedResponseAlg = "", []string{"magic"}, "paseto", "RSA1_5"
		var ve models.ValidationError
		if err := c.ValidateRegistration(); !errors.As(err, &ve) {
			t.Fatalf("ValidateRegistration = %v", err)
		}
		var fields []string
		for _, f := range ve {
			fields = append(fields, f.Field)
		}
		for _, want := range []string{"name", "grant_types", "access_token_format", "id_token_encrypted_response_alg", "access_token_encryption_alg"} {
			if !slices.Contains(fields, want) {
				t.Errorf("fields at fault = %v, want %s among them", fields, want)
			}
		}
		if msg := ve.Error(); !strings.HasPrefix(msg, "invalid: name: is required; ") {
			t.Errorf("message = %q, want the problems joined after %q", msg, "invalid: ")
		}
	})
	t.Run("an ID-token-only client is valid", func(t *testing.T) {
		c := validClient(rsaPub, ecPub)
		c.GrantTypes, c.ResponseTypes = []string{"authorization_code", "implicit", "refresh_token"}, []string{"code", "id_token"}
		c.RedirectURIs = []string{"https://app.example/cb", "http://localhost:5173/cb", "http://127.0.0.1:8080/cb"}
		if err := c.ValidateRegistration(); err != nil {
			t.Errorf("ValidateRegistration = %v", err)
		}
		modes := fmt.Sprint(c.GetResponseModes())
		if modes != "[query fragment form_post]" {
			t.Errorf("response modes = %s, want fragment among them", modes)
		}
		c = validClient(rsaPub, ecPub)
		if modes := fmt.Sprint(c.GetResponseModes()); modes != "[query form_post]" {
			t.Errorf("response modes of a code-only client = %s, want no fragment", modes)
		}
	})
	t.Run("a private_key_jwt client gives fosite its keys and one alg", func(t *testing.T) {
		c := validClient(rsaPub, ecPub)
		c.TokenEndpointAuthMethod = "private_key_jwt"
		for _, tc := range []struct {
			set     string
			alg     string
			wantAlg string
		}{
			{jwks(t, jose.JSONWebKey{Key: &ek.PublicKey, KeyID: "e"}), "", "ES256"},
			{jwks(t, jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "r1"}, jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "r2", Use: "sig"}), "", "RS256"},
			{jwks(t, jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "r"}), "PS256", "PS256"},
			{jwks(t, jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "r", Algorithm: "RS512"}), "", "RS512"},
		} {
			c.JWKS, c.TokenEndpointAuthSigningAlg = tc.set, tc.alg
			if err := c.ValidateRegistration(); err != nil {
				t.Fatalf("ValidateRegistration = %v", err)
			}
			if got := c.GetTokenEndpointAuthSigningAlgorithm(); got != tc.wantAlg {
				t.Errorf("signing alg = %s, want %s", got, tc.wantAlg)
			}
			set := c.GetJSONWebKeys()
			if set == nil || len(set.Keys) == 0 {
				t.Fatalf("GetJSONWebKeys = %v", set)
			}
			for _, k := range set.Keys {
				if k.Use != "sig" || !k.IsPublic() {
					t.Errorf("key %s: use %q, public %v; fosite reads only public keys marked sig", k.KeyID, k.Use, k.IsPublic())
				}
			}
		}
		c.JWKS = ""
		if c.GetJSONWebKeys() != nil {
			t.Error("a client without a JWK Set gives fosite keys")
		}
	})
	t.Run("a client_secret_jwt client MACs with HS256 unless it registers HS384 or HS512", func(t *testing.T) {
		c := validClient(rsaPub, ecPub)
		c.TokenEndpointAuthMethod = models.AuthMethodClientSecretJWT
		for alg, want := range map[string]string{"": "HS256", "HS256": "HS256", "HS384": "HS384", "HS512": "HS512"} {
			c.TokenEndpointAuthSigningAlg = alg
			if err := c.ValidateRegistration(); err != nil {
				t.Errorf("alg %q: ValidateRegistration = %v", alg, err)
			}
			if got := c.GetTokenEndpointAuthSigningAlgorithm(); got != want {
				t.Errorf("alg %q: signing alg = %s, want %s", alg, got, want)
			}
		}
	})
	t.Run("a client requiring signed request objects gives their alg", func(t *testing.T) {
		c := validClient(rsaPub, ecPub)
		c.JWKS, c.RequireSignedRequestObject, c.RequestObjectSigningAlg = jwks(t, jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "r"}), true, "PS256"
		if err := c.ValidateRegistration(); err != nil {
			t.Fatalf("ValidateRegistration = %v", err)
		}
		if !c.RequiresSignedRequestObject() || c.GetRequestObjectSigningAlgorithm() != "PS256" {
			t.Errorf("requires %v, alg %q", c.RequiresSignedRequestObject(), c.GetRequestObjectSigningAlgorithm())
		}
	})
	t.Run("a private_key_jwt client may give its keys by URL", func(t *testing.T) {
		for _, tc := range []struct{ uri, alg, wantAlg string }{
			{"https://keys.example/billing/jwks.json", "", "RS256"}, // its keys are not known here: RS256 by default
			{"https://keys.example:8443/jwks?tenant=b", "ES256", "ES256"},
			{"http://localhost:9000/jwks", "PS256", "PS256"}, // http on loopback, for development
			{"http://127.0.0.1/jwks", "", "RS256"},
			{"http://[::1]:9000/jwks", "", "RS256"},
		} {
			c := validClient(rsaPub, ecPub)
			c.TokenEndpointAuthMethod, c.JWKSURI, c.TokenEndpointAuthSigningAlg = "private_key_jwt", tc.uri, tc.alg
			if err := c.ValidateRegistration(); err != nil {
				t.Fatalf("%s: ValidateRegistration = %v", tc.uri, err)
			}
			if c.GetJSONWebKeysURI() != tc.uri || c.GetJSONWebKeys() != nil || c.GetTokenEndpointAuthSigningAlgorithm() != tc.wantAlg {
				t.Errorf("%s: jwks_uri %q, keys %v, alg %s; want the URI, no inline keys, %s", tc.uri,
					c.GetJSONWebKeysURI(), c.GetJSONWebKeys(), c.GetTokenEndpointAuthSigningAlgorithm(), tc.wantAlg)
			}
		}
	})
	t.Run("a nil client is invalid", func(t *testing.T) {
		var c *models.Client
		if err := c.Validate(); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("Validate = %v", err)
		}
		if err := c.ValidateRegistration(); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("ValidateRegistration = %v", err)
		}
	})
}

// adminize makes c a valid admin client.
func adminize(c *models.Client) {
	c.Admin, c.GrantTypes, c.ResponseTypes, c.RedirectURIs = true, []string{"client_credentials"}, nil, nil
	c.Scopes = []string{models.AdminScope}
	c.IDTokenEncryptedResponseAlg, c.UserinfoEncryptedResponseAlg, c.UserinfoEncryptedResponseEnc = "", "", ""
}

// TestStoreRefusesInvalidClients: the rules bind the store itself, so no entry point, nor a caller that skips
// the CLI, can store or update to an invalid client; a refused write leaves nothing behind.
func TestStoreRefusesInvalidClients(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		ok := models.Client{ID: "web", Name: "Web", SecretHash: "h", GrantTypes: []string{"authorization_code"},
			RedirectURIs: []string{"https://web.example/cb"}, ResponseTypes: []string{"code"}}
		if err := s.RegisterClient(ctx, &ok); err != nil {
			t.Fatal(err)
		}
		for name, bad := range map[string]func(c *models.Client){
			"unknown grant type":                    func(c *models.Client) { c.GrantTypes = []string{"urn:example:magic"} },
			"password grant, not first-party":       func(c *models.Client) { c.GrantTypes = []string{"password"} },
			"redirect URI with a fragment":          func(c *models.Client) { c.RedirectURIs = []string{"https://web.example/cb#x"} },
			"public client with client_credentials": func(c *models.Client) { c.Public, c.GrantTypes = true, []string{"client_credentials"} },
			"auth method none, not public":          func(c *models.Client) { c.TokenEndpointAuthMethod = models.AuthMethodNone },
			"scope with a space":                    func(c *models.Client) { c.Scopes = []string{"a b"} },
			"id with a colon":                       func(c *models.Client) { c.ID = "web:2" },
		} {
			t.Run(name, func(t *testing.T) {
				c := ok
				c.ID = "new"
				bad(&c)
				var ve models.ValidationError
				if err := s.CreateClient(ctx, &c); !errors.As(err, &ve) || !errors.Is(err, models.ErrInvalid) {
					t.Errorf("CreateClient = %v, want a ValidationError", err)
				}
				if _, err := s.ClientByID(ctx, c.ID); !errors.Is(err, models.ErrNotFound) {
					t.Errorf("a refused create stored the client: %v", err)
				}
				upd := ok
				if bad(&upd); upd.ID != "web" {
					return // a rule about the id: no update can change it
				}
				if err := s.UpdateClient(ctx, &upd); !errors.As(err, &ve) {
					t.Errorf("UpdateClient = %v, want a ValidationError", err)
				}
				if got, err := s.ClientByID(ctx, "web"); err != nil || !slices.Equal(got.GrantTypes, ok.GrantTypes) ||
					!slices.Equal(got.RedirectURIs, ok.RedirectURIs) || got.Public || got.TokenEndpointAuthMethod != "" || len(got.Scopes) != 0 {
					t.Errorf("a refused update changed the client: %+v, %v", got, err)
				}
			})
		}
		t.Run("a registration needs what CreateClient does not", func(t *testing.T) {
			c := models.Client{ID: "nameless", GrantTypes: []string{"authorization_code"}}
			var ve models.ValidationError
			if err := s.RegisterClient(ctx, &c); !errors.As(err, &ve) || len(ve) != 2 {
				t.Errorf("RegisterClient = %v, want name and redirect_uris refused", err)
			}
			if _, err := s.ClientByID(ctx, "nameless"); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("a refused registration stored the client: %v", err)
			}
		})
	})
}

// TestStoreRefusesRegisteredClaims: a user's extras may not use a claim name Latchkey sets itself, whichever
// store method writes them.
func TestStoreRefusesRegisteredClaims(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		u, err := s.CreateUserWith(ctx, models.NewUser{Email: "ada@example.com", Password: "pw", Extras: map[string]any{"plan": "pro"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(models.RegisteredClaims()) < 19 {
			t.Fatalf("RegisteredClaims = %v", models.RegisteredClaims())
		}
		for _, claim := range models.RegisteredClaims() {
			extras := map[string]any{"plan": "gold", claim: "x"}
			wantRefused := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, models.ErrInvalid) || !strings.Contains(err.Error(), `"`+claim+`"`) {
					t.Errorf("%s with extras %q = %v, want ErrInvalid naming it", what, claim, err)
				}
			}
			if err := (models.NewUser{Email: "bob@example.com", Password: "pw", Extras: extras}).Validate(); err == nil {
				t.Errorf("NewUser.Validate accepted extras %q", claim)
			}
			_, err := s.CreateUserWith(ctx, models.NewUser{Email: "bob@example.com", Password: "pw", Extras: extras})
			wantRefused("CreateUserWith", err)
			wantRefused("SetExtras", s.SetExtras(ctx, u.ID, extras))
			_, err = s.UpdateUser(ctx, u.ID, models.UserPatch{Extras: &extras}, time.Now())
			wantRefused("UpdateUser", err)
		}
		if got, err := s.UserByID(ctx, u.ID); err != nil || len(got.Extras) != 1 || got.Extras["plan"] != "pro" {
			t.Errorf("refused writes changed the extras: %v, %v", got, err)
		}
		if _, err := s.UserByEmail(ctx, "", "bob@example.com"); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("a refused create stored the user: %v", err)
		}
		if models.IsRegisteredClaim("plan") || !models.IsRegisteredClaim("sub") {
			t.Error("IsRegisteredClaim disagrees with the list")
		}
	})
}
