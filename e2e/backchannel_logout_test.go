package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// logoutReceiver is a client's back-channel logout endpoint: it refuses its first failFirst requests with 503,
// answers each other one after delay, and keeps the logout tokens it accepted.
type logoutReceiver struct {
	*httptest.Server
	failFirst atomic.Int32
	delay     atomic.Int64
	attempts  atomic.Int32
	mu        sync.Mutex
	tokens    []string
}

func newLogoutReceiver(t *testing.T) *logoutReceiver {
	r := &logoutReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.attempts.Add(1)
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("back-channel logout: %s with Content-Type %q", req.Method, req.Header.Get("Content-Type"))
		}
		if r.failFirst.Add(-1) >= 0 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		time.Sleep(time.Duration(r.delay.Load()))
		if err := req.ParseForm(); err != nil || req.PostForm.Get("logout_token") == "" {
			http.Error(w, "no logout_token", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.tokens = append(r.tokens, req.PostForm.Get("logout_token"))
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *logoutReceiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tokens...)
}

// logoutClaims verifies a logout token as a client must (Back-Channel Logout §2.6): signed by a key of the
// issuer's JWKS, typ logout+jwt, the event, no nonce; it returns the claims.
func logoutClaims(t *testing.T, raw string, jwks jose.JSONWebKeySet) map[string]any {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("logout token does not parse: %v", err)
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != "logout+jwt" {
		t.Errorf("logout token typ %q, want logout+jwt", typ)
	}
	keys := jwks.Key(h.KeyID)
	if len(keys) == 0 {
		t.Fatalf("logout token kid %q is not in the JWKS", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	events, _ := claims["events"].(map[string]any)
	if _, ok := events["http://schemas.openid.net/event/backchannel-logout"]; !ok {
		t.Errorf("logout token events %v", claims["events"])
	}
	if _, ok := claims["nonce"]; ok {
		t.Error("logout token has a nonce")
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if claims["jti"] == "" || exp <= iat || exp-iat > 300 || time.Since(time.Unix(int64(iat), 0)) > time.Minute {
		t.Errorf("logout token jti/iat/exp: %v", claims)
	}
	return claims
}

func fetchJWKS(t *testing.T, base string) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	return set
}

func logoutEnv(env testEnv) {
	env["LATCHKEY_BACKCHANNEL_LOGOUT_ALLOW_PRIVATE"] = "true"
	env["LATCHKEY_OUTBOX_POLL"] = "50ms"
	env["LATCHKEY_OUTBOX_RETRY_BASE"] = "200ms"
}

func TestBackchannelLogout(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		logoutEnv(env)
		rcv := newLogoutReceiver(t)
		e := newEdge(t, env, "--backchannel-logout-uri", rcv.URL+"/bc", "--backchannel-logout-session-required",
			"--frontchannel-logout-uri", "http://localhost:5173/fc", "--frontchannel-logout-session-required")
		jwks := fetchJWKS(t, e.srv.URL)
		// bySID waits for the logout tokens about sid and checks there is exactly one.
		bySID := func(t *testing.T, sid string) map[string]any {
			t.Helper()
			deadline := time.Now().Add(20 * time.Second)
			for {
				var found []map[string]any
				for _, raw := range rcv.received() {
					if c := logoutClaims(t, raw, jwks); c["sid"] == sid {
						found = append(found, c)
					}
				}
				if len(found) == 1 {
					time.Sleep(300 * time.Millisecond) // a second delivery would come within a poll or two
					n := 0
					for _, raw := range rcv.received() {
						if logoutClaims(t, raw, jwks)["sid"] == sid {
							n++
						}
					}
					if n != 1 {
						t.Errorf("%d logout tokens for session %s, want 1", n, sid)
					}
					return found[0]
				}
				if len(found) > 1 || time.Now().After(deadline) {
					t.Fatalf("%d logout tokens for session %s, want 1", len(found), sid)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		signIn := func(t *testing.T) (*browserClient, *oauth2.Token, map[string]any) {
			b := newBrowser(t, spaCallback)
			tok, claims := e.signedIn(t, b)
			if claims["sid"] == nil {
				t.Fatal("ID token without sid")
			}
			return b, tok, claims
		}

		t.Run("RP-initiated logout: a valid token reaches a slow receiver that was down; frames on the page", func(t *testing.T) {
			rcv.failFirst.Store(2)
			rcv.delay.Store(int64(1500 * time.Millisecond))
			defer rcv.delay.Store(0)
			before := rcv.attempts.Load()
			b, tok, idClaims := signIn(t)
			hint, _ := tok.Extra("id_token").(string)
			start := time.Now()
			resp, body := fetch(t, noRedirects(b), http.MethodGet, e.srv.URL+"/oauth2/logout?id_token_hint="+hint, nil)
			if took := time.Since(start); took > time.Second {
				t.Errorf("logout took %v: it waited for delivery", took)
			}
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "You have been signed out.") {
				t.Fatalf("logout: %d\n%s", resp.StatusCode, body)
			}
			sid := idClaims["sid"].(string)
			q := url.Values{"iss": {e.srv.URL}, "sid": {sid}}.Encode()
			frame := `<iframe hidden src="http://localhost:5173/fc?` + strings.ReplaceAll(q, "&", "&amp;") + `"`
			if !strings.Contains(body, frame) {
				t.Errorf("signed-out page lacks the front-channel frame %s:\n%s", frame, body)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-src http://localhost:5173") {
				t.Errorf("CSP %q does not allow the frame", csp)
			}
			c := bySID(t, sid)
			if c["iss"] != e.srv.URL || c["aud"] != "spa" || c["sub"] != idClaims["sub"] {
				t.Errorf("logout token claims %v; ID token %v", c, idClaims)
			}
			if n := rcv.attempts.Load() - before; n < 3 {
				t.Errorf("%d delivery attempts, want the 2 refused ones and a success", n)
			}
		})

		t.Run("with post_logout_redirect_uri the frames load before the user goes on", func(t *testing.T) {
			b, tok, idClaims := signIn(t)
			hint, _ := tok.Extra("id_token").(string)
			resp, body := fetch(t, noRedirects(b), http.MethodGet, e.srv.URL+"/oauth2/logout?post_logout_redirect_uri="+spaBye+"&state=s1&id_token_hint="+hint, nil)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "localhost:5173/fc?") || !strings.Contains(body, `href="`+spaBye+`?state=s1"`) {
				t.Fatalf("logout with redirect: %d\n%s", resp.StatusCode, body)
			}
			bySID(t, idClaims["sid"].(string))
		})

		t.Run("the sessions page", func(t *testing.T) {
			a, _, _ := signIn(t)
			_, _, other := signIn(t)
			p := a.get(e.srv.URL + "/account/sessions")
			f := formWith(t, p.body, "session_id", other["sid"].(string))
			if got := post(a, p, f.action, f.values); got.status != http.StatusOK {
				t.Fatalf("end session: %d", got.status)
			}
			bySID(t, other["sid"].(string))
		})

		t.Run("operator revocation", func(t *testing.T) {
			_, _, c := signIn(t)
			env.cli(t, "sessions", "revoke", "--id", c["sid"].(string))
			bySID(t, c["sid"].(string))
		})

		t.Run("two nodes deliver each logout once", func(t *testing.T) {
			env.startServer(t) // a second node on the same database, its worker polling too
			var sids []string
			for range 4 {
				_, _, c := signIn(t)
				sids = append(sids, c["sid"].(string))
			}
			env.cli(t, "sessions", "revoke", "--user", adaEmail, "--all")
			for _, sid := range sids {
				bySID(t, sid)
			}
		})

		t.Run("password reset", func(t *testing.T) {
			_, _, c := signIn(t)
			env.cli(t, "users", "set-password", "--email", adaEmail, "--password", adaPassword)
			bySID(t, c["sid"].(string))
		})

		t.Run("token API logout", func(t *testing.T) {
			app := env.createClient(t, "--name", "API app", "--first-party", "--backchannel-logout-uri", rcv.URL+"/api-app",
				"--scopes", "openid profile email offline_access")
			code, _, body := apiCall(t, "POST", e.srv.URL+"/api/v1/auth/login", map[string]any{
				"client_id": app.ClientID, "email": adaEmail, "password": adaPassword}, nil)
			if code != http.StatusOK {
				t.Fatalf("token API login: %d %v", code, body)
			}
			at, _ := body["access_token"].(string)
			before := len(rcv.received())
			if code, _, body := apiCall(t, "POST", e.srv.URL+"/api/v1/auth/logout", nil, bearerHeader(at)); code/100 != 2 {
				t.Fatalf("token API logout: %d %v", code, body)
			}
			deadline := time.Now().Add(20 * time.Second)
			for len(rcv.received()) == before && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			got := rcv.received()
			if len(got) != before+1 {
				t.Fatalf("%d logout tokens after the token API logout, want 1", len(got)-before)
			}
			if c := logoutClaims(t, got[before], jwks); c["aud"] != app.ClientID || c["sid"] == nil {
				t.Errorf("token API logout token %v", c)
			}
		})

		t.Run("disable", func(t *testing.T) {
			_, _, c := signIn(t)
			env.cli(t, "users", "disable", "--email", adaEmail)
			bySID(t, c["sid"].(string))
		})
	})
}
