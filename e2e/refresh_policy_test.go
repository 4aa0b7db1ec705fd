package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// A refresh policy per client (issue 14, item 1). WeWeb's Token-Based Auth plugin keeps sending the refresh token it
// got at sign-in, and tabs refresh at once with the same token: with single-use refresh tokens the second refresh
// was a reuse that revoked the grant.

// Within the reuse interval, 40 concurrent refreshes with one token all succeed and leave every token they issued
// usable; after it, presenting a rotated token is reuse again and revokes the whole family.
func TestRefreshReuseIntervalTwoTabs(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env, "--refresh-token-reuse-interval", "2m")
		rs := env.createClient(t, "--name", "rs")
		active := func(token string) bool {
			t.Helper()
			code, _, body := postForm(t, e.srv.URL+"/oauth2/introspect", url.Values{"token": {token}}, rs.ClientID, rs.ClientSecret)
			if code != http.StatusOK {
				t.Fatalf("introspect: %d %v", code, body)
			}
			return body["active"] == true
		}
		tok, _ := e.signedIn(t, newBrowser(t, spaCallback), "openid", "offline_access")
		codes, bodies := raceTokenCalls(t, e, 40, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
		var ats, rts []string
		for i, c := range codes {
			at, _ := bodies[i]["access_token"].(string)
			rt, _ := bodies[i]["refresh_token"].(string)
			if c != http.StatusOK || at == "" || rt == "" || rt == tok.RefreshToken || bodies[i]["id_token"] == nil {
				t.Errorf("concurrent refresh %d within the interval: %d %v, want 200 with new tokens", i, c, bodies[i])
				continue
			}
			ats, rts = append(ats, at), append(rts, rt)
		}
		if len(ats) != 40 {
			t.Fatalf("%d of 40 concurrent refreshes succeeded", len(ats))
		}
		for i, at := range ats {
			if !active(at) {
				t.Errorf("access token of concurrent refresh %d is not active", i)
			}
		}
		for i, rt := range rts {
			if rt != rts[0] {
				t.Errorf("concurrent refresh %d got refresh token %q, want the one successor every use got: one chain", i, rt)
			}
		}
		// The family stays usable: an issued refresh token refreshes, and the presented one still does (inside).
		if code, errCode := e.refresh(t, rts[0]); code != http.StatusOK {
			t.Errorf("refresh with a token the race issued: %d %q", code, errCode)
		}
		if code, errCode := e.refresh(t, tok.RefreshToken); code != http.StatusOK {
			t.Errorf("the rotated token again within the interval: %d %q", code, errCode)
		}

		// Outside the interval: move the rotations 3 minutes into the past. Reuse revokes the family.
		execSQL(t, env, "UPDATE oauth2_refresh SET rotated_at = ? WHERE rotated_at IS NOT NULL", time.Now().UTC().Add(-3*time.Minute))
		e.mustRefreshFail(t, tok.RefreshToken, "the rotated token after the interval")
		e.mustRefreshFail(t, rts[1], "the chain's token after reuse outside the interval")
		for i, at := range ats[:5] {
			if active(at) {
				t.Errorf("access token %d still active after reuse outside the interval", i)
			}
		}
	})
}

// Without an interval (the default), a rotated token presented again a moment later is reuse: as before.
func TestRefreshWithoutReuseIntervalRevokes(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		tok, _ := e.signedIn(t, newBrowser(t, spaCallback), "openid", "offline_access")
		code, body := e.tokenCall(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
		rt, _ := body["refresh_token"].(string)
		if code != http.StatusOK || rt == "" {
			t.Fatalf("first refresh: %d %v", code, body)
		}
		e.mustRefreshFail(t, tok.RefreshToken, "the rotated token without an interval")
		e.mustRefreshFail(t, rt, "its successor after the reuse")
	})
}

// Rotation off, as WeWeb's Token-Based Auth plugin needs it: five refreshes with the token from sign-in each answer
// a working access token and that same refresh token, write no refresh token row and do not move its expiry;
// logout ends it.
func TestRefreshRotationOffWeWeb(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		app := env.createClient(t, "--name", "weweb", "--first-party", "--pool", "customers",
			"--scopes", "openid profile email offline_access", "--refresh-token-rotation", "off")
		srv := env.startServer(t)
		api := srv.URL + "/api/v1/auth"
		code, _, signup := apiCall(t, "POST", api+"/signup", map[string]any{
			"client_id": app.ClientID, "email": "wes@example.com", "password": "violet-tractor-47",
		}, nil)
		rt, _ := signup["refresh_token"].(string)
		if code != 201 || rt == "" {
			t.Fatalf("signup: %d %v", code, signup)
		}
		db, q := rawDB(t, env)
		expiry := func() time.Time {
			t.Helper()
			var exp time.Time
			if err := db.QueryRow(q("SELECT expires_at FROM oauth2_refresh")).Scan(&exp); err != nil {
				t.Fatalf("the one refresh token row: %v", err)
			}
			return exp
		}
		exp0 := expiry()
		var at string
		for i := range 5 {
			code, _, ref := apiCall(t, "POST", api+"/refresh", map[string]any{"refresh_token": rt}, nil)
			at, _ = ref["access_token"].(string)
			if code != 200 || at == "" || ref["refresh_token"] != rt {
				t.Fatalf("refresh %d with the sign-in token: %d %v, want 200 with that refresh token again", i+1, code, ref)
			}
			if code, _, me := apiCall(t, "GET", api+"/me", nil, bearerHeader(at)); code != 200 || me["email"] != "wes@example.com" {
				t.Fatalf("me after refresh %d: %d %v", i+1, code, me)
			}
		}
		if n := countRows(t, env, "oauth2_refresh"); n != 1 {
			t.Errorf("%d refresh token rows after 5 refreshes, want the 1 from sign-in", n)
		}
		if got := expiry(); !got.Equal(exp0) {
			t.Errorf("refresh token expiry moved from %v to %v; without rotation it does not slide", exp0, got)
		}
		if code, _, _ := apiCall(t, "POST", api+"/logout", nil, bearerHeader(at)); code != 204 {
			t.Fatalf("logout: %d", code)
		}
		if code, _, body := apiCall(t, "POST", api+"/refresh", map[string]any{"refresh_token": rt}, nil); code != 400 || body["error"] != "invalid_grant" {
			t.Errorf("refresh after logout: %d %v, want 400 invalid_grant", code, body)
		}
	})
}

