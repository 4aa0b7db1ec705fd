package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/models"
)

// clientCases: clients created, read, listed, updated and deleted, what deleting takes along, and their origins
// (pools, encryption settings and full updates are in client_settings.go).
func clientCases() []testCase {
	return []testCase{
		{"clients create, get, list, update secret", testClientsCRUD},
		{"clients duplicate id is ErrConflict", testClientDuplicate},
		{"clients unknown id is not found", testClientNotFound},
		{"clients invalid fields are ErrInvalid", testClientInvalid},
		{"clients delete removes every token issued to the client", testClientDeleteCascades},
		{"clients origins come from redirect URIs and allowed origins", testClientOrigins},
		{"clients allowed origin that is not an origin is ErrInvalid and writes nothing", testClientOriginsInvalid},
		{"clients delete removes consents given to the client", testClientDeleteConsents},
		{"clients with keys round trip and are read fresh", testClientKeys},
		{"client_secret_jwt clients keep a sealed secret, and only they", testClientSecretJWT},
	}
}

func testClientsCRUD(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	before := time.Now().Add(-time.Second)
	a := mustClient(t, s, "b-app")
	if a.CreatedAt.Before(before) || !a.UpdatedAt.Equal(a.CreatedAt) {
		t.Errorf("timestamps not set: %v %v", a.CreatedAt, a.UpdatedAt)
	}
	pub := &models.Client{ID: "a-spa", Public: true, RedirectURIs: []string{"http://localhost/cb"}, AccessTokenFormat: "jwt"}
	must(t, "create public", s.CreateClient(ctx, pub))

	got, err := s.ClientByID(ctx, "b-app")
	must(t, "ClientByID", err)
	if !reflect.DeepEqual(got.RedirectURIs, a.RedirectURIs) || !reflect.DeepEqual(got.Scopes, a.Scopes) ||
		!reflect.DeepEqual(got.Audience, a.Audience) || got.SecretHash != a.SecretHash || got.Name != a.Name ||
		!got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("ClientByID = %+v, want %+v", got, a)
	}
	fc, err := s.GetClient(ctx, "b-app")
	must(t, "GetClient", err)
	oidcClient, ok := fc.(fosite.OpenIDConnectClient)
	if !ok || oidcClient.GetTokenEndpointAuthMethod() != "client_secret_basic" {
		t.Errorf("confidential client auth method = %v", fc)
	}
	if string(fc.GetHashedSecret()) != "hash-of-b-app" || fc.IsPublic() {
		t.Errorf("GetClient secret/public = %q/%v", fc.GetHashedSecret(), fc.IsPublic())
	}
	gt := fc.GetGrantTypes()
	gt[0] = "mutated"
	if fc.GetGrantTypes()[0] != "authorization_code" {
		t.Error("GetGrantTypes returned the client's own slice")
	}
	if _, ok := fc.(fosite.ResponseModeClient); !ok {
		t.Error("client is not a fosite.ResponseModeClient")
	}
	pc, err := s.GetClient(ctx, "a-spa")
	must(t, "GetClient public", err)
	if pc.(fosite.OpenIDConnectClient).GetTokenEndpointAuthMethod() != "none" || !pc.IsPublic() ||
		pc.(*models.Client).AccessTokenFormat != "jwt" {
		t.Errorf("public client = %+v", pc)
	}

	list, err := s.ListClients(ctx)
	must(t, "ListClients", err)
	if len(list) != 2 || list[0].ID != "b-app" || list[1].ID != "a-spa" {
		t.Errorf("ListClients order = %v, want creation order [b-app a-spa]", clientIDs(list))
	}

	must(t, "UpdateClientSecret", s.UpdateClientSecret(ctx, "b-app", "new-hash", ""))
	got, err = s.ClientByID(ctx, "b-app")
	must(t, "ClientByID after update", err)
	if got.SecretHash != "new-hash" || got.UpdatedAt.Before(got.CreatedAt) {
		t.Errorf("after UpdateClientSecret: %+v", got)
	}
	wantNotFound(t, "UpdateClientSecret unknown", s.UpdateClientSecret(ctx, "nope", "x", ""))
}

