package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// generate makes a new key for alg and returns its row, private half sealed under the key id.
func (m *Manager) generate(alg string, now time.Time) (Record, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, m.opts.RSABits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return Record{}, fmt.Errorf("generate signing key: unsupported algorithm %q", alg)
	}
	if err != nil {
		return Record{}, fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	jwk := jose.JSONWebKey{Key: priv, Algorithm: alg, Use: "sig"}
	kid, err := thumbprint(&jwk)
	if err != nil {
		return Record{}, fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	jwk.KeyID = kid
	pub := jwk.Public()
	pubJSON, err := pub.MarshalJSON()
	if err != nil {
		return Record{}, fmt.Errorf("generate %s signing key: encode public key: %w", alg, err)
	}
	privJSON, err := jwk.MarshalJSON()
	if err != nil {
		return Record{}, fmt.Errorf("generate %s signing key: encode private key: %w", alg, err)
	}
	defer clear(privJSON)
	sealed, err := m.sealer.Seal(privJSON, []byte(kid))
	if err != nil {
		return Record{}, fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	return Record{
		KID:           kid,
		Alg:           alg,
		PublicJWK:     pubJSON,
		SealedPrivate: sealed,
		// Microseconds: what PostgreSQL keeps, so the row reads back equal to what we wrote.
		CreatedAt: now.UTC().Truncate(time.Microsecond),
	}, nil
}

// thumbprint returns the RFC 7638 SHA-256 thumbprint of k's public key, base64url without padding.
func thumbprint(k *jose.JSONWebKey) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// parsePublic decodes the public JWK of rec and checks it is public and belongs to rec.
func parsePublic(rec Record) (*jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(rec.PublicJWK); err != nil {
		return nil, fmt.Errorf("parse public %s key %s: %w", rec.Alg, rec.KID, err)
	}
	if !k.IsPublic() {
		return nil, fmt.Errorf("public %s key %s: stored public JWK holds private material", rec.Alg, rec.KID)
	}
	if err := checkKey(&k, rec); err != nil {
		return nil, fmt.Errorf("public %s key %s: %w", rec.Alg, rec.KID, err)
	}
	return &k, nil
}

// checkKey verifies that k is a valid key of the type rec.Alg needs, labelled with rec's kid, alg and use=sig,
// and that rec.KID is its thumbprint.
func checkKey(k *jose.JSONWebKey, rec Record) error {
	if !k.Valid() {
		return errors.New("invalid key")
	}
	if k.KeyID != rec.KID || k.Algorithm != rec.Alg || k.Use != "sig" {
		return fmt.Errorf("JWK labelled kid=%q alg=%q use=%q does not match the row", k.KeyID, k.Algorithm, k.Use)
	}
	switch rec.Alg {
	case RS256:
		var bits int
		switch key := k.Key.(type) {
		case *rsa.PublicKey:
			bits = key.N.BitLen()
		case *rsa.PrivateKey:
			bits = key.N.BitLen()
		default:
			return fmt.Errorf("RS256 needs an RSA key, got %T", k.Key)
		}
		if bits < 2048 {
			return fmt.Errorf("RSA key has %d bits, need at least 2048", bits)
		}
	case ES256:
		var curve elliptic.Curve
		switch key := k.Key.(type) {
		case *ecdsa.PublicKey:
			curve = key.Curve
		case *ecdsa.PrivateKey:
			curve = key.Curve
		default:
			return fmt.Errorf("ES256 needs an ECDSA key, got %T", k.Key)
		}
		if curve != elliptic.P256() {
			return errors.New("ES256 needs a P-256 key")
		}
	default:
		return fmt.Errorf("unsupported algorithm %q", rec.Alg)
	}
	tp, err := thumbprint(k)
	if err != nil {
		return err
	}
	if tp != rec.KID {
		return fmt.Errorf("kid is not the key's RFC 7638 thumbprint %s", tp)
	}
	return nil
}
