package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// with returns a copy of e with the given variables set ("" removes one).
func (e testEnv) with(kv ...string) testEnv {
	out := testEnv{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

func sqliteTestURL(t *testing.T) (url, path string) {
	path = filepath.Join(t.TempDir(), "latchkey.db")
	return "sqlite://" + path, path
}

func TestBadConfigurationIsOneLineNamingTheSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		kv   []string
		want []string // every setting the message must name
	}{
		{"issuer not a URL", []string{"LATCHKEY_ISSUER", "auth.example.com"}, []string{"LATCHKEY_ISSUER"}},
		{"issuer with another scheme", []string{"LATCHKEY_ISSUER", "ftp://auth.example.com"}, []string{"LATCHKEY_ISSUER"}},
		{"issuer over http on a public host", []string{"LATCHKEY_ISSUER", "http://auth.example.com"}, []string{"LATCHKEY_ISSUER", "https"}},
		{"issuer with a trailing slash", []string{"LATCHKEY_ISSUER", "https://auth.example.com/"}, []string{"LATCHKEY_ISSUER", "trailing slash"}},
		{"issuer with a query", []string{"LATCHKEY_ISSUER", "https://auth.example.com?tenant=a"}, []string{"LATCHKEY_ISSUER"}},
		{"issuer with a fragment", []string{"LATCHKEY_ISSUER", "https://auth.example.com#x"}, []string{"LATCHKEY_ISSUER"}},
		{"passkey relying party not the issuer's domain", []string{"LATCHKEY_ISSUER", "https://auth.example.com", "LATCHKEY_WEBAUTHN_RP_ID", "other.example"}, []string{"LATCHKEY_WEBAUTHN_RP_ID"}},
		{"passkey relying party a top-level domain", []string{"LATCHKEY_ISSUER", "https://auth.example.com", "LATCHKEY_WEBAUTHN_RP_ID", "com"}, []string{"LATCHKEY_WEBAUTHN_RP_ID"}},
		{"passkey origin outside the relying party", []string{"LATCHKEY_ISSUER", "https://auth.example.com", "LATCHKEY_WEBAUTHN_RP_ID", "example.com", "LATCHKEY_WEBAUTHN_ORIGINS", "https://app.example.com,https://evil.example"}, []string{"LATCHKEY_WEBAUTHN_ORIGINS", "evil.example"}},
		{"passkey origin over http", []string{"LATCHKEY_ISSUER", "https://auth.example.com", "LATCHKEY_WEBAUTHN_RP_ID", "example.com", "LATCHKEY_WEBAUTHN_ORIGINS", "http://app.example.com"}, []string{"LATCHKEY_WEBAUTHN_ORIGINS", "https"}},
		{"passkey origin with a path", []string{"LATCHKEY_ISSUER", "https://auth.example.com", "LATCHKEY_WEBAUTHN_ORIGINS", "https://auth.example.com/app"}, []string{"LATCHKEY_WEBAUTHN_ORIGINS"}},
		{"address garbage", []string{"LATCHKEY_ADDR", "garbage"}, []string{"LATCHKEY_ADDR", `"garbage"`}},
		{"address without port", []string{"LATCHKEY_ADDR", "127.0.0.1"}, []string{"LATCHKEY_ADDR"}},
		{"mysql database", []string{"LATCHKEY_DATABASE_URL", "mysql://root@localhost/latchkey"}, []string{"LATCHKEY_DATABASE_URL"}},
		{"sqlite without a path", []string{"LATCHKEY_DATABASE_URL", "sqlite://"}, []string{"LATCHKEY_DATABASE_URL"}},
		{"short secret", []string{"LATCHKEY_SECRET", "too-short"}, []string{"LATCHKEY_SECRET", "32"}},
		{"postgres without a secret", []string{"LATCHKEY_DATABASE_URL", "postgres://localhost/latchkey", "LATCHKEY_SECRET", ""}, []string{"LATCHKEY_SECRET", "PostgreSQL"}},
		{"access token ttl not a duration", []string{"LATCHKEY_ACCESS_TOKEN_TTL", "one hour"}, []string{"LATCHKEY_ACCESS_TOKEN_TTL", "duration"}},
		{"access token ttl bare number", []string{"LATCHKEY_ACCESS_TOKEN_TTL", "3600"}, []string{"LATCHKEY_ACCESS_TOKEN_TTL"}},
		{"negative refresh token ttl", []string{"LATCHKEY_REFRESH_TOKEN_TTL", "-1h"}, []string{"LATCHKEY_REFRESH_TOKEN_TTL", "positive"}},
		{"zero id token ttl", []string{"LATCHKEY_ID_TOKEN_TTL", "0s"}, []string{"LATCHKEY_ID_TOKEN_TTL"}},
		{"negative shutdown timeout", []string{"LATCHKEY_SHUTDOWN_TIMEOUT", "-5s"}, []string{"LATCHKEY_SHUTDOWN_TIMEOUT"}},
		{"auth code ttl over 10m", []string{"LATCHKEY_AUTH_CODE_TTL", "11m"}, []string{"LATCHKEY_AUTH_CODE_TTL", "10m"}},
		{"auth code ttl not a duration", []string{"LATCHKEY_AUTH_CODE_TTL", "1 minute"}, []string{"LATCHKEY_AUTH_CODE_TTL"}},
		{"negative key rotation", []string{"LATCHKEY_KEY_ROTATION", "-24h"}, []string{"LATCHKEY_KEY_ROTATION"}},
		{"key rotation under an hour", []string{"LATCHKEY_KEY_ROTATION", "5m"}, []string{"LATCHKEY_KEY_ROTATION"}},
		{"negative cleanup interval", []string{"LATCHKEY_CLEANUP_INTERVAL", "-1m"}, []string{"LATCHKEY_CLEANUP_INTERVAL"}},
		{"cleanup batch negative", []string{"LATCHKEY_CLEANUP_BATCH", "-1"}, []string{"LATCHKEY_CLEANUP_BATCH"}},
		{"cleanup batch too large", []string{"LATCHKEY_CLEANUP_BATCH", "100001"}, []string{"LATCHKEY_CLEANUP_BATCH"}},
		{"cleanup batch not a number", []string{"LATCHKEY_CLEANUP_BATCH", "lots"}, []string{"LATCHKEY_CLEANUP_BATCH"}},
		{"negative pool size", []string{"LATCHKEY_DB_MAX_CONNS", "-1"}, []string{"LATCHKEY_DB_MAX_CONNS"}},
		{"bad log level", []string{"LATCHKEY_LOG_LEVEL", "verbose"}, []string{"LATCHKEY_LOG_LEVEL"}},
		{"bad log format", []string{"LATCHKEY_LOG_FORMAT", "xml"}, []string{"LATCHKEY_LOG_FORMAT"}},
		{"bad token format", []string{"LATCHKEY_DEFAULT_ACCESS_TOKEN_FORMAT", "paseto"}, []string{"LATCHKEY_DEFAULT_ACCESS_TOKEN_FORMAT"}},
		{"bad signing alg", []string{"LATCHKEY_SIGNING_ALG", "HS256"}, []string{"LATCHKEY_SIGNING_ALG"}},
		{"bad auto migrate", []string{"LATCHKEY_AUTO_MIGRATE", "maybe"}, []string{"LATCHKEY_AUTO_MIGRATE"}},
		{"tiny body limit", []string{"LATCHKEY_MAX_BODY_BYTES", "10"}, []string{"LATCHKEY_MAX_BODY_BYTES"}},
		{"debug listener on every interface", []string{"LATCHKEY_DEBUG_ADDR", ":6060"}, []string{"LATCHKEY_DEBUG_ADDR", "loopback"}},
		{"debug listener on a public address", []string{"LATCHKEY_DEBUG_ADDR", "192.0.2.10:6060"}, []string{"LATCHKEY_DEBUG_ADDR"}},
		{"debug listener without a port", []string{"LATCHKEY_DEBUG_ADDR", "127.0.0.1"}, []string{"LATCHKEY_DEBUG_ADDR"}},
		{"trusted proxy that is a host name", []string{"LATCHKEY_TRUSTED_PROXIES", "10.0.3.0/24, lb.internal"}, []string{"LATCHKEY_TRUSTED_PROXIES", "lb.internal"}},
		{"trusted proxies that are everyone", []string{"LATCHKEY_TRUSTED_PROXIES", "0.0.0.0/0"}, []string{"LATCHKEY_TRUSTED_PROXIES", "every address"}},
		{"body limit not a number", []string{"LATCHKEY_MAX_BODY_BYTES", "64k"}, []string{"LATCHKEY_MAX_BODY_BYTES"}},
		{"several bad settings at once", []string{
			"LATCHKEY_ISSUER", "http://auth.example.com/", "LATCHKEY_ADDR", "nope", "LATCHKEY_DATABASE_URL", "mysql://x",
			"LATCHKEY_ACCESS_TOKEN_TTL", "-1h", "LATCHKEY_AUTH_CODE_TTL", "1h", "LATCHKEY_LOG_LEVEL", "loud",
		}, []string{"LATCHKEY_ISSUER", "LATCHKEY_ADDR", "LATCHKEY_DATABASE_URL", "LATCHKEY_ACCESS_TOKEN_TTL", "LATCHKEY_AUTH_CODE_TTL", "LATCHKEY_LOG_LEVEL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbURL, dbPath := sqliteTestURL(t)
			env := newTestEnv(t, dbURL).with(tc.kv...)
			out, errOut, code := env.cliCode(t, "", "migrate")
			if code != 1 {
				t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			if !strings.HasSuffix(errOut, "\n") || strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr is not exactly one line:\n%s", errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not mention %s:\n%s", w, errOut)
				}
			}
			if v := env["LATCHKEY_SECRET"]; v != "" && strings.Contains(errOut, v) {
				t.Error("the message shows the system secret")
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
			if _, err := os.Stat(dbPath); !os.IsNotExist(err) {
				t.Errorf("a refused configuration still created the database (%v)", err)
			}
		})
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		kv   []string
		args []string
		code int
		want string // on failure, a setting the message names
	}{
		{"a good flag overrides a bad variable", []string{"LATCHKEY_LOG_LEVEL", "verbose"}, []string{"--log-level", "error"}, 0, ""},
		{"a good issuer flag overrides a bad issuer", []string{"LATCHKEY_ISSUER", "not a url"}, []string{"--issuer", "https://auth.example.com"}, 0, ""},
		{"a bad flag overrides a good variable", []string{"LATCHKEY_ISSUER", "https://auth.example.com"}, []string{"--issuer", "http://auth.example.com"}, 1, "LATCHKEY_ISSUER"},
		{"a bad flag is named with its flag", nil, []string{"--access-token-ttl", "soon"}, 1, "--access-token-ttl"},
		{"--flag=value form", []string{"LATCHKEY_AUTH_CODE_TTL", "30m"}, []string{"--auth-code-ttl=5m"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbURL, _ := sqliteTestURL(t)
			env := newTestEnv(t, dbURL).with(tc.kv...)
			_, errOut, code := env.cliCode(t, "", append([]string{"migrate"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tc.code, errOut)
			}
			if tc.want != "" && !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr does not mention %s: %s", tc.want, errOut)
			}
		})
	}

	t.Run("--database-url decides which database is used", func(t *testing.T) {
		envURL, envPath := sqliteTestURL(t)
		flagURL, flagPath := sqliteTestURL(t)
		env := newTestEnv(t, envURL)
		out := env.cli(t, "migrate", "--database-url", flagURL)
		if !strings.Contains(out, "schema version") {
			t.Errorf("migrate output = %q", out)
		}
		if _, err := os.Stat(flagPath); err != nil {
			t.Errorf("the flag's database was not created: %v", err)
		}
		if _, err := os.Stat(envPath); !os.IsNotExist(err) {
			t.Errorf("the environment's database was used despite the flag (%v)", err)
		}
	})
}

