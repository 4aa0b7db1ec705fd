package provider

import (
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

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/keys"
)

// client_secret_jwt client authentication (RFC 7523 §2.2 with an HMAC, OpenID Connect Core §9): the client signs
// its assertion with its own secret. fosite v0.49.0 refuses HMAC-signed assertions, and Latchkey keeps a client
// secret only hashed, so a client_secret_jwt client's secret is also kept sealed (ClientSecretSealer), and this
// file verifies its assertions before fosite sees them, by the rules fosite applies to private_key_jwt.

// AuthMethodClientSecretJWT is the token endpoint auth method of a client that signs assertions with its secret.
const AuthMethodClientSecretJWT = "client_secret_jwt"

// secretAssertionAlgs are the algorithms a client_secret_jwt assertion may be MACed with; the first is the
// default. models.ClientSecretJWTSigningAlgs is the rule a registration obeys (e2e's discovery test holds the two
// equal).
var secretAssertionAlgs = []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512}

// MinClientSecretJWTLength is the shortest secret a client_secret_jwt client may have: an HMAC key is at least
// as long as the hash output (RFC 7518 §3.2), and 64 octets serve HS512 too. Generated ones are that long.
const MinClientSecretJWTLength = 64

// ErrSecretTooShortForJWT is returned for an operator-chosen client_secret_jwt secret below
// MinClientSecretJWTLength.
var ErrSecretTooShortForJWT = fmt.Errorf("a client_secret_jwt client's secret must be at least %d characters (its octets are the HMAC key of HS512 too)", MinClientSecretJWTLength)

// GenerateClientSecretJWT returns a new secret for a client_secret_jwt client: 512 random bits.
func GenerateClientSecretJWT() string { return generateSecret(64) }

// CheckClientSecretJWT refuses an operator-chosen client_secret_jwt secret too short to key every HS alg.
func CheckClientSecretJWT(secret string) error {
	if len(secret) < MinClientSecretJWTLength {
		return ErrSecretTooShortForJWT
	}
	return nil
}

// ClientSecretSealer keeps a client_secret_jwt client's secret at rest: AES-256-GCM (keys.Sealer) under a key
// derived from the system secret for this use alone, bound to the client id, so a sealed secret copied onto
// another client's row does not open.
type ClientSecretSealer struct {
	sealer *keys.Sealer
}

// NewClientSecretSealer derives the sealing key from the system secret.
func NewClientSecretSealer(systemSecret []byte) *ClientSecretSealer {
	s, err := keys.NewSealer(keys.Derive(systemSecret, "client_secret_jwt v1"))
	if err != nil {
		// Derive always returns 32 bytes, which NewSealer accepts: this cannot happen.
		panic(fmt.Sprintf("provider: client secret sealer: %v", err))
	}
	return &ClientSecretSealer{sealer: s}
}

func sealedSecretAAD(clientID string) []byte {
	return []byte("latchkey/client_secret_jwt/v1\x00" + clientID)
}

