package keys

import (
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

var benchPayload = []byte(`{"iss":"https://latchkey.example","sub":"alice","aud":"app","exp":1893456000,"iat":1893452400}`)

// BenchmarkSigningKey measures the hot path every token issuance takes: an atomic load and a struct copy.
func BenchmarkSigningKey(b *testing.B) {
	m := loadedManager(b, &fakeStore{}, newClock())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.SigningKey(RS256); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSignRS256(b *testing.B) { benchmarkSign(b, RS256) }
func BenchmarkSignES256(b *testing.B) { benchmarkSign(b, ES256) }

// benchmarkSign signs a small JWT the way the provider does: fetch the key, make a signer, sign, serialize.
func benchmarkSign(b *testing.B, alg string) {
	m := loadedManager(b, &fakeStore{}, newClock())
	opts := (&jose.SignerOptions{}).WithType("JWT")
	b.ReportAllocs()
	for b.Loop() {
		key, err := m.SigningKey(alg)
		if err != nil {
			b.Fatal(err)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
		if err != nil {
			b.Fatal(err)
		}
		obj, err := s.Sign(benchPayload)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := obj.CompactSerialize(); err != nil {
			b.Fatal(err)
		}
	}
}
