package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
)

// Signed request objects (RFC 9101, JAR) at the authorization endpoint (`request` by value) and at PAR (RFC 9126
// §3: a push may carry `request`; the verified parameters are what is stored behind the request_uri).
//
// fosite v0.49.0 has its own request-object path (authorizeRequestParametersFromOpenIDConnectRequest) that we do
// not let run: it only looks at requests with the openid scope, merges the object over the outer parameters
// (RFC 9101 §6.3 says the outer ones are ignored), accepts alg none when a client registers it, fetches any
// request_uri the client registered, and checks neither iss, aud nor exp. Instead requestObjects verifies the
// object before fosite sees the request and hands fosite a request whose form is exactly the object's parameters
// (plus client_id, and at PAR the client's credentials), with no `request` left in it. fosite then validates those
// parameters as it validates any request: client, redirect URI, scopes, PKCE, state.
//
// What an object must be: a compact JWS (no JWE, no none, no HMAC) of at most MaxRequestObjectBytes, signed with
// one of the client's keys (its jwks, and its jwks_uri through the fosite config's JWKS fetcher) with the client's
// request_object_signing_alg, or any of RequestObjectSigningAlgs its keys fit; typ absent (OpenID Connect's
// objects) or oauth-authz-req+jwt; iss = client_id claim = the outer client_id; aud = our issuer; exp present and
// at most MaxRequestObjectLifetime away; nbf, if present, passed. A jti is not recorded: see README (replay).

// MaxRequestObjectBytes bounds a request object. The authorization endpoint and PAR bound the whole request to
// models.MaxChallengeQuery (the same 8 KiB) before it gets here; this bound holds for any other caller.
const MaxRequestObjectBytes = 8 << 10

// MaxRequestObjectLifetime is how far in the future a request object's exp may be. A request object only starts
// an authorization, which takes the user minutes at most; a short bound keeps a leaked object short-lived.
const MaxRequestObjectLifetime = time.Hour

// requestObjectClockSkew is how early a request object's nbf may be reached by our clock.
const requestObjectClockSkew = 30 * time.Second

// RequestObjectType is the JWT typ of a request object (RFC 9101 §4).
const RequestObjectType = "oauth-authz-req+jwt"

// requestObjectSigningAlgs are the algorithms a request object may be signed with: go-jose's asymmetric ones
// that fosite's client keys carry. models.RequestObjectSigningAlgs, the rule a client's registration obeys, is the
// same list (the provider does not import models; e2e's discovery test holds the two equal).
var requestObjectSigningAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512,
}

// RequestObjectSigningAlgs lists the algorithms discovery advertises for request objects.
func RequestObjectSigningAlgs() []string {
	out := make([]string, len(requestObjectSigningAlgs))
	for i, a := range requestObjectSigningAlgs {
		out[i] = string(a)
	}
	return out
}

// requestObjectClient is what a client gives to verify its request objects: its keys (fosite.OpenIDConnectClient:
// GetJSONWebKeys, GetJSONWebKeysURI, GetRequestObjectSigningAlgorithm) and whether it requires them.
type requestObjectClient interface {
	fosite.OpenIDConnectClient
	RequiresSignedRequestObject() bool
}

// requestObjectConfig is what requestObjects reads from the fosite config.
type requestObjectConfig interface {
	GetJWKSFetcherStrategy(ctx context.Context) fosite.JWKSFetcherStrategy
	GetPushedAuthorizeRequestURIPrefix(ctx context.Context) string
}

// requestObjects is the OAuth 2.0 provider with signed request objects verified before fosite parses an
// authorization or pushed authorization request, and required of the clients that require them.
type requestObjects struct {
	fosite.OAuth2Provider
	clients fosite.ClientManager
	cfg     requestObjectConfig
	issuer  string
	now     func() time.Time
}

type resumedKey struct{}

// ResumedAuthorizeRequest marks ctx as serving an authorization request the authorization endpoint parked itself
// for sign-in or consent and now restores: its parameters were verified when it first arrived (a request object's
// by then replaced by its parameters), so a client that requires signed request objects is not asked again.
func ResumedAuthorizeRequest(ctx context.Context) context.Context {
	return context.WithValue(ctx, resumedKey{}, true)
}

func isResumed(ctx context.Context) bool { v, _ := ctx.Value(resumedKey{}).(bool); return v }

