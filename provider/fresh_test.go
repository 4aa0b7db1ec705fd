package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/ory/fosite"
)

type fakeDirectory struct {
	user    Identity
	userErr error
	sessErr error
	used    []string
}

func (d *fakeDirectory) GrantUser(_ context.Context, id string) (Identity, error) {
	if d.userErr != nil {
		return Identity{}, d.userErr
	}
	return d.user, nil
}

func (d *fakeDirectory) UseGrantSession(_ context.Context, sid string, _ time.Time) error {
	d.used = append(d.used, sid)
	return d.sessErr
}

// revocationRecorder records what the handler revokes, and in which transaction state.
type revocationRecorder struct {
	Storage
	revoked   []string
	committed bool
}

func (s *revocationRecorder) BeginTX(ctx context.Context) (context.Context, error) { return ctx, nil }
func (s *revocationRecorder) Commit(context.Context) error                         { s.committed = true; return nil }
func (s *revocationRecorder) Rollback(context.Context) error                       { return nil }
func (s *revocationRecorder) RevokeRefreshToken(_ context.Context, id string) error {
	s.revoked = append(s.revoked, "refresh:"+id)
	return nil
}
func (s *revocationRecorder) RevokeAccessToken(_ context.Context, id string) error {
	s.revoked = append(s.revoked, "access:"+id)
	return nil
}

// refreshRequest is a refresh as fosite's handler leaves it: the stored grant loaded, its scope granted.
func refreshRequest(scopeParam string) *fosite.AccessRequest {
	ar := fosite.NewAccessRequest(SessionFor(Identity{UserID: "usr_1", Email: "old@example.com", Roles: []string{"admin"}},
		[]string{"openid", "roles", "offline_access"}, "ses_1", time.Now(), time.Now()))
	ar.SetID("grant-1")
	ar.GrantTypes = fosite.Arguments{"refresh_token"}
	ar.Form = url.Values{"grant_type": {"refresh_token"}}
	if scopeParam != "" {
		ar.Form.Set("scope", scopeParam)
	}
	for _, s := range []string{"openid", "roles", "offline_access"} {
		ar.GrantScope(s)
	}
	return ar
}

func TestCurrentGrant(t *testing.T) {
	now := func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name        string
		dir         fakeDirectory
		scope       string
		wantErr     string // RFC 6749 error code, "" for success
		wantRevoked bool
	}{
		{"a current user through a live session", fakeDirectory{user: Identity{UserID: "usr_1", Roles: []string{"editor"}}}, "", "", false},
		{"a user gone", fakeDirectory{userErr: ErrGrantEnded}, "", "invalid_grant", true},
		{"a session gone", fakeDirectory{user: Identity{UserID: "usr_1"}, sessErr: ErrGrantEnded}, "", "invalid_grant", true},
		{"the user cannot be read", fakeDirectory{userErr: errors.New("connection refused")}, "", "server_error", false},
		{"the session cannot be read", fakeDirectory{user: Identity{UserID: "usr_1"}, sessErr: errors.New("connection refused")}, "", "server_error", false},
		{"a wider scope", fakeDirectory{user: Identity{UserID: "usr_1"}}, "openid profile", "invalid_scope", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &revocationRecorder{}
			h := &currentGrant{dir: &tc.dir, store: store, now: now}
			ar := refreshRequest(tc.scope)
			err := h.HandleTokenEndpointRequest(context.Background(), ar)
			got := ""
			if err != nil {
				got = fosite.ErrorToRFC6749Error(err).ErrorField
			}
			if got != tc.wantErr {
				t.Fatalf("error = %v (%q), want %q", err, got, tc.wantErr)
			}
			if revoked := len(store.revoked) > 0; revoked != tc.wantRevoked {
				t.Errorf("revoked %v, want revoked = %v", store.revoked, tc.wantRevoked)
			}
			if tc.wantRevoked && (!store.committed || !slices.Equal(store.revoked, []string{"refresh:grant-1", "access:grant-1"})) {
				t.Errorf("revoked %v (committed %v), want the grant's refresh and access tokens", store.revoked, store.committed)
			}
			if tc.wantErr == "invalid_scope" && len(tc.dir.used) > 0 {
				t.Error("a refused scope counted as session activity")
			}
		})
	}
}

// For a code exchange fosite decodes the stored code's session into the request again after our handler ran;
// the tokens must still say what the user is now.
func TestCurrentUserSurvivesDecoding(t *testing.T) {
	h := &currentGrant{dir: &fakeDirectory{user: Identity{UserID: "usr_1", Email: "new@example.com", Roles: []string{"editor"}}},
		store: &revocationRecorder{}, now: time.Now}
	ar := refreshRequest("")
	stored, err := json.Marshal(ar.GetSession())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.HandleTokenEndpointRequest(context.Background(), ar); err != nil {
		t.Fatal(err)
	}
	sess := ar.GetSession().(*Session)
	if err := json.Unmarshal(stored, sess); err != nil {
		t.Fatal(err)
	}
	withCurrentUser(ar)
	if sess.Username != "new@example.com" || !slices.Equal(sess.Roles, []string{"editor"}) || sess.IDClaims.Extra["roles"] == nil ||
		!slices.Equal(sess.IDClaims.Extra["roles"].([]string), []string{"editor"}) || sess.IDClaims.Extra["sid"] != "ses_1" {
		t.Errorf("session after decoding and generation: %+v, ID claims %v", sess, sess.IDClaims.Extra)
	}
}

func TestNarrowScope(t *testing.T) {
	ar := refreshRequest("roles  openid")
	sess := ar.GetSession().(*Session)
	if err := narrowScope(ar, sess); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ar.GetGrantedScopes(), fosite.Arguments{"openid", "roles"}) {
		t.Errorf("granted = %v", ar.GetGrantedScopes())
	}
	if !slices.Equal(sess.refreshScopes, []string{"openid", "roles", "offline_access"}) {
		t.Errorf("the refresh token's scope = %v, want the grant's whole scope", sess.refreshScopes)
	}
}
