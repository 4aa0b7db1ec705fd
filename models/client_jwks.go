package models

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	josev3 "github.com/go-jose/go-jose/v3"

	"github.com/latchkey/latchkey/jwe"
)

// private_key_jwt client authentication (RFC 7523 §2.2, OpenID Connect Core §9). fosite verifies the assertion
// (fosite.DefaultClientAuthenticationStrategy) with the keys and the algorithm this file gives it; the rule for
// what a client may register is here, once (validateJWKS), and Validate runs it.

// ClientAssertionSigningAlgs are the algorithms a client may sign its assertions with: what fosite v0.49.0
// verifies. HS256/384/512 are client_secret_jwt's (ClientSecretJWTSigningAlgs). Do not modify.
var ClientAssertionSigningAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// Bounds on a registered JWK Set.
const (
	MaxJWKSBytes = 64 << 10
	MaxJWKSKeys  = 16
)

// parseClientJWKS parses the JSON text of a client's public JWK Set for client authentication, each key by jwe's
// rule for a registered public key (a private or symmetric key is refused before go-jose parses it). A key's use
// is sig or unset; its kid, when there are several keys, is set and unique. The error says what is wrong.
func parseClientJWKS(src string) ([]*jwkInfo, error) {
	if len(src) > MaxJWKSBytes {
		return nil, fmt.Errorf("JWK Set is longer than %d bytes", MaxJWKSBytes)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal([]byte(src), &set); err != nil {
		return nil, errors.New(`JWK Set is not a JSON object {"keys": [...]}`)
	}
	switch {
	case len(set.Keys) == 0:
		return nil, errors.New("JWK Set has no keys")
	case len(set.Keys) > MaxJWKSKeys:
		return nil, fmt.Errorf("JWK Set has more than %d keys", MaxJWKSKeys)
	}
	out := make([]*jwkInfo, 0, len(set.Keys))
	var kids []string
	for i, raw := range set.Keys {
		k, err := jwe.ParsePublicJWK(string(raw))
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if k.Use != "" && k.Use != "sig" {
			return nil, fmt.Errorf("key %d has use %q; a key for client authentication has use \"sig\" or none", i, k.Use)
		}
		if len(set.Keys) > 1 {
			if k.KeyID == "" {
				return nil, fmt.Errorf("key %d has no kid; a JWK Set of several keys names each", i)
			}
			if slices.Contains(kids, k.KeyID) {
				return nil, fmt.Errorf("key %d: kid %q is used twice", i, k.KeyID)
			}
			kids = append(kids, k.KeyID)
		}
		info := &jwkInfo{alg: k.Algorithm}
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < jwe.MinRSABits {
				return nil, fmt.Errorf("key %d: RSA keys have at least %d bits", i, jwe.MinRSABits)
			}
			info.kind = "RSA"
		case *ecdsa.PublicKey:
			switch pub.Curve {
			case elliptic.P256():
				info.kind = "ES256"
			case elliptic.P384():
				info.kind = "ES384"
			case elliptic.P521():
				info.kind = "ES512"
			default:
				return nil, fmt.Errorf("key %d: unsupported curve", i)
			}
		default:
			return nil, fmt.Errorf("key %d: only RSA and EC (P-256, P-384, P-521) keys sign client assertions", i)
		}
		out = append(out, info)
	}
	return out, nil
}

// jwkInfo is what the rules need of one key: its alg member and its kind (RSA, or the ES alg its curve implies).
type jwkInfo struct{ alg, kind string }

// fits reports whether a key can verify alg.
func (k *jwkInfo) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	if k.kind == "RSA" {
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	}
	return k.kind == alg
}

// implied is the alg a key implies: its alg member, else RS256 for RSA and the curve's ES alg.
func (k *jwkInfo) implied() string {
	switch {
	case k.alg != "":
		return k.alg
	case k.kind == "RSA":
		return "RS256"
	default:
		return k.kind
	}
}

