package e2e

import (
	"net/http"
	"net/url"
	"sync"
	"testing"

	"golang.org/x/oauth2"
)

// raceTokenCalls sends the same token request from n goroutines at once (released together) and returns each
// answer's status and body.
func raceTokenCalls(t *testing.T, e *edge, n int, form url.Values) ([]int, []map[string]any) {
	t.Helper()
	codes, bodies := make([]int, n), make([]map[string]any, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			codes[i], bodies[i] = e.tokenCall(t, f)
		}()
	}
	close(start)
	wg.Wait()
	return codes, bodies
}

// oneWinner asserts exactly one 200 and invalid_grant for every other answer, and returns the winner's body.
func oneWinner(t *testing.T, codes []int, bodies []map[string]any) map[string]any {
	t.Helper()
	var winner map[string]any
	for i, c := range codes {
		switch {
		case c == http.StatusOK && winner == nil:
			winner = bodies[i]
		case c == http.StatusOK:
			t.Errorf("a second concurrent redemption succeeded")
		case c != http.StatusBadRequest || bodies[i]["error"] != "invalid_grant":
			t.Errorf("loser answered %d %v, want 400 invalid_grant", c, bodies[i])
		}
	}
	if winner == nil {
		t.Fatalf("no redemption succeeded: %v", codes)
	}
	return winner
}

// One code, one winner (RFC 6749 §4.1.2): of 40 concurrent exchanges of one code exactly one gets tokens, the
// others invalid_grant, and the winner's tokens are revoked because the code was used twice. The same for one
// refresh token presented 40 times at once (RFC 9700 §4.14.2).
func TestConcurrentRedemptionHasOneWinnerAndRevokesIt(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		e := newEdge(t, env)
		introspector := env.createClient(t, "--name", "rs")
		active := func(token string) bool {
			t.Helper()
			code, _, body := postForm(t, e.srv.URL+"/oauth2/introspect", url.Values{"token": {token}}, introspector.ClientID, introspector.ClientSecret)
			if code != http.StatusOK {
				t.Fatalf("introspect: %d %v", code, body)
			}
			return body["active"] == true
		}

		t.Run("authorization code", func(t *testing.T) {
			conf := e.scoped("openid", "offline_access")
			verifier, state := oauth2.GenerateVerifier(), randomString(t)
			q := callback(t, e.walk(newBrowser(t, spaCallback), e.authURL(conf, state, verifier)).page)
			codes, bodies := raceTokenCalls(t, e, 40, url.Values{
				"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {verifier},
				"redirect_uri": {spaCallback},
			})
			winner := oneWinner(t, codes, bodies)
			at, _ := winner["access_token"].(string)
			rt, _ := winner["refresh_token"].(string)
			if active(at) {
				t.Errorf("the winner's access token is still active after the code was used twice")
			}
			e.mustRefreshFail(t, rt, "the winner's refresh token after the code was used twice")
		})

		t.Run("refresh token", func(t *testing.T) {
			tok, _ := e.signedIn(t, newBrowser(t, spaCallback), "openid", "offline_access")
			codes, bodies := raceTokenCalls(t, e, 40, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
			winner := oneWinner(t, codes, bodies)
			if at, _ := winner["access_token"].(string); active(at) {
				t.Errorf("the winner's access token is still active after the refresh token was used twice")
			}
			rt, _ := winner["refresh_token"].(string)
			e.mustRefreshFail(t, rt, "the winner's refresh token after the refresh token was used twice")
		})
	})
}
