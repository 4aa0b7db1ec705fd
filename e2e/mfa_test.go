package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/mfa"
)

// Two-factor sign-in (TOTP) through the token API, with codes computed here from the enrolment's secret.

// mfaUser signs a new user up in the fixture's pool and enrols a TOTP factor; it returns the base32 secret's
// bytes, the recovery codes and the access token of the sign-up. Confirmation uses the previous step's code, so
// the current and the next step stay free for the test.
func mfaUser(t *testing.T, api, clientID, email string) ([]byte, []string, string) {
	t.Helper()
	code, _, su := apiCall(t, "POST", api+"/signup", map[string]any{"client_id": clientID, "email": email, "password": "violet-tractor-47"}, nil)
	if code != 201 {
		t.Fatalf("signup: %d %v", code, su)
	}
	tok := su["access_token"].(string)
	code, _, en := apiCall(t, "POST", api+"/mfa/totp/enroll", map[string]any{"password": "violet-tractor-47"}, bearerHeader(tok))
	if code != 201 || !strings.HasPrefix(en["otpauth_uri"].(string), "otpauth://totp/") || !strings.HasPrefix(en["qr_code"].(string), "data:image/png;base64,") {
		t.Fatalf("enroll: %d %v", code, en)
	}
	u, _ := url.Parse(en["otpauth_uri"].(string))
	secret, err := mfa.DecodeSecret(u.Query().Get("secret"))
	if err != nil {
		t.Fatalf("secret: %v", err)
	}
	if code, _, b := apiCall(t, "POST", api+"/mfa/totp/confirm", map[string]any{"code": "000000x"}, bearerHeader(tok)); code != 400 && code != 401 {
		t.Fatalf("confirm with a bad code: %d %v", code, b)
	}
	code, _, cf := apiCall(t, "POST", api+"/mfa/totp/confirm", map[string]any{"code": stepCode(secret, -1)}, bearerHeader(tok))
	if code != 200 {
		t.Fatalf("confirm: %d %v", code, cf)
	}
	var recovery []string
	for _, c := range cf["recovery_codes"].([]any) {
		recovery = append(recovery, c.(string))
	}
	if len(recovery) != 10 {
		t.Fatalf("recovery codes: %v", recovery)
	}
	return secret, recovery, tok
}

// stepCode is the code of the step offset steps from now. A test near a step's end waits for the next one, so
// the steps it names stay within the server's skew for the whole test.
func stepCode(secret []byte, offset int64) string {
	return mfa.Code(secret, mfa.Step(time.Now())+offset)
}

func waitStepStart(t *testing.T) {
	if into := time.Now().Unix() % 30; into > 20 {
		time.Sleep(time.Duration(31-into) * time.Second)
	}
}

func mfaLogin(t *testing.T, api, clientID, email string) (int, map[string]any) {
	t.Helper()
	code, _, b := apiCall(t, "POST", api+"/login", map[string]any{"client_id": clientID, "email": email, "password": "violet-tractor-47"}, nil)
	return code, b
}

func idTokenAMR(t *testing.T, idToken string) []string {
	t.Helper()
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		t.Fatalf("id token %q", idToken)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.AMR
}