// Rotation off at the OAuth token endpoint: the same refresh token comes back with a new access token and ID token,
// concurrent refreshes all succeed, and revoking the token (RFC 7009) ends it.
func TestRefreshRotationOffTokenEndpoint(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env, "--refresh-token-rotation", "off")
		tok, _ := e.signedIn(t, newBrowser(t, spaCallback), "openid", "offline_access")
		codes, bodies := raceTokenCalls(t, e, 10, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
		for i, c := range codes {
			if c != http.StatusOK || bodies[i]["refresh_token"] != tok.RefreshToken || bodies[i]["access_token"] == nil || bodies[i]["id_token"] == nil {
				t.Errorf("refresh %d: %d %v, want 200 with new access and ID tokens and the same refresh token", i, c, bodies[i])
			}
		}
		code, _, body := postForm(t, e.srv.URL+"/oauth2/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {"spa"}}, "", "")
		if code != http.StatusOK {
			t.Fatalf("revoke: %d %v", code, body)
		}
		e.mustRefreshFail(t, tok.RefreshToken, "a kept refresh token after revocation")
	})
}

// Bad refresh policy values are refused by the CLI, naming the flag; good ones show in clients get.
func TestRefreshPolicyCLI(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--refresh-token-rotation", "sometimes"}, "--refresh-token-rotation"},
		{[]string{"--refresh-token-reuse-interval", "soon"}, "--refresh-token-reuse-interval"},
		{[]string{"--refresh-token-reuse-interval", "10m"}, "--refresh-token-reuse-interval"},
		{[]string{"--refresh-token-reuse-interval", "-1s"}, "--refresh-token-reuse-interval"},
		{[]string{"--refresh-token-rotation", "off", "--refresh-token-reuse-interval", "30s"}, "--refresh-token-reuse-interval"},
	} {
		args := append([]string{"clients", "create", "--name", "x", "--public", "--redirect-uris", "https://x.example/cb"}, tc.args...)
		_, stderr, code := env.cliCode(t, "", args...)
		if code == 0 || !strings.Contains(stderr, tc.flag) {
			t.Errorf("clients create %v: exit %d, stderr %q; want an error naming %s", tc.args, code, stderr, tc.flag)
		}
	}
	c := env.createClient(t, "--name", "tabs", "--public", "--redirect-uris", "https://x.example/cb", "--refresh-token-reuse-interval", "1500ms")
	show := func() map[string]any {
		t.Helper()
		var got map[string]any
		if err := json.Unmarshal([]byte(env.cli(t, "clients", "get", "--id", c.ClientID)), &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := show(); got["refresh_token_rotation"] != "on" || got["refresh_token_reuse_interval"] != "1.5s" {
		t.Errorf("clients get: rotation %v, interval %v; want on, 1.5s", got["refresh_token_rotation"], got["refresh_token_reuse_interval"])
	}
	if _, stderr, code := env.cliCode(t, "", "clients", "update", "--id", c.ClientID, "--refresh-token-rotation", "off"); code == 0 || !strings.Contains(stderr, "--refresh-token-reuse-interval") {
		t.Errorf("update to rotation off keeping a reuse interval: exit %d, %q; want an error naming --refresh-token-reuse-interval", code, stderr)
	}
	if _, stderr, code := env.cliCode(t, "", "clients", "update", "--id", c.ClientID, "--refresh-token-reuse-interval", "x"); code == 0 || !strings.Contains(stderr, "--refresh-token-reuse-interval") {
		t.Errorf("update with a bad interval: exit %d, %q", code, stderr)
	}
	env.cli(t, "clients", "update", "--id", c.ClientID, "--refresh-token-rotation", "off", "--refresh-token-reuse-interval", "0")
	if got := show(); got["refresh_token_rotation"] != "off" || got["refresh_token_reuse_interval"] != "0s" {
		t.Errorf("after update: rotation %v, interval %v; want off, 0s", got["refresh_token_rotation"], got["refresh_token_reuse_interval"])
	}
}