func testClientDuplicate(t *testing.T, s *models.Store) {
	mustClient(t, s, "app")
	err := s.CreateClient(ctxT(t), &models.Client{ID: "app"})
	if !errors.Is(err, models.ErrConflict) {
		t.Errorf("duplicate CreateClient: %v, want models.ErrConflict", err)
	}
}

func testClientNotFound(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	_, err := s.GetClient(ctx, "nope")
	wantNotFound(t, "GetClient", err)
	_, err = s.ClientByID(ctx, "nope")
	if !errors.Is(err, models.ErrNotFound) {
		t.Errorf("ClientByID: %v, want models.ErrNotFound", err)
	}
	wantNotFound(t, "DeleteClient", s.DeleteClient(ctx, "nope"))
}

func testClientInvalid(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	for _, c := range []*models.Client{
		{ID: ""},
		{ID: "x", TokenEndpointAuthMethod: "private_key_jwt_typo"},
		{ID: "y", AccessTokenFormat: "jwe"},
	} {
		if err := s.CreateClient(ctx, c); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("CreateClient(%+v): %v, want models.ErrInvalid", c, err)
		}
	}
}

func testClientDeleteCascades(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	a := mustClient(t, s, "a")
	b := mustClient(t, s, "b")
	kinds := tokenKinds()
	exp := time.Now().Add(time.Hour)
	for _, k := range kinds {
		must(t, "create "+k.name+" for a", k.create(ctx, s, "a-"+k.name, newRequest(a, "ga", "usr_alice", exp)))
		must(t, "create "+k.name+" for b", k.create(ctx, s, "b-"+k.name, newRequest(b, "gb", "usr_alice", exp)))
	}
	must(t, "DeleteClient", s.DeleteClient(ctx, "a"))
	_, err := s.ClientByID(ctx, "a")
	wantNotFound(t, "deleted client", err)
	for _, k := range kinds {
		_, err := k.get(ctx, s, "a-"+k.name)
		wantNotFound(t, k.name+" of deleted client", err)
		_, err = k.get(ctx, s, "b-"+k.name)
		must(t, k.name+" of other client", err)
	}
}

