package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeAccessToken    = "urn:ietf:params:oauth:token-type:access_token"
	typeRefreshToken   = "urn:ietf:params:oauth:token-type:refresh_token"
	typeIDToken        = "urn:ietf:params:oauth:token-type:id_token"
	apiAudience        = "https://api.example.com"
)

// exchangeFixture is a server with a user who signs in through the SPA, and the backends that exchange her tokens.
type exchangeFixture struct {
	*edge
	exch  createdClient // impersonation or delegation, JWT access tokens, audiences api and billing
	deleg createdClient // delegation only: its own client_credentials token is the actor
	none  createdClient // confidential, no token exchange policy
	bff   createdClient // first-party, password grant: its own ID tokens are subjects
}

func newExchangeFixture(t *testing.T, env testEnv) *exchangeFixture {
	t.Helper()
	x := &exchangeFixture{edge: newEdge(t, env)}
	x.exch = env.createClient(t, "--name", "orders", "--scopes", "openid profile email roles offline_access read",
		"--access-token-format", "jwt", "--token-exchange", apiAudience+",https://billing.example.com")
	x.deleg = env.createClient(t, "--name", "gateway", "--scopes", "openid profile read", "--access-token-format", "jwt",
		"--token-exchange", apiAudience, "--token-exchange-delegation-only")
	x.none = env.createClient(t, "--name", "plain", "--scopes", "openid profile")
	x.bff = env.createClient(t, "--name", "bff", "--first-party", "--grant-types", "password",
		"--scopes", "openid profile", "--token-exchange", apiAudience)
	return x
}

func (x *exchangeFixture) url(path string) string { return x.srv.URL + path }

// trade posts a token exchange request for client c.
func (x *exchangeFixture) trade(t *testing.T, c createdClient, form url.Values) reply {
	t.Helper()
	form.Set("grant_type", grantTokenExchange)
	code, _, body := postForm(t, x.url("/oauth2/token"), form, c.ClientID, c.ClientSecret)
	return reply{code, body}
}

// reply is a token endpoint's answer.
type reply struct {
	code int
	body map[string]any
}

func subjectForm(token, tokenType string, extra ...string) url.Values {
	f := url.Values{"subject_token": {token}, "subject_token_type": {tokenType}, "audience": {apiAudience}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

func (x *exchangeFixture) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	_, _, body := postForm(t, x.url("/oauth2/introspect"), url.Values{"token": {token}}, x.exch.ClientID, x.exch.ClientSecret)
	return body
}

func (x *exchangeFixture) serviceToken(t *testing.T, c createdClient) string {
	t.Helper()
	code, _, body := postForm(t, x.url("/oauth2/token"), url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.ClientSecret)
	if code != http.StatusOK {
		t.Fatalf("client_credentials for %s: %d %v", c.ClientID, code, body)
	}
	return body["access_token"].(string)
}

func (x *exchangeFixture) passwordTokens(t *testing.T, tokenURL string) map[string]any {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {adaEmail}, "password": {adaPassword}, "scope": {"openid profile"}}
	code, _, body := postForm(t, tokenURL, form, x.bff.ClientID, x.bff.ClientSecret)
	if code != http.StatusOK {
		t.Fatalf("password grant: %d %v", code, body)
	}
	return body
}

func mustExchange(t *testing.T, what string, r reply) string {
	t.Helper()
	code, body := r.code, r.body
	if code != http.StatusOK || body["issued_token_type"] != typeAccessToken || !strings.EqualFold(fmt.Sprint(body["token_type"]), "bearer") {
		t.Fatalf("%s: %d %v, want an access token", what, code, body)
	}
	if _, ok := body["refresh_token"]; ok {
		t.Fatalf("%s: a refresh token was issued", what)
	}
	return body["access_token"].(string)
}

func mustRefuse(t *testing.T, what string, r reply, want string) {
	t.Helper()
	code, body := r.code, r.body
	if code != http.StatusBadRequest && code != http.StatusUnauthorized || body["error"] != want {
		t.Fatalf("%s: %d %v, want %s", what, code, body, want)
	}
	t.Logf("%s: %s", what, body["error_description"])
	if d, _ := body["error_description"].(string); strings.Contains(d, "lk_") {
		t.Fatalf("%s: the error description carries a token: %q", what, d)
	}
}

