package provider

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"
)

func fullSession() *Session {
	return &Session{
		Subject:  "usr_1",
		Username: "ada@example.com",
		ClientID: "billing-svc",
		Roles:    []string{"admin", "billing"},
		Extras: map[string]any{
			"tenant": "acme",
			"groups": []any{"ops", map[string]any{"name": "dev"}},
			"limits": map[string]any{"rate": 10.0, "tags": []any{"a"}},
			"beta":   true,
		},
		Pool:     "staff",
		SID:      "sid-123",
		AuthTime: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		ExpiresAt: map[fosite.TokenType]time.Time{
			fosite.AccessToken:  time.Date(2030, 1, 2, 4, 4, 5, 0, time.UTC),
			fosite.RefreshToken: time.Date(2030, 2, 1, 3, 4, 5, 0, time.UTC),
		},
		IDClaims: &jwt.IDTokenClaims{
			Subject:                         "usr_1",
			Audience:                        []string{"spa"},
			Nonce:                           "n-0S6_WzA2Mj",
			AuthTime:                        time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
			AuthenticationMethodsReferences: []string{"pwd"},
			Extra:                           map[string]any{"email": "ada@example.com", "groups": []any{"ops"}},
		},
		IDHeaders: &jwt.Headers{Extra: map[string]any{"kid": "k1", "crit": []any{"x"}}},
	}
}

func TestSessionCloneIsDeep(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(c *Session)
	}{
		{"replacing a role", func(c *Session) { c.Roles[0] = "root" }},
		{"appending a role", func(c *Session) { c.Roles = append(c.Roles, "extra") }},
		{"adding an extra claim", func(c *Session) { c.Extras["new"] = "x" }},
		{"changing a nested extra map", func(c *Session) { c.Extras["limits"].(map[string]any)["rate"] = 99.0 }},
		{"changing a nested extra list", func(c *Session) { c.Extras["groups"].([]any)[0] = "root" }},
		{"changing a map inside an extra list", func(c *Session) {
			c.Extras["groups"].([]any)[1].(map[string]any)["name"] = "prod"
		}},
		{"changing a list inside an extra map", func(c *Session) {
			c.Extras["limits"].(map[string]any)["tags"].([]any)[0] = "z"
		}},
		{"deleting an extra claim", func(c *Session) { delete(c.Extras, "tenant") }},
		{"moving an expiry", func(c *Session) { c.SetExpiresAt(fosite.AccessToken, time.Time{}) }},
		{"adding an expiry", func(c *Session) { c.SetExpiresAt(fosite.AuthorizeCode, time.Now()) }},
		{"setting the subject", func(c *Session) { c.SetSubject("someone-else") }},
		{"changing scalar fields", func(c *Session) { c.Pool, c.SID, c.AuthTime = "x", "y", time.Time{} }},
		{"changing ID token scalar claims", func(c *Session) { c.IDTokenClaims().Subject, c.IDTokenClaims().Nonce = "x", "y" }},
		{"changing the ID token audience", func(c *Session) { c.IDTokenClaims().Audience[0] = "evil" }},
		{"changing the ID token amr", func(c *Session) { c.IDTokenClaims().AuthenticationMethodsReferences[0] = "otp" }},
		{"adding an ID token extra claim", func(c *Session) { c.IDTokenClaims().Extra["at_hash"] = "x" }},
		{"changing a nested ID token extra claim", func(c *Session) { c.IDTokenClaims().Extra["groups"].([]any)[0] = "root" }},
		{"changing an ID token header", func(c *Session) { c.IDTokenHeaders().Extra["kid"] = "k2" }},
		{"changing a nested ID token header", func(c *Session) { c.IDTokenHeaders().Extra["crit"].([]any)[0] = "y" }},
	} {
		t.Run(tc.name+" on the clone leaves the original alone", func(t *testing.T) {
			orig := fullSession()
			clone, ok := orig.Clone().(*Session)
			if !ok {
				t.Fatalf("Clone returned %T", orig.Clone())
			}
			if !reflect.DeepEqual(orig, clone) {
				t.Fatalf("clone differs before mutation:\n%#v\n%#v", orig, clone)
			}
			tc.mutate(clone)
			if want := fullSession(); !reflect.DeepEqual(orig, want) {
				t.Errorf("original changed:\n got %#v\nwant %#v", orig, want)
			}
		})
	}

	t.Run("clone of an empty session can be filled without touching the original", func(t *testing.T) {
		orig := NewSession()
		c := orig.Clone().(*Session)
		c.SetExpiresAt(fosite.AccessToken, time.Now())
		c.Roles = append(c.Roles, "x")
		if orig.ExpiresAt != nil || orig.Roles != nil {
			t.Errorf("original = %#v", orig)
		}
	})
	t.Run("nil session clones to nil", func(t *testing.T) {
		var s *Session
		if c := s.Clone(); c != nil {
			t.Errorf("Clone of nil = %#v", c)
		}
	})
}

func TestSessionJSONRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *Session
	}{
		{"full session", fullSession()},
		{"empty session", NewSession()},
		{"client credentials session", &Session{Subject: "svc", ClientID: "svc",
			ExpiresAt: map[fosite.TokenType]time.Time{fosite.AccessToken: time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			var back Session
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("unmarshal %s: %v", b, err)
			}
			if !reflect.DeepEqual(*tc.s, back) {
				t.Errorf("round trip changed the session:\n  in %#v\n json %s\n out %#v", *tc.s, b, back)
			}
		})
	}

	t.Run("storage field names are stable", func(t *testing.T) {
		b, _ := json.Marshal(fullSession())
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		for _, k := range []string{"sub", "username", "client_id", "roles", "extras", "pool", "sid", "auth_time", "expires_at", "id_token_claims", "id_token_headers"} {
			if _, ok := m[k]; !ok {
				t.Errorf("JSON %s has no %q", b, k)
			}
		}
		b, _ = json.Marshal(NewSession())
		if string(b) != "{}" {
			t.Errorf("empty session encodes as %s, want {}", b)
		}
	})
}

func TestSessionAccessors(t *testing.T) {
	var nilSession *Session
	if nilSession.GetSubject() != "" || nilSession.GetUsername() != "" || !nilSession.GetExpiresAt(fosite.AccessToken).IsZero() ||
		nilSession.GetExtraClaims() != nil {
		t.Error("a nil session must read as empty")
	}

	s := fullSession()
	extra := s.GetExtraClaims()
	if !reflect.DeepEqual(extra["roles"], s.Roles) || extra["pool"] != "staff" || !reflect.DeepEqual(extra[ExtrasClaim], s.Extras) {
		t.Errorf("GetExtraClaims = %#v", extra)
	}
	extra["roles"].([]string)[0] = "mutated"
	extra[ExtrasClaim].(map[string]any)["tenant"] = "mutated"
	if s.Roles[0] != "admin" || s.Extras["tenant"] != "acme" {
		t.Error("mutating GetExtraClaims output changed the session")
	}
	if got := NewSession().GetExtraClaims(); len(got) != 0 {
		t.Errorf("empty session extra claims = %v", got)
	}
}

func TestSessionIDTokenAccessors(t *testing.T) {
	s := NewSession()
	claims, headers := s.IDTokenClaims(), s.IDTokenHeaders()
	if claims == nil || headers == nil {
		t.Fatal("IDTokenClaims/IDTokenHeaders of an empty session are nil")
	}
	if s.IDTokenClaims() != claims || s.IDTokenHeaders() != headers {
		t.Error("IDTokenClaims/IDTokenHeaders return a new pointer each call; fosite fills them in place")
	}
	claims.Subject = "usr_1"
	if s.IDClaims.Subject != "usr_1" {
		t.Error("changes through IDTokenClaims do not reach the session")
	}
	if got := (&Session{SID: "sid-1"}).GetSID(); got != "sid-1" {
		t.Errorf("GetSID = %q", got)
	}
	var nilSession *Session
	if nilSession.GetSID() != "" {
		t.Error("GetSID of nil session")
	}
}

// BenchmarkSessionJSON measures the session's trip through a token row: encoded on every issuance, decoded on
// every lookup (introspection, refresh, userinfo).
func BenchmarkSessionJSON(b *testing.B) {
	exp := time.Now().Add(time.Hour).UTC()
	service := &Session{Subject: "svc", ClientID: "svc", ExpiresAt: map[fosite.TokenType]time.Time{fosite.AccessToken: exp}}
	user := &Session{Subject: "usr_0123456789", Username: "ada@example.com", ClientID: "app", Roles: []string{"admin", "editor"},
		Extras: map[string]any{"plan": "pro", "tenant": "acme"}, Pool: "default", SID: "ses_0123456789", AuthTime: exp,
		ExpiresAt: map[fosite.TokenType]time.Time{fosite.AccessToken: exp, fosite.RefreshToken: exp},
		IDClaims:  &jwt.IDTokenClaims{Subject: "usr_0123456789", Nonce: "n-0S6_WzA2Mj", AuthTime: exp, Extra: map[string]any{"roles": []string{"admin"}}},
		IDHeaders: &jwt.Headers{Extra: map[string]any{"kid": "abc"}}}
	for name, s := range map[string]*Session{"client_credentials": service, "user": user} {
		data, err := json.Marshal(s)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var out Session
				if err := json.Unmarshal(data, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