func clientIDs(cs []models.Client) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func testClientOrigins(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	spa := &models.Client{
		ID: "spa", Public: true, FirstParty: true,
		RedirectURIs: []string{
			"https://App.Example:443/callback?x=1", "http://localhost:8080/cb", "com.example.app:/oauth2redirect",
			"https://app.example/other",
		},
		PostLogoutRedirectURIs: []string{"https://app.example/bye"},
		AllowedOrigins:         []string{"HTTPS://Admin.Example:8443", "http://[::1]:3000", "https://admin.example:8443"},
	}
	must(t, "CreateClient spa", s.CreateClient(ctx, spa))
	must(t, "CreateClient other", s.CreateClient(ctx, &models.Client{ID: "other", RedirectURIs: []string{"https://other.example/cb"}}))
	if want := []string{"https://admin.example:8443", "http://[::1]:3000"}; !reflect.DeepEqual(spa.AllowedOrigins, want) {
		t.Errorf("normalised AllowedOrigins = %q, want %q", spa.AllowedOrigins, want)
	}
	got, err := s.ClientByID(ctx, "spa")
	must(t, "ClientByID", err)
	if !got.FirstParty || !reflect.DeepEqual(got.PostLogoutRedirectURIs, spa.PostLogoutRedirectURIs) ||
		!reflect.DeepEqual(got.AllowedOrigins, spa.AllowedOrigins) {
		t.Errorf("ClientByID = %+v", got)
	}
	plain, err := s.ClientByID(ctx, "other")
	must(t, "ClientByID other", err)
	if plain.FirstParty || plain.AllowedOrigins == nil || plain.PostLogoutRedirectURIs == nil {
		t.Errorf("defaults = %+v, want not first party, empty lists", plain)
	}

	tests := []struct {
		origin                string
		anyClient, thisClient bool
	}{
		{"https://app.example", true, true},
		{"https://APP.example:443", true, true},
		{"http://localhost:8080", true, true},
		{"http://localhost", false, false},
		{"https://localhost:8080", false, false},
		{"https://admin.example:8443", true, true},
		{"http://[::1]:3000", true, true},
		{"https://other.example", true, false},
		{"https://app.example/callback", false, false}, // not an origin
		{"null", false, false},
		{"", false, false},
		{"com.example.app:", false, false},
		{"https://evil.example", false, false},
		{"https://app.example.evil.example", false, false},
	}
	for _, tc := range tests {
		anyOK, err := s.OriginAllowed(ctx, tc.origin)
		must(t, "OriginAllowed", err)
		spaOK, err := s.ClientOriginAllowed(ctx, "spa", tc.origin)
		must(t, "ClientOriginAllowed", err)
		if anyOK != tc.anyClient || spaOK != tc.thisClient {
			t.Errorf("%q: OriginAllowed = %v, ClientOriginAllowed(spa) = %v; want %v, %v", tc.origin, anyOK, spaOK, tc.anyClient, tc.thisClient)
		}
	}
	if ok, err := s.ClientOriginAllowed(ctx, "nope", "https://app.example"); err != nil || ok {
		t.Errorf("ClientOriginAllowed(unknown client) = %v, %v", ok, err)
	}

	must(t, "DeleteClient spa", s.DeleteClient(ctx, "spa"))
	for _, o := range []string{"https://app.example", "https://admin.example:8443"} {
		if ok, err := s.OriginAllowed(ctx, o); err != nil || ok {
			t.Errorf("OriginAllowed(%q) after delete = %v, %v; want false", o, ok, err)
		}
	}
	if ok, err := s.OriginAllowed(ctx, "https://other.example"); err != nil || !ok {
		t.Errorf("other client's origin after delete = %v, %v; want true", ok, err)
	}
	must(t, "re-create spa", s.CreateClient(ctx, &models.Client{ID: "spa", AllowedOrigins: []string{"https://app.example"}}))
}

func testClientOriginsInvalid(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	for _, o := range []string{
		"https://app.example/", "https://app.example/path", "https://app.example?q", "https://app.example#f",
		"app.example", "ftp://app.example", "https://", "https://user@app.example", "*", "https://app.example:99999",
	} {
		err := s.CreateClient(ctx, &models.Client{ID: "c", AllowedOrigins: []string{"https://ok.example", o}})
		if !errors.Is(err, models.ErrInvalid) {
			t.Errorf("AllowedOrigins %q: %v, want models.ErrInvalid", o, err)
		}
		_, err = s.ClientByID(ctx, "c")
		wantNotFound(t, "client after rejected create", err)
		if ok, err := s.OriginAllowed(ctx, "https://ok.example"); err != nil || ok {
			t.Errorf("origin of a rejected client is allowed: %v, %v", ok, err)
		}
	}
}

func testClientDeleteConsents(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	mustClient(t, s, "a")
	mustClient(t, s, "b")
	for _, c := range []string{"a", "b"} {
		must(t, "SaveConsent", s.SaveConsent(ctx, "usr_1", c, []string{"openid"}, baseTime))
	}
	must(t, "DeleteClient", s.DeleteClient(ctx, "a"))
	if sc, err := s.ConsentedScopes(ctx, "usr_1", "a"); err != nil || sc != nil {
		t.Errorf("consent to deleted client = %v, %v", sc, err)
	}
	if sc, err := s.ConsentedScopes(ctx, "usr_1", "b"); err != nil || len(sc) != 1 {
		t.Errorf("consent to other client = %v, %v", sc, err)
	}
}