func TestTokenExchange(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		x := newExchangeFixture(t, env)
		spa, idClaims := x.signedIn(t, newBrowser(t, spaCallback), "openid", "profile", "offline_access")
		ada := idClaims["sub"].(string)

		t.Run("impersonation", func(t *testing.T) {
			at := mustExchange(t, "impersonation", x.trade(t, x.exch, subjectForm(spa.AccessToken, typeAccessToken, "scope", "openid profile")))
			c := jwtPayload(t, at)
			if c["sub"] != ada || c["aud"] != apiAudience || c["client_id"] != x.exch.ClientID || c["scope"] != "openid profile" || c["sid"] == nil {
				t.Fatalf("claims = %v", c)
			}
			if _, ok := c["act"]; ok {
				t.Fatalf("impersonation carries act: %v", c["act"])
			}
			in := x.introspect(t, at)
			if in["active"] != true || in["sub"] != ada || in["client_id"] != x.exch.ClientID {
				t.Fatalf("introspection = %v", in)
			}
			// Revocable like any token, by the client it was issued to.
			if code, _, body := postForm(t, x.url("/oauth2/revoke"), url.Values{"token": {at}}, x.exch.ClientID, x.exch.ClientSecret); code != http.StatusOK {
				t.Fatalf("revoke: %d %v", code, body)
			}
			if in := x.introspect(t, at); in["active"] != false {
				t.Fatalf("revoked exchanged token introspects as %v", in)
			}
			// The subject token is untouched by the revocation of the exchanged one.
			if in := x.introspect(t, spa.AccessToken); in["active"] != true {
				t.Fatalf("subject after revoking the exchanged token: %v", in)
			}
		})

		t.Run("delegation with nested act", func(t *testing.T) {
			actor := x.serviceToken(t, x.deleg)
			form := subjectForm(spa.AccessToken, typeAccessToken, "actor_token", actor, "actor_token_type", typeAccessToken)
			at := mustExchange(t, "delegation", x.trade(t, x.deleg, form))
			c := jwtPayload(t, at)
			act, _ := c["act"].(map[string]any)
			if c["sub"] != ada || act["sub"] != x.deleg.ClientID || act["client_id"] != x.deleg.ClientID {
				t.Fatalf("claims = %v", c)
			}
			in := x.introspect(t, at)
			if got, _ := in["act"].(map[string]any); in["active"] != true || got["sub"] != x.deleg.ClientID {
				t.Fatalf("introspection = %v", in)
			}
			// Exchanged again, the delegated token is the subject: the new actor outermost, the prior one nested.
			again := mustExchange(t, "chain", x.trade(t, x.deleg, subjectForm(at, typeAccessToken, "actor_token", actor, "actor_token_type", typeAccessToken)))
			outer, _ := jwtPayload(t, again)["act"].(map[string]any)
			inner, _ := outer["act"].(map[string]any)
			if outer["sub"] != x.deleg.ClientID || inner["sub"] != x.deleg.ClientID {
				t.Fatalf("chained act = %v", outer)
			}
			// Delegation only: no actor, no token.
			mustRefuse(t, "impersonation by a delegation-only client", x.trade(t, x.deleg, subjectForm(spa.AccessToken, typeAccessToken)), "invalid_request")
			// The actor token must be the requesting client's own.
			other := x.serviceToken(t, x.exch)
			mustRefuse(t, "another client's actor token", x.trade(t, x.deleg, subjectForm(spa.AccessToken, typeAccessToken, "actor_token", other, "actor_token_type", typeAccessToken)), "invalid_request")
		})

		t.Run("refused by policy", func(t *testing.T) {
			mustRefuse(t, "client without a policy", x.trade(t, x.none, subjectForm(spa.AccessToken, typeAccessToken)), "unauthorized_client")
			mustRefuse(t, "audience outside the policy", x.trade(t, x.exch, subjectForm(spa.AccessToken, typeAccessToken, "audience", "https://evil.example")), "invalid_target")
			mustRefuse(t, "resource outside the policy", x.trade(t, x.exch, subjectForm(spa.AccessToken, typeAccessToken, "resource", "https://evil.example")), "invalid_target")
			mustRefuse(t, "scope wider than the subject's", x.trade(t, x.exch, subjectForm(spa.AccessToken, typeAccessToken, "scope", "openid email")), "invalid_scope")
			mustRefuse(t, "a refresh token asked for", x.trade(t, x.exch, subjectForm(spa.AccessToken, typeAccessToken, "requested_token_type", typeRefreshToken)), "invalid_request")
			noAud := subjectForm(spa.AccessToken, typeAccessToken)
			noAud.Del("audience")
			mustRefuse(t, "no audience", x.trade(t, x.exch, noAud), "invalid_request")
			mustRefuse(t, "public client", x.trade(t, createdClient{ClientID: "spa"}, subjectForm(spa.AccessToken, typeAccessToken)), "unauthorized_client")
			mustRefuse(t, "unsupported subject token type", x.trade(t, x.exch, subjectForm(spa.AccessToken, "urn:ietf:params:oauth:token-type:jwt")), "invalid_request")
			// The resource form of the audience, within the policy, is accepted.
			byResource := subjectForm(spa.AccessToken, typeAccessToken, "resource", "https://billing.example.com")
			byResource.Del("audience")
			at := mustExchange(t, "resource", x.trade(t, x.exch, byResource))
			if aud := jwtPayload(t, at)["aud"]; aud != "https://billing.example.com" {
				t.Fatalf("aud = %v", aud)
			}
		})

		t.Run("refresh token subject", func(t *testing.T) {
			at := mustExchange(t, "refresh subject", x.trade(t, x.exch, subjectForm(spa.RefreshToken, typeRefreshToken)))
			if c := jwtPayload(t, at); c["sub"] != ada || !strings.Contains(fmt.Sprint(c["scope"]), "offline_access") {
				t.Fatalf("claims = %v", c)
			}
			// A refresh token presented as an access token is not one.
			mustRefuse(t, "refresh token as access token", x.trade(t, x.exch, subjectForm(spa.RefreshToken, typeAccessToken)), "invalid_request")
		})

		t.Run("id token subject", func(t *testing.T) {
			tokens := x.passwordTokens(t, x.url("/oauth2/token"))
			at := mustExchange(t, "id token subject", x.trade(t, x.bff, subjectForm(tokens["id_token"].(string), typeIDToken)))
			if in := x.introspect(t, at); in["active"] != true || in["sub"] != ada || in["scope"] != "openid" {
				t.Fatalf("introspection = %v", in)
			}
			mustRefuse(t, "scope beyond openid from an ID token", x.trade(t, x.bff, subjectForm(tokens["id_token"].(string), typeIDToken, "scope", "openid profile")), "invalid_scope")
			// The SPA's ID token was not issued to the exchanging client.
			mustRefuse(t, "another client's ID token", x.trade(t, x.exch, subjectForm(spa.Extra("id_token").(string), typeIDToken)), "invalid_request")
		})

		t.Run("revoked, expired and foreign subjects", func(t *testing.T) {
			other, _ := x.signedIn(t, newBrowser(t, spaCallback), "openid")
			if code, _, body := postForm(t, x.url("/oauth2/revoke"), url.Values{"token": {other.AccessToken}, "client_id": {"spa"}}, "", ""); code != http.StatusOK {
				t.Fatalf("revoke: %d %v", code, body)
			}
			mustRefuse(t, "revoked subject", x.trade(t, x.exch, subjectForm(other.AccessToken, typeAccessToken)), "invalid_request")

			short := testEnv{}
			for k, v := range env {
				short[k] = v
			}
			short["LATCHKEY_ACCESS_TOKEN_TTL"] = "1s"
			tokens := x.passwordTokens(t, short.startServer(t).URL+"/oauth2/token")
			time.Sleep(1500 * time.Millisecond)
			mustRefuse(t, "expired subject", x.trade(t, x.bff, subjectForm(tokens["access_token"].(string), typeAccessToken)), "invalid_request")

			foreign := foreignJWT(t, x.srv.URL, ada, "at+jwt")
			mustRefuse(t, "foreign JWT access token", x.trade(t, x.exch, subjectForm(foreign, typeAccessToken)), "invalid_request")
			mustRefuse(t, "foreign ID token", x.trade(t, x.exch, subjectForm(foreignJWT(t, x.srv.URL, ada, "JWT"), typeIDToken)), "invalid_request")
			mustRefuse(t, "a client's own token as subject", x.trade(t, x.exch, subjectForm(x.serviceToken(t, x.none), typeAccessToken)), "invalid_request")
		})

		t.Run("ending the session ends the exchanged token", func(t *testing.T) {
			env.cli(t, "users", "create", "--email", "bob@example.com", "--password", "bob's long passphrase")
			conf := x.scoped("openid")
			verifier, state := oauth2.GenerateVerifier(), randomString(t)
			q := callback(t, x.walk(newBrowser(t, spaCallback), x.authURL(conf, state, verifier), "bob@example.com", "bob's long passphrase").page)
			bob, _ := x.exchange(t, conf, q.Get("code"), verifier)
			at := mustExchange(t, "bob", x.trade(t, x.exch, subjectForm(bob.AccessToken, typeAccessToken)))
			env.cli(t, "sessions", "revoke", "--user", "bob@example.com", "--all")
			if in := x.introspect(t, at); in["active"] != false {
				t.Fatalf("after the session ended, the exchanged token introspects as %v", in)
			}
			mustRefuse(t, "subject of an ended session", x.trade(t, x.exch, subjectForm(bob.AccessToken, typeAccessToken)), "invalid_request")
		})

		t.Run("40 parallel exchanges", func(t *testing.T) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			seen := map[string]bool{}
			errs := make(chan string, 40)
			for i := 0; i < 40; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					form := subjectForm(spa.AccessToken, typeAccessToken)
					form.Set("grant_type", grantTokenExchange)
					code, _, body := postForm(t, x.url("/oauth2/token"), form, x.exch.ClientID, x.exch.ClientSecret)
					if code != http.StatusOK {
						errs <- fmt.Sprintf("%d %v", code, body)
						return
					}
					mu.Lock()
					seen[body["access_token"].(string)] = true
					mu.Unlock()
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
			if len(seen) != 40 {
				t.Fatalf("%d distinct tokens from 40 exchanges", len(seen))
			}
		})
	})
}

