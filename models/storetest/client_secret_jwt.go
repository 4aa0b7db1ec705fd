package storetest

import (
	"errors"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

// testClientSecretJWT: a client_secret_jwt client is stored with its secret hashed and sealed, read back as the
// provider reads it and never from the client cache; a new secret is re-sealed; a client moving away loses its
// sealed secret, and one moving to client_secret_jwt needs a new secret in the same update. No other client ever
// holds a sealed secret. (The sealed values here are opaque text: sealing is the provider's.)
func testClientSecretJWT(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	stored := func(id string) *models.Client {
		t.Helper()
		c, err := s.ClientByID(ctx, id)
		must(t, "read "+id, err)
		return c
	}
	wantSecret := func(what, id, hash, sealed string) {
		t.Helper()
		if c := stored(id); c.SecretHash != hash || c.SealedSecret != sealed {
			t.Fatalf("%s: secret hash %q, sealed %q; want %q, %q", what, c.SecretHash, c.SealedSecret, hash, sealed)
		}
	}
	wantInvalid := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, models.ErrInvalid) {
			t.Fatalf("%s: %v, want ErrInvalid", what, err)
		}
	}
	c := &models.Client{ID: "hs", GrantTypes: []string{"client_credentials"}, TokenEndpointAuthMethod: models.AuthMethodClientSecretJWT}
	wantInvalid("create without a sealed secret", s.CreateClient(ctx, c))
	c.SealedSecret = "sealed-1"
	wantInvalid("create without a secret hash", s.CreateClient(ctx, c))
	c.SecretHash = "hash-1"
	must(t, "create", s.CreateClient(ctx, c))
	wantSecret("after create", "hs", "hash-1", "sealed-1")

	cctx, check := s.WithClientCache(ctx)
	for range 2 { // the second read would come from the cache if client_secret_jwt clients were cached
		fc, err := s.GetClient(cctx, "hs")
		must(t, "GetClient", err)
		if sc, ok := fc.(interface{ GetSealedSecret() string }); !ok || sc.GetSealedSecret() != "sealed-1" ||
			fc.(fosite.OpenIDConnectClient).GetTokenEndpointAuthSigningAlgorithm() != "HS256" {
			t.Fatalf("GetClient = %+v, want the sealed secret and HS256", fc)
		}
	}
	if check.Used() {
		t.Error("a client_secret_jwt client was answered from the client cache")
	}

	must(t, "rotate", s.UpdateClientSecret(ctx, "hs", "hash-2", "sealed-2"))
	wantSecret("after rotation", "hs", "hash-2", "sealed-2")
	wantInvalid("rotate without sealing", s.UpdateClientSecret(ctx, "hs", "hash-3", ""))
	wantSecret("after a refused rotation", "hs", "hash-2", "sealed-2")

	c = stored("hs")
	c.TokenEndpointAuthSigningAlg = "HS512"
	must(t, "update keeping the method", s.UpdateClient(ctx, c))
	wantSecret("after an update keeping the method", "hs", "hash-2", "sealed-2")

	c.TokenEndpointAuthMethod, c.TokenEndpointAuthSigningAlg = models.AuthMethodClientSecretBasic, ""
	must(t, "switch to client_secret_basic", s.UpdateClient(ctx, c))
	if c.SealedSecret != "" {
		t.Error("UpdateClient left the sealed secret on the client it returned")
	}
	wantSecret("after switching away", "hs", "hash-2", "")
	wantInvalid("seal the secret of a client_secret_basic client", s.UpdateClientSecret(ctx, "hs", "hash-3", "sealed-3"))
	wantSecret("after a refused sealing", "hs", "hash-2", "")

	c.TokenEndpointAuthMethod = models.AuthMethodClientSecretJWT
	wantInvalid("switch back without a new secret", s.UpdateClient(ctx, c))
	if got := stored("hs"); got.TokenEndpointAuthMethod != models.AuthMethodClientSecretBasic {
		t.Fatalf("a refused switch changed the method to %s", got.TokenEndpointAuthMethod)
	}
	c.SecretHash, c.SealedSecret = "hash-4", "sealed-4"
	must(t, "switch back with a new secret", s.UpdateClientAndSecret(ctx, c))
	wantSecret("after switching back", "hs", "hash-4", "sealed-4")

	basic := &models.Client{ID: "basic", GrantTypes: []string{"client_credentials"}, SecretHash: "hash-b", SealedSecret: "sealed-b"}
	wantInvalid("create a client_secret_basic client with a sealed secret", s.CreateClient(ctx, basic))
	basic.SealedSecret = ""
	must(t, "create a client_secret_basic client", s.CreateClient(ctx, basic))
	basic.SealedSecret = "sealed-b"
	wantInvalid("give a client_secret_basic client a sealed secret", s.UpdateClientAndSecret(ctx, basic))
	must(t, "UpdateClient writes no secret", s.UpdateClient(ctx, basic))
	wantSecret("after updates", "basic", "hash-b", "")
}