func (p requestObjects) NewAuthorizeRequest(ctx context.Context, r *http.Request) (fosite.AuthorizeRequester, error) {
	if err := r.ParseMultipartForm(1 << 20); err != nil && err != http.ErrNotMultipart {
		return p.OAuth2Provider.NewAuthorizeRequest(ctx, r) // fosite refuses it
	}
	form := r.Form
	if len(form["request"]) > 1 || len(form["request_uri"]) > 1 || len(form["client_id"]) > 1 {
		return fosite.NewAuthorizeRequest(), fosite.ErrInvalidRequest.WithHint("The parameters 'request', 'request_uri' and 'client_id' may each be given once.")
	}
	object, requestURI, clientID := form.Get("request"), form.Get("request_uri"), form.Get("client_id")
	fromPAR := requestURI != "" && strings.HasPrefix(requestURI, p.cfg.GetPushedAuthorizeRequestURIPrefix(ctx))
	switch {
	case object != "" && requestURI != "":
		return fosite.NewAuthorizeRequest(), fosite.ErrInvalidRequest.WithHint("The parameters 'request' and 'request_uri' were both given; use at most one.")
	case requestURI != "" && !fromPAR:
		// We never fetch a URL a request names: a request_uri is one our PAR endpoint gave.
		return fosite.NewAuthorizeRequest(), fosite.ErrInvalidRequestURI.WithHint("Only a request_uri from this server's pushed authorization request endpoint is accepted.")
	case fromPAR:
		// RFC 9101 §6.3 (RFC 9126 §4): the pushed request is the request; other parameters beside it are ignored.
		return p.OAuth2Provider.NewAuthorizeRequest(ctx, withForm(r, url.Values{"client_id": {clientID}, "request_uri": {requestURI}}, false))
	case object == "":
		ar, err := p.OAuth2Provider.NewAuthorizeRequest(ctx, r)
		if err == nil && !isResumed(ctx) && requiresSignedRequest(ar.GetClient()) {
			// fosite validated the redirect URI: the error goes back to the client.
			err = errSignedRequestRequired
		}
		return ar, err
	}
	if clientID == "" {
		return fosite.NewAuthorizeRequest(), fosite.ErrInvalidRequest.WithHint("The parameter 'client_id' is required beside 'request'.")
	}
	client, err := p.clients.GetClient(ctx, clientID)
	if err != nil {
		return fosite.NewAuthorizeRequest(), fosite.ErrInvalidClient.WithHint("The requested OAuth 2.0 Client does not exist.").WithWrap(err).WithDebug(err.Error())
	}
	params, err := p.verify(ctx, object, client)
	if params == nil {
		// Not verified: nothing in it, the redirect URI least of all, can be trusted. Our page answers.
		return fosite.NewAuthorizeRequest(), err
	}
	params.Set("client_id", clientID)
	ar, ferr := p.OAuth2Provider.NewAuthorizeRequest(ctx, withForm(r, params, false))
	if err != nil {
		// Signed by the client but not acceptable (expired, for another audience...): the error goes to the
		// redirect URI the object names once fosite has validated it.
		return ar, err
	}
	return ar, ferr
}

func (p requestObjects) NewPushedAuthorizeRequest(ctx context.Context, r *http.Request) (fosite.AuthorizeRequester, error) {
	if err := r.ParseMultipartForm(1 << 20); err != nil && err != http.ErrNotMultipart {
		return p.OAuth2Provider.NewPushedAuthorizeRequest(ctx, r) // fosite refuses it
	}
	form := r.Form
	// fosite authenticates the client of HTTP Basic but takes the request's client from client_id, and never
	// compares them: another client could push in this one's name (RFC 9126 §2.1: the request is the
	// authenticated client's).
	if user, _, ok := r.BasicAuth(); ok && form.Get("client_id") != "" {
		if id, err := url.QueryUnescape(user); err != nil || id != form.Get("client_id") {
			return fosite.NewAuthorizeRequest(), fosite.ErrInvalidRequest.WithHint("client_id must be the client that authenticates.")
		}
	}
	object := form.Get("request")
	if object == "" {
		ar, err := p.OAuth2Provider.NewPushedAuthorizeRequest(ctx, r)
		if err == nil && requiresSignedRequest(ar.GetClient()) {
			err = errSignedRequestRequired
		}
		return ar, err
	}
	if len(form["request"]) > 1 {
		return fosite.NewAuthorizeRequest(), fosite.ErrInvalidRequest.WithHint("The parameter 'request' may be given once.")
	}
	// Who the client says it is: the keys to verify the object with. fosite authenticates it afterwards, and the
	// authenticated client must be this one.
	clientID := form.Get("client_id")
	if user, _, ok := r.BasicAuth(); ok && clientID == "" {
		if id, err := url.QueryUnescape(user); err == nil {
			clientID = id
		}
	}
	if clientID == "" {
		clientID = unverifiedClientID(object)
	}
	if clientID == "" {
		return fosite.NewAuthorizeRequest(), fosite.ErrInvalidRequest.WithHint("The client pushing a request object must be identified.")
	}
	client, err := p.clients.GetClient(ctx, clientID)
	if err != nil {
		return fosite.NewAuthorizeRequest(), fosite.ErrInvalidClient.WithHint("The requested OAuth 2.0 Client does not exist.").WithWrap(err).WithDebug(err.Error())
	}
	params, err := p.verify(ctx, object, client)
	if err != nil {
		return fosite.NewAuthorizeRequest(), err
	}
	// The client authenticates with what it sent beside the object (RFC 9126 §3).
	for _, k := range []string{"client_id", "client_secret", "client_assertion", "client_assertion_type"} {
		if v, ok := form[k]; ok {
			params[k] = v
		}
	}
	ar, err := p.OAuth2Provider.NewPushedAuthorizeRequest(ctx, withForm(r, params, true))
	if err == nil && ar.GetClient().GetID() != clientID {
		return ar, fosite.ErrInvalidRequestObject.WithHint("The request object is not the authenticated client's.")
	}
	return ar, err
}