// foreignJWT is a well-formed JWT about sub, claiming our issuer, signed by a key that is not ours.
func foreignJWT(t *testing.T, issuer, sub, typ string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", "foreign"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	payload, _ := json.Marshal(map[string]any{"iss": issuer, "sub": sub, "aud": []string{"orders", "bff"}, "exp": now + 600, "iat": now,
		"client_id": "orders", "scope": "openid"})
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The CLI sets, shows and removes a token exchange policy, with the grant.
func TestTokenExchangeCLI(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	var c struct {
		ID        string   `json:"client_id"`
		Grants    []string `json:"grant_types"`
		Audiences []string `json:"token_exchange_audiences"`
		DelegOnly bool     `json:"token_exchange_delegation_only"`
	}
	show := func(out string) {
		t.Helper()
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	show(env.cli(t, "clients", "create", "--json", "--name", "orders", "--token-exchange", "https://a.example,https://b.example"))
	if fmt.Sprint(c.Grants) != "[client_credentials "+grantTokenExchange+"]" || len(c.Audiences) != 2 || c.DelegOnly {
		t.Fatalf("created: %+v", c)
	}
	show(env.cli(t, "clients", "update", "--json", "--id", c.ID, "--token-exchange-delegation-only"))
	if !c.DelegOnly || len(c.Audiences) != 2 {
		t.Fatalf("delegation only: %+v", c)
	}
	show(env.cli(t, "clients", "update", "--json", "--id", c.ID, "--token-exchange", "-"))
	if fmt.Sprint(c.Grants) != "[client_credentials]" || len(c.Audiences) != 0 || c.DelegOnly {
		t.Fatalf("removed: %+v", c)
	}
	if _, errOut, code := env.cliCode(t, "", "clients", "create", "--name", "spa2", "--public", "--redirect-uris", "http://localhost/cb",
		"--token-exchange", "https://a.example"); code == 0 || !strings.Contains(errOut, "--public") {
		t.Fatalf("a public client with a policy: exit %d, %s", code, errOut)
	}
}