func TestMFATokenAPI(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers", "--default-roles", "customer")
		app := env.createClient(t, "--name", "app", "--first-party", "--pool", "customers", "--scopes", "openid profile email offline_access")
		srv := env.startServer(t)
		api := srv.URL + "/api/v1/auth"
		waitStepStart(t)
		secret, recovery, tok := mfaUser(t, api, app.ClientID, "ada@example.com")

		// A second enrolment while one is active is refused.
		if code, _, b := apiCall(t, "POST", api+"/mfa/totp/enroll", map[string]any{"password": "violet-tractor-47"}, bearerHeader(tok)); code != 409 {
			t.Fatalf("second enroll: %d %v", code, b)
		}
		code, _, fl := apiCall(t, "GET", api+"/mfa/factors", nil, bearerHeader(tok))
		if code != 200 || len(fl["factors"].([]any)) != 1 || fl["recovery_codes_left"].(float64) != 10 {
			t.Fatalf("factors: %d %v", code, fl)
		}
		if raw, _ := json.Marshal(fl); strings.Contains(string(raw), "secret") {
			t.Fatalf("the factor list shows a secret: %v", fl)
		}

		// The login now needs the code.
		code, ch := mfaLogin(t, api, app.ClientID, "ada@example.com")
		if code != 401 || ch["error"] != "mfa_required" || ch["mfa_token"] == nil || ch["access_token"] != nil {
			t.Fatalf("login: %d %v", code, ch)
		}
		mt := ch["mfa_token"].(string)
		// Wrong code, and the confirmation's (already used) step: refused, and the challenge survives.
		for _, c := range []string{"123456", stepCode(secret, -1)} {
			if code, _, b := apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": mt, "code": c}, nil); code != 401 || b["error"] != "invalid_grant" {
				t.Fatalf("verify %s: %d %v", c, code, b)
			}
		}
		good := stepCode(secret, 0)
		code, _, tk := apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": mt, "code": good}, nil)
		if code != 200 || tk["access_token"] == nil || tk["refresh_token"] == nil {
			t.Fatalf("verify: %d %v", code, tk)
		}
		if amr := idTokenAMR(t, tk["id_token"].(string)); !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
			t.Fatalf("amr %v", amr)
		}
		// The token is single-use; the same code (same step) with a new challenge is a replay.
		if code, _, b := apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": mt, "code": good}, nil); code != 401 {
			t.Fatalf("reused mfa_token: %d %v", code, b)
		}
		_, ch = mfaLogin(t, api, app.ClientID, "ada@example.com")
		if code, _, b := apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": ch["mfa_token"], "code": good}, nil); code != 401 {
			t.Fatalf("replayed code: %d %v", code, b)
		}
		// A recovery code works once.
		code, _, rc := apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": ch["mfa_token"], "recovery_code": strings.ToUpper(recovery[0])}, nil)
		if code != 200 || !slices.Equal(idTokenAMR(t, rc["id_token"].(string)), []string{"pwd", "mfa"}) {
			t.Fatalf("recovery code: %d %v", code, rc)
		}
		_, ch = mfaLogin(t, api, app.ClientID, "ada@example.com")
		if code, _, b := apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": ch["mfa_token"], "recovery_code": recovery[0]}, nil); code != 401 {
			t.Fatalf("spent recovery code: %d %v", code, b)
		}
		// Brute force on one challenge: 5 tries, then 429.
		_, ch = mfaLogin(t, api, app.ClientID, "ada@example.com")
		var last int
		for i := range 7 {
			last, _, _ = apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": ch["mfa_token"], "code": "00000" + string(rune('0'+i))}, nil)
		}
		if last != 429 {
			t.Fatalf("after 7 wrong codes: %d, want 429", last)
		}

		// The password grant refuses a user with MFA (covered in the token API's login above for the same rule).
		// Removal needs a fresh code: none or a wrong one is refused; a recovery code does it.
		fid := fl["factors"].([]any)[0].(map[string]any)["id"].(string)
		if code, _, b := apiCall(t, "DELETE", api+"/mfa/factors/"+fid, map[string]any{}, bearerHeader(tok)); code != 400 {
			t.Fatalf("remove without a code: %d %v", code, b)
		}
		env.cli(t, "users", "reset-mfa", "--pool", "customers", "--email", "ada@example.com")
		if code, b := mfaLogin(t, api, app.ClientID, "ada@example.com"); code != 200 || b["access_token"] == nil {
			t.Fatalf("login after reset-mfa: %d %v", code, b)
		}

		// Factor removal with a code, by a second user.
		waitStepStart(t)
		s2, _, tok2 := mfaUser(t, api, app.ClientID, "bob@example.com")
		_, _, fl2 := apiCall(t, "GET", api+"/mfa/factors", nil, bearerHeader(tok2))
		fid2 := fl2["factors"].([]any)[0].(map[string]any)["id"].(string)
		if code, _, b := apiCall(t, "DELETE", api+"/mfa/factors/"+fid2, map[string]any{"code": stepCode(s2, 0)}, bearerHeader(tok2)); code != 204 {
			t.Fatalf("remove: %d %v", code, b)
		}
		if code, b := mfaLogin(t, api, app.ClientID, "bob@example.com"); code != 200 {
			t.Fatalf("login after removal: %d %v", code, b)
		}

		// 40 parallel verifies of one challenge: exactly one gets tokens.
		waitStepStart(t)
		s3, _, _ := mfaUser(t, api, app.ClientID, "cy@example.com")
		_, ch = mfaLogin(t, api, app.ClientID, "cy@example.com")
		c3 := stepCode(s3, 0)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, _, b := apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": ch["mfa_token"], "code": c3}, nil)
				if code >= 500 {
					t.Errorf("parallel verify: %d %v", code, b)
				}
				if code == 200 {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d of 40 parallel verifies got tokens, want 1", wins)
		}
	})
}