func keyIDs(t *testing.T, env testEnv, args ...string) ([]string, string) {
	t.Helper()
	out, errOut, code := env.cliCode(t, "", append([]string{"keys", "list", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("keys list: exit %d: %s", code, errOut)
	}
	var kids []string
	for _, k := range decodeJSON[[]shownKey](t, out) {
		kids = append(kids, k.KID)
	}
	slices.Sort(kids)
	return kids, errOut
}

func TestSQLiteWithoutSecretKeepsOneInAFile(t *testing.T) {
	t.Parallel()
	dbURL, dbPath := sqliteTestURL(t)
	env := newTestEnv(t, dbURL).with("LATCHKEY_SECRET", "")
	secretPath := dbPath + ".secret"

	first, errOut := keyIDs(t, env)
	if len(first) != 2 {
		t.Fatalf("keys = %v", first)
	}
	if !strings.Contains(errOut, "LATCHKEY_SECRET") || !strings.Contains(errOut, secretPath) {
		t.Errorf("no warning naming LATCHKEY_SECRET and the file on stderr:\n%s", errOut)
	}
	fi, err := os.Stat(secretPath)
	if err != nil {
		t.Fatalf("secret file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("secret file mode = %o, want 600", perm)
	}
	b, err := os.ReadFile(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(string(b))
	if len(secret) < 32 {
		t.Errorf("generated secret has %d characters", len(secret))
	}
	if strings.Contains(errOut, secret) {
		t.Error("the warning shows the generated secret")
	}

	t.Run("a second run reuses the file", func(t *testing.T) {
		again, errOut := keyIDs(t, env)
		if !slices.Equal(first, again) {
			t.Errorf("keys changed between runs: %v then %v (the secret was not reused)", first, again)
		}
		if strings.Contains(errOut, "generated") {
			t.Errorf("second run warns about generating again:\n%s", errOut)
		}
		if b2, _ := os.ReadFile(secretPath); string(b2) != string(b) {
			t.Error("the secret file changed")
		}
	})
	t.Run("the file's secret is the system secret", func(t *testing.T) {
		same, _ := keyIDs(t, env.with("LATCHKEY_SECRET", secret))
		if !slices.Equal(first, same) {
			t.Errorf("keys with LATCHKEY_SECRET set to the file's contents = %v, want %v", same, first)
		}
	})
	t.Run("a truncated secret file is refused", func(t *testing.T) {
		url2, path2 := sqliteTestURL(t)
		if err := os.WriteFile(path2+".secret", []byte("short\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := newTestEnv(t, url2).with("LATCHKEY_SECRET", "").cliCode(t, "", "migrate")
		if code != 1 || !strings.Contains(errOut, "LATCHKEY_SECRET") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}

func TestWrongSecretAgainstExistingDatabase(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "migrate")
		if kids, _ := keyIDs(t, env); len(kids) != 2 {
			t.Fatalf("keys = %v", kids)
		}
		wrong := "a-different-system-secret-0123456789-abcdef"
		for _, args := range [][]string{{"keys", "list"}, {"clients", "create", "--name", "x"}, {"migrate"}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				out, errOut, code := env.with("LATCHKEY_SECRET", wrong).cliCode(t, "", args...)
				if code != 1 {
					t.Fatalf("exit %d, want 1\nstdout %s\nstderr %s", code, out, errOut)
				}
				if !strings.Contains(errOut, "LATCHKEY_SECRET") {
					t.Errorf("stderr does not mention LATCHKEY_SECRET:\n%s", errOut)
				}
				if strings.Contains(errOut, wrong) || strings.Contains(errOut, env["LATCHKEY_SECRET"]) {
					t.Error("the message shows a secret")
				}
			})
		}
		if kids, _ := keyIDs(t, env); len(kids) != 2 {
			t.Errorf("a refused start changed the keys: %v", kids)
		}
	})
}

// A port that is out of range or not a number must stop every command at start, not only serve at listen time.
func TestAddrPortIsValidated(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{":99999", ":abc", ":-1", "localhost:http-alt-nope"} {
		t.Run(addr, func(t *testing.T) {
			dbURL, _ := sqliteTestURL(t)
			_, errOut, code := newTestEnv(t, dbURL).with("LATCHKEY_ADDR", addr).cliCode(t, "", "migrate")
			if code != 1 || !strings.Contains(errOut, "LATCHKEY_ADDR") || strings.Count(errOut, "\n") != 1 {
				t.Errorf("LATCHKEY_ADDR=%q: exit %d, stderr %q; want exit 1 and one line naming LATCHKEY_ADDR", addr, code, errOut)
			}
		})
	}
}
