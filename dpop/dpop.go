// Package dpop verifies the proofs of possession of RFC 9449 (OAuth 2.0 Demonstrating Proof of Possession): a
// JWT the client signs with a key it holds and puts the public half in the header. A proof is checked alone here,
// against the request it came with; that its jti is spent once, which needs the database, is the caller's.
// It imports nothing of ours.
package dpop

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// HeaderName is the request header a proof travels in, and NonceHeader the response header of a server nonce.
const (
	HeaderName  = "DPoP"
	NonceHeader = "DPoP-Nonce"
	// Scheme is the Authorization scheme of a DPoP-bound access token (RFC 9449 §7.1).
	Scheme = "DPoP"
	// TokenType is the token_type of a bound access token in token and introspection responses.
	TokenType = "DPoP"
)

// Error codes of RFC 9449 (§5, §7.1, §8, §9).
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
)

// Algorithms are the asymmetric signature algorithms a proof may use: never none, never a MAC (the verifier
// would need the client's secret, and the key in the header would prove nothing).
var Algorithms = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512,
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
}

// AlgorithmNames are Algorithms as strings, in the same order: discovery's dpop_signing_alg_values_supported.
func AlgorithmNames() []string {
	out := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		out[i] = string(a)
	}
	return out
}

const (
	// DefaultWindow is how far a proof's iat may be from now, either way.
	DefaultWindow = 60 * time.Second
	// MaxJTILength bounds the jti a proof may carry, and so what the replay table holds.
	MaxJTILength = 64
	// maxProofLength bounds what is parsed at all: an RSA-4096 key in the header is well under it.
	maxProofLength = 8 << 10
)

// Error is a proof the server refuses: Code is CodeInvalidProof or CodeUseNonce, Description says why.
type Error struct {
	Code        string
	Description string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidProof, Description: fmt.Sprintf(format, args...)}
}

// Expect is what a proof must match: the request it came with.
type Expect struct {
	Method string // the request's HTTP method
	URL    string // the request's URL as the client addressed it (issuer + path); query and fragment are ignored
	// AccessToken, when the proof accompanies one (a resource request), must be what ath hashes.
	AccessToken string
	Now         time.Time
	Window      time.Duration // 0: DefaultWindow
	// Nonce, when not nil, must accept the proof's nonce claim (missing included): a false answer is
	// CodeUseNonce, so the client retries with the nonce the server sends.
	Nonce func(nonce string) bool
}

// Proof is a verified proof.
type Proof struct {
	JKT string    // base64url of the RFC 7638 SHA-256 thumbprint of the proof's key
	JTI string    // the proof's identifier, to be spent once
	IAT time.Time // when the client made it
	// SpendUntil is how long the jti must stay recorded: past it, the iat check refuses the proof anyway.
	SpendUntil time.Time
}

type claims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   *string         `json:"ath"`
	Nonce *string         `json:"nonce"`
}

// Verify checks a compact proof against the request (RFC 9449 §4.3) and returns it with its key's thumbprint.
// Every refusal is an *Error.
func Verify(proof string, want Expect) (*Proof, error) {
	if proof == "" {
		return nil, invalid("The DPoP proof is missing.")
	}
	if len(proof) > maxProofLength {
		return nil, invalid("The DPoP proof is too large.")
	}
	jws, err := jose.ParseSignedCompact(proof, Algorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, invalid("The DPoP proof is not a JWS signed with an asymmetric algorithm (%s).", strings.Join(AlgorithmNames(), ", "))
	}
	hdr := jws.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "dpop+jwt") {
		return nil, invalid("The DPoP proof's typ must be dpop+jwt.")
	}
	jwk := hdr.JSONWebKey
	if jwk == nil || !jwk.Valid() {
		return nil, invalid("The DPoP proof must carry its public key in the jwk header.")
	}
	if !jwk.IsPublic() {
		return nil, invalid("The DPoP proof's jwk must be a public key, without private members.")
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, invalid("The DPoP proof's signature does not verify with its jwk.")
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalid("The DPoP proof's claims are not a JSON object of the right types.")
	}
	if c.JTI == "" || len(c.JTI) > MaxJTILength {
		return nil, invalid("The DPoP proof needs a jti of 1 to %d characters.", MaxJTILength)
	}
	if c.HTM != want.Method {
		return nil, invalid("The DPoP proof's htm is not this request's method.")
	}
	if !SameURL(c.HTU, want.URL) {
		return nil, invalid("The DPoP proof's htu is not this request's URL.")
	}
	window := want.Window
	if window <= 0 {
		window = DefaultWindow
	}
	iat, ok := unixTime(c.IAT)
	if !ok {
		return nil, invalid("The DPoP proof needs an iat in seconds since the epoch.")
	}
	if d := want.Now.Sub(iat); d > window || d < -window {
		return nil, invalid("The DPoP proof's iat is more than %s from the server's clock.", window)
	}
	if want.AccessToken != "" {
		if c.ATH == nil || subtle.ConstantTimeCompare([]byte(*c.ATH), []byte(AccessTokenHash(want.AccessToken))) != 1 {
			return nil, invalid("The DPoP proof's ath is not the hash of the access token presented.")
		}
	}
	if want.Nonce != nil {
		nonce := ""
		if c.Nonce != nil {
			nonce = *c.Nonce
		}
		if !want.Nonce(nonce) {
			return nil, &Error{Code: CodeUseNonce, Description: "Authorization server requires nonce in DPoP proof."}
		}
	}
	jkt, err := Thumbprint(jwk)
	if err != nil {
		return nil, invalid("The DPoP proof's jwk has no thumbprint.")
	}
	return &Proof{JKT: jkt, JTI: c.JTI, IAT: iat, SpendUntil: iat.Add(window)}, nil
}

// Thumbprint is the base64url RFC 7638 SHA-256 thumbprint of a key: a proof's jkt, a token's cnf.jkt.
func Thumbprint(jwk *jose.JSONWebKey) (string, error) {
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// AccessTokenHash is a proof's ath for an access token: base64url of its SHA-256.
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// unixTime reads a JSON number of seconds; fractions are allowed and dropped.
func unixTime(raw json.RawMessage) (time.Time, bool) {
	var f float64
	if len(raw) == 0 || json.Unmarshal(raw, &f) != nil || f <= 0 || f > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// SameURL compares htu with the request's URL as RFC 9449 §4.3 says: without query and fragment, after the
// syntax-based normalisation of RFC 3986 §6.2.2 and §6.2.3 (case of scheme and host, default port, empty path).
func SameURL(htu, want string) bool {
	a, err := normalise(htu)
	if err != nil {
		return false
	}
	b, err := normalise(want)
	return err == nil && a == b
}

var errNotAbsolute = errors.New("not an absolute http(s) URL")

func normalise(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "https" && scheme != "http") || u.Host == "" || u.User != nil {
		return "", errNotAbsolute
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}
