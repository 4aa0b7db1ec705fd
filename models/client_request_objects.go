package models

import (
	"slices"
	"strings"
)

// Signed request objects (RFC 9101, JAR). provider/request_object.go verifies them with the client's keys
// (GetJSONWebKeys, and GetJSONWebKeysURI when the client has one) and the algorithm this file gives it; what a
// client may register is here, once (validateRequestObjects), and Validate runs it.

// RequestObjectSigningAlgs are the algorithms a request object may be signed with. none and the HMAC algorithms
// are never among them: an unsigned object proves nothing, and an HMAC needs the client secret, of which Latchkey
// keeps only a hash. Do not modify.
var RequestObjectSigningAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// GetRequestObjectSigningAlgorithm (in clients.go, beside fosite's other client getters) is the one algorithm the
// client's request objects must be signed with; "" means any of RequestObjectSigningAlgs that its keys fit.

// RequiresSignedRequestObject reports whether every authorization request of the client must come as a signed
// request object (RFC 9101 §10.5 require_signed_request_object).
func (c *Client) RequiresSignedRequestObject() bool { return c.RequireSignedRequestObject }

// validateRequestObjects: the algorithm, if set, is one of RequestObjectSigningAlgs and fits one of the client's
// keys; requiring signed request objects, or naming their algorithm, needs keys to verify them with (a JWK Set, or
// a JWK Set URI).
func (c *Client) validateRequestObjects(p *problems) {
	hasKeys := c.JWKS != "" || c.GetJSONWebKeysURI() != ""
	if c.RequireSignedRequestObject && !hasKeys {
		p.add("require_signed_request_object", "needs the client's public keys (jwks) to verify its request objects with")
	}
	alg := c.RequestObjectSigningAlg
	switch {
	case alg == "":
		return
	case alg == "none" || strings.HasPrefix(alg, "HS"):
		p.add("request_object_signing_alg", "%q is not accepted: a request object is signed with one of the client's keys (supported: %s)", alg, strings.Join(RequestObjectSigningAlgs, ", "))
		return
	case !slices.Contains(RequestObjectSigningAlgs, alg):
		p.add("request_object_signing_alg", "%q is not supported (supported: %s)", alg, strings.Join(RequestObjectSigningAlgs, ", "))
		return
	case !hasKeys:
		p.add("request_object_signing_alg", "is set without jwks")
		return
	}
	if c.JWKS == "" {
		return // keys from a JWK Set URI are checked when they are fetched
	}
	keys, err := parseClientJWKS(c.JWKS)
	if err != nil {
		return // validateJWKS reports it
	}
	if !slices.ContainsFunc(keys, func(k *jwkInfo) bool { return k.fits(alg) }) {
		p.add("request_object_signing_alg", "no key of the client's jwks can verify %s", alg)
	}
}