var errSignedRequestRequired = fosite.ErrInvalidRequest.WithHint("This client must send its authorization requests as signed request objects ('request', or a 'request_uri' from a pushed request carrying one).")

func requiresSignedRequest(c fosite.Client) bool {
	rc, ok := c.(requestObjectClient)
	return ok && rc.RequiresSignedRequestObject()
}

// withForm is r with form as its only parameters: fosite reads r.Form, and finds it already parsed.
func withForm(r *http.Request, form url.Values, post bool) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Form = form
	r2.PostForm = url.Values{}
	if post {
		r2.PostForm = form
	}
	r2.MultipartForm = nil
	return r2
}

// verify checks object as client's request object (see the top of this file) and returns its parameters. When the
// signature verified but a claim is not acceptable, it returns the parameters and the error both; when the object
// could not be verified, no parameters.
func (p requestObjects) verify(ctx context.Context, object string, client fosite.Client) (url.Values, error) {
	rc, ok := client.(requestObjectClient)
	if !ok {
		return nil, fosite.ErrRequestNotSupported.WithHint("This client cannot send request objects.")
	}
	jws, err := parseRequestObject(object, rc.GetRequestObjectSigningAlgorithm())
	if err != nil {
		return nil, err
	}
	payload, err := p.verifySignature(ctx, jws, rc)
	if err != nil {
		return nil, err
	}
	return requestObjectParams(payload, client.GetID(), p.issuer, p.now())
}

// parseRequestObject parses object as a compact JWS signed with alg ("" → any of requestObjectSigningAlgs) and
// checks its header.
func parseRequestObject(object, alg string) (*jose.JSONWebSignature, error) {
	if len(object) > MaxRequestObjectBytes {
		return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object is over %d bytes.", MaxRequestObjectBytes)
	}
	if strings.Count(object, ".") != 2 {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object must be a signed JWT in compact serialization (encrypted request objects are not supported).")
	}
	algs := requestObjectSigningAlgs
	if alg != "" {
		algs = []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)}
	}
	jws, err := jose.ParseSignedCompact(object, algs)
	if err != nil {
		// go-jose refuses none, HMAC and any alg but these before anything is verified.
		return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object is not a JWT signed with %s.", algNames(algs)).WithWrap(err).WithDebug(err.Error())
	}
	if len(jws.Signatures) != 1 {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object must carry one signature.")
	}
	h := jws.Signatures[0].Header
	if typ, ok := h.ExtraHeaders[jose.HeaderType]; ok {
		s, _ := typ.(string)
		if !strings.EqualFold(strings.TrimPrefix(strings.ToLower(s), "application/"), RequestObjectType) {
			return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's typ must be %s, or absent.", RequestObjectType)
		}
	}
	return jws, nil
}

func algNames(algs []jose.SignatureAlgorithm) string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// verifySignature verifies jws with one of the client's signing keys (by kid when the header names one) and
// returns its payload. Keys from a JWK Set URI are fetched again once when none verifies (the client may have
// rotated).
func (p requestObjects) verifySignature(ctx context.Context, jws *jose.JSONWebSignature, client requestObjectClient) ([]byte, error) {
	kid := jws.Signatures[0].Header.KeyID
	try := func(set *josev3.JSONWebKeySet) []byte {
		if set == nil {
			return nil
		}
		for _, k := range set.Keys {
			if (kid != "" && k.KeyID != kid) || (k.Use != "" && k.Use != "sig") || !k.IsPublic() {
				continue
			}
			if payload, err := jws.Verify(k.Key); err == nil {
				return payload
			}
		}
		return nil
	}
	if payload := try(client.GetJSONWebKeys()); payload != nil {
		return payload, nil
	}
	if uri := client.GetJSONWebKeysURI(); uri != "" {
		for _, refresh := range []bool{false, true} {
			set, err := p.cfg.GetJWKSFetcherStrategy(ctx).Resolve(ctx, uri, refresh)
			if err != nil {
				return nil, fosite.ErrInvalidRequestObject.WithHint("The client's keys could not be fetched.").WithWrap(err).WithDebug(err.Error())
			}
			if payload := try(set); payload != nil {
				return payload, nil
			}
		}
	}
	return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's signature does not verify with any of the client's keys.")
}

