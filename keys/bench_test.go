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

// BenchmarkPublicKey measures verification's key lookup: a known kid reads the snapshot; an unknown one (a
// token with a made-up kid) costs a store reload at most once per UnknownKIDReloadGap, so in steady state it
// is a mutex and a clock read.
func BenchmarkPublicKey(b *testing.B) {
	store := &fakeStore{}
	m := loadedManager(b, store, newClock())
	known, err := m.SigningKey(RS256)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, kid string }{{"known", known.KeyID}, {"unknown", "made-up-kid"}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, ok := m.PublicKey(bc.kid); ok != (bc.kid == known.KeyID) {
						b.Fatalf("PublicKey(%s) found = %v", bc.name, ok)
					}
				}
			})
		})
	}
	if n := store.listCount(); n > 3 {
		b.Fatalf("%d store reads: unknown kids were not rate limited", n)
	}
}
