package passkey

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/latchkey/latchkey/models"
)

// An ES256 software authenticator, just enough to register and assert (the e2e tests have the full one).
type benchKey struct {
	key    *ecdsa.PrivateKey
	id     []byte
	handle []byte
	count  uint32
}

func authenticatorData(rpID string, flags byte, count uint32, attested []byte) []byte {
	h := sha256.Sum256([]byte(rpID))
	out := append(append([]byte{}, h[:]...), flags)
	return append(binary.BigEndian.AppendUint32(out, count), attested...)
}

func (k *benchKey) respond(b *testing.B, begun *Begun, origin string) []byte {
	b.Helper()
	raw, _ := json.Marshal(begun.Options)
	var o struct {
		PublicKey struct {
			Challenge string              `json:"challenge"`
			RP        struct{ ID string } `json:"rp"`
			RPID      string              `json:"rpId"`
			User      struct{ ID string } `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		b.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	if o.PublicKey.User.ID != "" { // a registration
		k.handle, _ = base64.RawURLEncoding.DecodeString(o.PublicKey.User.ID)
		cd, _ := json.Marshal(map[string]any{"type": "webauthn.create", "challenge": o.PublicKey.Challenge, "origin": origin})
		cose, _ := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: k.key.X.FillBytes(make([]byte, 32)), -3: k.key.Y.FillBytes(make([]byte, 32))})
		att := binary.BigEndian.AppendUint16(make([]byte, 16), uint16(len(k.id)))
		att = append(append(att, k.id...), cose...)
		ao, _ := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authenticatorData(o.PublicKey.RP.ID, 0x45, 0, att)})
		out, _ := json.Marshal(map[string]any{"id": enc(k.id), "rawId": enc(k.id), "type": "public-key",
			"response": map[string]any{"clientDataJSON": enc(cd), "attestationObject": enc(ao)}})
		return out
	}
	k.count++
	ad := authenticatorData(o.PublicKey.RPID, 0x05, k.count, nil)
	cd, _ := json.Marshal(map[string]any{"type": "webauthn.get", "challenge": o.PublicKey.Challenge, "origin": origin})
	cdh := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	out, _ := json.Marshal(map[string]any{"id": enc(k.id), "rawId": enc(k.id), "type": "public-key",
		"response": map[string]any{"clientDataJSON": enc(cd), "authenticatorData": enc(ad), "signature": enc(sig), "userHandle": enc(k.handle)}})
	return out
}

func benchStores(b *testing.B) map[string]string {
	urls := map[string]string{"sqlite": "sqlite://" + filepath.Join(b.TempDir(), "bench.db")}
	if base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL"); base != "" {
		db, err := sql.Open("pgx", base)
		if err != nil {
			b.Fatal(err)
		}
		var r [6]byte
		_, _ = rand.Read(r[:])
		schema := "lk_bench_" + hex.EncodeToString(r[:])
		if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE"); db.Close() })
		urls["postgres"] = fmt.Sprintf("%s&search_path=%s", base, schema)
	}
	return urls
}

// BenchmarkAssertionVerify is a passkey answering a second-factor challenge: "signature" is go-webauthn's
// verification of the assertion alone (client data, authenticator data, ES256 signature), "finish/<db>" the
// whole finish as served — take the ceremony (DELETE ... RETURNING), load the passkey, verify, and record the
// counter (conditional UPDATE). Beginning the ceremony and signing the assertion are outside the timer.
func BenchmarkAssertionVerify(b *testing.B) {
	ctx := context.Background()
	const origin = "https://id.example.com"
	for name, url := range benchStores(b) {
		s, err := models.Open(ctx, url, models.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		if err := s.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		u, err := s.CreateUserWith(ctx, models.NewUser{Email: "ada@example.com", Password: "violet-tractor-47"})
		if err != nil {
			b.Fatal(err)
		}
		rp, err := New(Config{Issuer: origin}, s)
		if err != nil {
			b.Fatal(err)
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		k := &benchKey{key: key, id: []byte("bench-credential-" + name)}
		begun, err := rp.BeginRegistration(ctx, u)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rp.FinishRegistration(ctx, u, "bench", k.respond(b, begun, origin)); err != nil {
			b.Fatal(err)
		}
		if name == "sqlite" {
			b.Run("signature", func(b *testing.B) {
				a, err := rp.accountOf(ctx, u.ID, u.Email, "")
				if err != nil {
					b.Fatal(err)
				}
				_, session, err := rp.wa.BeginLogin(a)
				if err != nil {
					b.Fatal(err)
				}
				body := k.respond(b, &Begun{Options: map[string]any{"publicKey": map[string]any{"challenge": session.Challenge, "rpId": "id.example.com"}}}, origin)
				parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := rp.wa.ValidateLogin(a, *session, parsed); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run("finish/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				begun, err := rp.BeginSecondFactor(ctx, u.ID, "bench")
				if err != nil {
					b.Fatal(err)
				}
				body := k.respond(b, begun, origin)
				b.StartTimer()
				if _, err := rp.FinishSecondFactor(ctx, u.ID, "bench", body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