// validateJWKS: private_key_jwt goes with a JWK Set, inline (jwks) or by reference (jwks_uri), never both; the
// set is public keys (parseClientJWKS); a jwks_uri is a URL the server may fetch (checkJWKSURI); the signing alg,
// if set, is one of ClientAssertionSigningAlgs, and every inline key fits it (or, unset, the alg the first key
// implies; RS256 for a jwks_uri, whose keys are not known here). A client_secret_jwt client's are
// validateSecretJWT's.
func (c *Client) validateJWKS(p *problems) {
	if c.JWKSURI != "" {
		// Whatever the method: request objects are verified with keys fetched from it too.
		if err := checkJWKSURI(c.JWKSURI); err != nil {
			p.add("jwks_uri", "%v", err)
		}
	}
	if c.TokenEndpointAuthMethod == AuthMethodClientSecretJWT {
		return
	}
	keyAuth := c.TokenEndpointAuthMethod == AuthMethodPrivateKeyJWT // a public one is refused in validate
	if c.JWKSURI != "" && c.JWKS != "" {
		p.add("jwks_uri", "is set together with jwks; register the keys one way (inline or by URL)")
		return
	}
	if c.JWKS == "" {
		switch alg := c.TokenEndpointAuthSigningAlg; {
		case c.JWKSURI == "" && keyAuth:
			p.add("jwks", "is required for private_key_jwt (or jwks_uri)")
		case c.JWKSURI == "" && alg != "":
			p.add("token_endpoint_auth_signing_alg", "is set without jwks or jwks_uri")
		case alg != "" && !slices.Contains(ClientAssertionSigningAlgs, alg):
			p.add("token_endpoint_auth_signing_alg", "%q is not supported (supported: %s)", alg, strings.Join(ClientAssertionSigningAlgs, ", "))
		}
		return
	}
	keys, err := parseClientJWKS(c.JWKS)
	if err != nil {
		p.add("jwks", "%v", err)
		return
	}
	alg := c.TokenEndpointAuthSigningAlg
	if alg == "" {
		alg = keys[0].implied()
	}
	if !slices.Contains(ClientAssertionSigningAlgs, alg) {
		p.add("token_endpoint_auth_signing_alg", "%q is not supported (supported: %s)", alg, strings.Join(ClientAssertionSigningAlgs, ", "))
		return
	}
	for i, k := range keys {
		if !k.fits(alg) {
			p.add("jwks", "key %d cannot verify %s; a client signs its assertions with one algorithm", i, alg)
		}
	}
}

// MaxJWKSURILength bounds a jwks_uri.
const MaxJWKSURILength = 2048

// checkJWKSURI: a jwks_uri is an absolute https URL (http only to a loopback host, for development), without
// credentials or a fragment. Whether its host may be dialled (not a private address) is decided at each fetch,
// on the address it resolves to then (package jwksfetch).
func checkJWKSURI(raw string) error {
	if len(raw) > MaxJWKSURILength {
		return fmt.Errorf("is longer than %d characters", MaxJWKSURILength)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	case u.User != nil:
		return fmt.Errorf("%q has credentials; a JWK Set is public", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("%q has a fragment", raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
		return nil
	default:
		return fmt.Errorf("%q must use https (http only on localhost)", raw)
	}
}

// loopbackHost reports whether host names this machine: localhost or a loopback IP literal.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parsedJWKS is a client's JWK Set as fosite reads it (go-jose v3), parsed when the client was loaded or stored.
// src is the text it was parsed from, as for parsedJWK.
type parsedJWKS struct {
	src string
	set *josev3.JSONWebKeySet // nil: src does not parse or breaks a rule
	alg string
}

// newParsedJWKS parses src once; nil for an empty src. Keys without a use get use sig (RFC 7517 §4.2 makes use
// optional; fosite looks only at keys marked sig).
func newParsedJWKS(src string) *parsedJWKS {
	if src == "" {
		return nil
	}
	out := &parsedJWKS{src: src}
	keys, err := parseClientJWKS(src) // a stored set was validated when written; if not, it is unusable
	if err != nil {
		return out
	}
	var set josev3.JSONWebKeySet
	if err := json.Unmarshal([]byte(src), &set); err != nil || len(set.Keys) != len(keys) {
		return out
	}
	for i := range set.Keys {
		if set.Keys[i].Use == "" {
			set.Keys[i].Use = "sig"
		}
	}
	out.set, out.alg = &set, keys[0].implied()
	return out
}

func (c *Client) parsedJWKS() *parsedJWKS {
	if c.jwks != nil && c.jwks.src == c.JWKS {
		return c.jwks
	}
	return newParsedJWKS(c.JWKS) // a Client built by hand: parsed on every call, not cached
}

// GetJSONWebKeys is the client's public JWK Set, for fosite to verify its client assertions; nil for none. The
// set is shared: do not modify it.
func (c *Client) GetJSONWebKeys() *josev3.JSONWebKeySet {
	if c.JWKS == "" {
		return nil
	}
	return c.parsedJWKS().set
}

// GetTokenEndpointAuthSigningAlgorithm is the one algorithm fosite (or, for client_secret_jwt, the provider)
// accepts on this client's assertions: TokenEndpointAuthSigningAlg, else HS256 for a client_secret_jwt client,
// else the one its first key implies (its alg member, RS256 for RSA, the curve's ES alg), else RS256 (OpenID
// Connect Registration's default).
func (c *Client) GetTokenEndpointAuthSigningAlgorithm() string {
	if c.TokenEndpointAuthSigningAlg != "" {
		return c.TokenEndpointAuthSigningAlg
	}
	if c.TokenEndpointAuthMethod == AuthMethodClientSecretJWT {
		return ClientSecretJWTSigningAlgs[0]
	}
	if c.JWKS != "" {
		if p := c.parsedJWKS(); p.alg != "" {
			return p.alg
		}
	}
	return "RS256"
}