func TestMFARequiredPool(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "staff", "--mfa", "required")
		app := env.createClient(t, "--name", "app", "--first-party", "--pool", "staff", "--scopes", "openid email")
		env.cli(t, "users", "create", "--pool", "staff", "--email", "dee@example.com", "--password", "violet-tractor-47")
		srv := env.startServer(t)
		api := srv.URL + "/api/v1/auth"
		waitStepStart(t)
		code, ch := mfaLogin(t, api, app.ClientID, "dee@example.com")
		if code != 401 || ch["error"] != "mfa_enrollment_required" {
			t.Fatalf("login: %d %v", code, ch)
		}
		mt := ch["mfa_token"].(string)
		// The enrolment token is no verify token and no access token.
		if code, _, b := apiCall(t, "POST", api+"/mfa/verify", map[string]any{"mfa_token": mt, "code": "123456"}, nil); code != 401 {
			t.Fatalf("verify with an enrolment token: %d %v", code, b)
		}
		if code, _, _ := apiCall(t, "GET", api+"/me", nil, bearerHeader(mt)); code != 401 {
			t.Fatalf("/me with an enrolment token: %d", code)
		}
		code, _, en := apiCall(t, "POST", api+"/mfa/totp/enroll", map[string]any{"mfa_token": mt}, nil)
		if code != 201 {
			t.Fatalf("enroll: %d %v", code, en)
		}
		u, _ := url.Parse(en["otpauth_uri"].(string))
		secret, _ := mfa.DecodeSecret(u.Query().Get("secret"))
		code, _, cf := apiCall(t, "POST", api+"/mfa/totp/confirm", map[string]any{"mfa_token": mt, "code": stepCode(secret, 0)}, nil)
		if code != 200 || cf["access_token"] == nil || len(cf["recovery_codes"].([]any)) != 10 {
			t.Fatalf("confirm: %d %v", code, cf)
		}
		if amr := idTokenAMR(t, cf["id_token"].(string)); !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
			t.Fatalf("amr %v", amr)
		}
		// Now an ordinary MFA login.
		if code, b := mfaLogin(t, api, app.ClientID, "dee@example.com"); code != 401 || b["error"] != "mfa_required" {
			t.Fatalf("login after enrolment: %d %v", code, b)
		}
		// pools update --mfa off: no new enrolments, but the enrolled factor is still asked for.
		env.cli(t, "pools", "update", "staff", "--mfa", "off")
		if code, b := mfaLogin(t, api, app.ClientID, "dee@example.com"); code != 401 || b["error"] != "mfa_required" {
			t.Fatalf("login with mfa off: %d %v", code, b)
		}
	})
}