// Seal returns secret sealed for client clientID, base64url-encoded (models.Client.SealedSecret).
func (s *ClientSecretSealer) Seal(clientID, secret string) (string, error) {
	b, err := s.sealer.Seal([]byte(secret), sealedSecretAAD(clientID))
	if err != nil {
		return "", fmt.Errorf("seal client secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Open returns the secret Seal sealed for clientID; an error if sealed is not that (another client's, altered,
// or sealed under another system secret).
func (s *ClientSecretSealer) Open(clientID, sealed string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return nil, errors.New("open client secret: not base64url")
	}
	secret, err := s.sealer.Open(b, sealedSecretAAD(clientID))
	if err != nil {
		return nil, fmt.Errorf("open client secret: %w", err)
	}
	return secret, nil
}

// sealedSecretClient is a client that may keep its secret sealed; models.Client is one.
type sealedSecretClient interface {
	fosite.OpenIDConnectClient
	// GetSealedSecret is the client's secret as ClientSecretSealer.Seal returned it; "" for none.
	GetSealedSecret() string
}

// secretAssertions verifies client_secret_jwt assertions.
type secretAssertions struct {
	clients   fosite.ClientManager // the client, read fresh; the jti, recorded once
	sealer    *ClientSecretSealer
	audiences []string
	// now is the wall clock, which fosite checks private_key_jwt assertions' exp against.
	now func() time.Time
}

// wrap answers a jwt-bearer client assertion whose header names an HMAC alg itself, and passes every other
// request to next (fosite's strategy, which refuses an HMAC assertion, and also a client_secret_jwt client that
// presents an assertion signed otherwise).
func (v *secretAssertions) wrap(next fosite.ClientAuthenticationStrategy) fosite.ClientAuthenticationStrategy {
	return func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		if form.Get("client_assertion_type") != clientAssertionType {
			return next(ctx, r, form)
		}
		assertion := form.Get("client_assertion")
		alg, ok := hmacHeaderAlg(assertion)
		if !ok {
			return next(ctx, r, form)
		}
		return v.authenticate(ctx, form, assertion, alg)
	}
}

// hmacHeaderAlg is the alg of a compact JWS's header, if it is one of secretAssertionAlgs. It reads the header
// unverified, only to choose the verifier.
func hmacHeaderAlg(assertion string) (jose.SignatureAlgorithm, bool) {
	head, _, ok := strings.Cut(assertion, ".")
	if !ok {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return "", false
	}
	alg := jose.SignatureAlgorithm(h.Alg)
	return alg, slices.Contains(secretAssertionAlgs, alg)
}

// refuseAssertion is the answer to an assertion that does not authenticate its client: invalid_client (RFC 7523
// §3.2), with a hint the client may read.
func refuseAssertion(hint string, cause error) error {
	err := fosite.ErrInvalidClient.WithHint(hint)
	if cause != nil {
		err = err.WithWrap(cause).WithDebug(cause.Error())
	}
	return err
}

// authenticate verifies an HMAC-signed assertion as fosite verifies private_key_jwt ones: the client is the
// form's client_id, else the assertion's sub; it is a client_secret_jwt client and the alg is the one it
// registered; the MAC is its secret's; iss and sub are its id; aud names the token endpoint or the issuer; exp is
// set, not past and at most MaxClientAssertionLifetime away (nbf and iat, when set, not in the future); the jti is
// set and recorded once (models.Store.SetClientAssertionJWT: single-use across nodes until exp). The jti is
// recorded last, so only an assertion that passes everything else spends it. A database fault stays one: the
// store noted it (faults), and the endpoint answers 503.
func (v *secretAssertions) authenticate(ctx context.Context, form url.Values, assertion string, alg jose.SignatureAlgorithm) (fosite.Client, error) {
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{alg})
	if err != nil {
		return nil, refuseAssertion("The client assertion is not a compact JWS.", err)
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, refuseAssertion("The client assertion's claims are not a JSON object.", err)
	}
	clientID := form.Get("client_id")
	if clientID == "" {
		clientID = unverified.Subject
	}
	if clientID == "" {
		return nil, refuseAssertion("The claim 'sub' from the client_assertion JSON Web Token is undefined.", nil)
	}
	c, err := v.clients.GetClient(ctx, clientID)
	if err != nil {
		return nil, refuseAssertion("The client could not be authenticated.", err)
	}
	sc, ok := c.(sealedSecretClient)
	switch {
	case !ok || sc.GetTokenEndpointAuthMethod() != AuthMethodClientSecretJWT:
		// Among them a private_key_jwt client: an HMAC keyed with its public key proves nothing.
		return nil, refuseAssertion("This client does not authenticate with client_secret_jwt; the assertion's alg names an HMAC.", nil)
	case sc.GetTokenEndpointAuthSigningAlgorithm() != string(alg):
		return nil, refuseAssertion(fmt.Sprintf("The client assertion uses signing algorithm '%s' but the client enforces '%s'.", alg, sc.GetTokenEndpointAuthSigningAlgorithm()), nil)
	}
	secret, err := v.sealer.Open(clientID, sc.GetSealedSecret())
	if err != nil {
		return nil, refuseAssertion("The client could not be authenticated.", err)
	}
	var claims jwt.Claims
	if err := tok.Claims(secret, &claims); err != nil { // go-jose compares the MAC in constant time
		return nil, refuseAssertion("Unable to verify the integrity of the 'client_assertion' value.", err)
	}
	now, audiences := v.now(), assertionAudiences(ctx, v.audiences)
	switch {
	case claims.Issuer != clientID:
		return nil, refuseAssertion("Claim 'iss' from 'client_assertion' must match the 'client_id' of the OAuth 2.0 Client.", nil)
	case claims.Subject != clientID:
		return nil, refuseAssertion("Claim 'sub' from 'client_assertion' must match the 'client_id' of the OAuth 2.0 Client.", nil)
	case !slices.ContainsFunc(audiences, claims.Audience.Contains):
		return nil, refuseAssertion(fmt.Sprintf("Claim 'audience' from 'client_assertion' must match the authorization server's token endpoint '%s'.", strings.Join(audiences, "' or '")), nil)
	case claims.Expiry == nil:
		return nil, refuseAssertion("Claim 'exp' from 'client_assertion' must be set.", nil)
	case !now.Before(claims.Expiry.Time()):
		return nil, refuseAssertion("The client assertion has expired.", nil)
	case claims.Expiry.Time().After(now.Add(MaxClientAssertionLifetime)):
		return nil, refuseAssertion(fmt.Sprintf("The client assertion's exp is more than %s away; sign assertions that expire sooner.", MaxClientAssertionLifetime), nil)
	case claims.NotBefore != nil && claims.NotBefore.Time().After(now):
		return nil, refuseAssertion("The client assertion is not valid yet (nbf).", nil)
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now):
		return nil, refuseAssertion("The client assertion was issued in the future (iat).", nil)
	case claims.ID == "":
		return nil, refuseAssertion("Claim 'jti' from 'client_assertion' must be set but is not.", nil)
	}
	if err := v.clients.SetClientAssertionJWT(ctx, claims.ID, claims.Expiry.Time()); errors.Is(err, fosite.ErrJTIKnown) {
		return nil, refuseAssertion("Claim 'jti' from 'client_assertion' MUST only be used once.", err)
	} else if err != nil {
		return nil, refuseAssertion("The client assertion's jti could not be recorded.", err)
	}
	return c, nil
}

// StoredSecret is how a client's secret is kept: its hash (Hasher), and for a client_secret_jwt client (sealed)
// the secret sealed for clientID too (Sealer); "" otherwise.
func (p *Provider) StoredSecret(clientID, secret string, sealed bool) (hash, sealedSecret string, err error) {
	if sealed {
		if sealedSecret, err = p.Sealer.Seal(clientID, secret); err != nil {
			return "", "", err
		}
	}
	return p.Hasher.HashSecret(secret), sealedSecret, nil
}