// unverifiedClientID is the client_id claim, else the iss, of an object not yet verified: only ever used to
// choose whose keys to verify it with.
func unverifiedClientID(object string) string {
	parts := strings.Split(object, ".")
	if len(parts) != 3 || len(object) > MaxRequestObjectBytes {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		ClientID any `json:"client_id"`
		Issuer   any `json:"iss"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	if s, ok := c.ClientID.(string); ok && s != "" {
		return s
	}
	s, _ := c.Issuer.(string)
	return s
}

// registeredClaims are the JWT claims of a request object that are about the object, not request parameters.
var registeredClaims = []string{"iss", "aud", "exp", "nbf", "iat", "jti", "sub"}

// requestObjectParams checks a verified request object's claims for clientID at issuer at now and returns the
// authorization request parameters it carries. A string claim is the parameter's value; a number or boolean its
// JSON text; an array of strings repeats the parameter (resource); an object (claims) is its JSON text. The
// parameters are returned whenever the payload could be read, with the error if a claim is not acceptable.
func requestObjectParams(payload []byte, clientID, issuer string, now time.Time) (url.Values, error) {
	var claims map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil || claims == nil || dec.More() {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's payload is not a JSON object.")
	}
	params := url.Values{}
	for k, raw := range claims {
		if slices.Contains(registeredClaims, k) {
			continue
		}
		if k == "request" || k == "request_uri" {
			return nil, fosite.ErrInvalidRequestObject.WithHintf("A request object must not contain '%s'.", k)
		}
		vals, err := paramValues(raw)
		if err != nil {
			return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's '%s' is %v.", k, err)
		}
		if vals != nil {
			params[k] = vals
		}
	}
	return params, checkRequestObjectClaims(claims, clientID, issuer, now)
}

func paramValues(raw json.RawMessage) ([]string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("not JSON")
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{x}, nil
	case json.Number:
		return []string{x.String()}, nil
	case bool:
		return []string{fmt.Sprint(x)}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("an array of something other than strings")
			}
			out = append(out, s)
		}
		return out, nil
	default: // an object: its JSON text, as OpenID Connect's claims parameter is sent
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, errors.New("not JSON")
		}
		return []string{buf.String()}, nil
	}
}

// checkRequestObjectClaims: iss and client_id are the client, aud names the issuer, exp is live and at most
// MaxRequestObjectLifetime away, nbf (if any) has passed.
func checkRequestObjectClaims(claims map[string]json.RawMessage, clientID, issuer string, now time.Time) error {
	str := func(k string) (string, bool) {
		var s string
		return s, json.Unmarshal(claims[k], &s) == nil && claims[k] != nil
	}
	if iss, ok := str("iss"); !ok || iss != clientID {
		return fosite.ErrInvalidRequestObject.WithHint("The request object's iss must be the client_id.")
	}
	if cid, ok := str("client_id"); !ok || cid != clientID {
		return fosite.ErrInvalidRequestObject.WithHint("The request object's client_id must be the client_id of the request.")
	}
	var aud []string
	if s, ok := str("aud"); ok {
		aud = []string{s}
	} else if claims["aud"] == nil || json.Unmarshal(claims["aud"], &aud) != nil {
		aud = nil
	}
	if !slices.Contains(aud, issuer) {
		return fosite.ErrInvalidRequestObject.WithHintf("The request object's aud must name this server's issuer, %s.", issuer)
	}
	exp, ok := numericDate(claims["exp"])
	switch {
	case !ok:
		return fosite.ErrInvalidRequestObject.WithHint("The request object must have an exp.")
	case !now.Before(exp):
		return fosite.ErrInvalidRequestObject.WithHint("The request object has expired.")
	case exp.After(now.Add(MaxRequestObjectLifetime)):
		return fosite.ErrInvalidRequestObject.WithHintf("The request object's exp is more than %s away; sign request objects that expire sooner.", MaxRequestObjectLifetime)
	}
	if raw, present := claims["nbf"]; present {
		nbf, ok := numericDate(raw)
		if !ok {
			return fosite.ErrInvalidRequestObject.WithHint("The request object's nbf is not a date.")
		}
		if nbf.After(now.Add(requestObjectClockSkew)) {
			return fosite.ErrInvalidRequestObject.WithHint("The request object is not valid yet (nbf).")
		}
	}
	return nil
}

// numericDate reads a JWT NumericDate (seconds since the epoch, fractions allowed) within a sane range.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	var n json.Number
	if raw == nil || json.Unmarshal(raw, &n) != nil {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}
