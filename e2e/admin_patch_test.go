package e2e

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// One change, one transaction: an admin PATCH that the store refuses for any field leaves the user entirely as
// it was, whichever fields came first; one it accepts changes every field at once, disabling included.
func TestAdminPatchIsOneChange(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		srv, clientID := noCodeFixture(t, env)
		admin := env.createClient(t, "--name", "xano", "--admin")
		_, _, signup := apiCall(t, "POST", srv.URL+"/api/v1/auth/signup", map[string]any{"client_id": clientID, "email": "dee@example.com", "password": "violet-tractor-47"}, nil)
		userID := signup["user"].(map[string]any)["id"].(string)
		userAT := signup["access_token"].(string)
		_, _, tok := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"latchkey.admin"}}, admin.ClientID, admin.ClientSecret)
		adminAT, _ := tok["access_token"].(string)
		userURL := srv.URL + "/api/v1/admin/users/" + userID
		current := func() map[string]any {
			t.Helper()
			code, _, u := apiCall(t, "GET", userURL, nil, bearerHeader(adminAT))
			if code != http.StatusOK {
				t.Fatalf("admin get user: %d %v", code, u)
			}
			return u
		}
		before := current()

		valid := map[string]any{"extras": map[string]any{"plan": "pro"}, "roles": []string{"customer", "vip"}, "disabled": true}
		for _, tc := range []struct {
			name string
			bad  map[string]any
		}{
			{"a name with a NUL byte", map[string]any{"name": "Dee\x00"}},
			{"a name over 200 characters", map[string]any{"name": strings.Repeat("n", 201)}},
			{"extras over the size limit", map[string]any{"extras": map[string]any{"blob": strings.Repeat("x", 5000)}}},
			{"extras with an empty key", map[string]any{"extras": map[string]any{"": "v"}}},
			{"extras naming a registered claim", map[string]any{"extras": map[string]any{"sub": "someone-else"}}},
		} {
			patch := map[string]any{}
			for k, v := range valid {
				patch[k] = v
			}
			for k, v := range tc.bad {
				patch[k] = v
			}
			code, _, body := apiCall(t, "PATCH", userURL, patch, bearerHeader(adminAT))
			if code != http.StatusBadRequest || body["error"] != "invalid_request" {
				t.Errorf("%s: %d %v, want 400 invalid_request", tc.name, code, body)
			}
			if after := current(); !reflect.DeepEqual(after, before) {
				t.Errorf("%s: the refused patch changed the user:\n got  %v\n want %v", tc.name, after, before)
			}
		}
		// Not disabled after all (the admin API does not show the flag): the user's token still works.
		if code, _, me := apiCall(t, "GET", srv.URL+"/api/v1/auth/me", nil, bearerHeader(userAT)); code != http.StatusOK {
			t.Fatalf("me after refused patches: %d %v", code, me)
		}

		patch := map[string]any{"name": "Dee Lee"}
		for k, v := range valid {
			patch[k] = v
		}
		code, _, u := apiCall(t, "PATCH", userURL, patch, bearerHeader(adminAT))
		if code != http.StatusOK || u["name"] != "Dee Lee" ||
			!reflect.DeepEqual(u["roles"], []any{"customer", "vip"}) || !reflect.DeepEqual(u["extras"], map[string]any{"plan": "pro"}) {
			t.Fatalf("valid patch: %d %v", code, u)
		}
		if after := current(); !reflect.DeepEqual(after, u) {
			t.Errorf("stored user %v, want the patch's answer %v", after, u)
		}
		// Disabling in the same change ended the user's tokens.
		if code, _, _ := apiCall(t, "GET", srv.URL+"/api/v1/auth/me", nil, bearerHeader(userAT)); code != http.StatusUnauthorized {
			t.Errorf("me after the user was disabled: %d, want 401", code)
		}
	})
}
