package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The HTML sign-in and the account sessions page work for the users of every pool, not only the default one:
// through an authorization request the client's pool decides; reached directly, /login?pool=NAME and
// /account/sessions?pool=NAME name it; without a pool the default pool signs in as before. The same email in two
// pools is two accounts with two passwords, and each path checks the password against the right one.
func TestBrowserSignInEveryPool(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		const customerPassword = "violet-tractor-47" // ada@example.com in customers; adaPassword is the default pool's
		env.cli(t, "pools", "create", "customers")
		env.cli(t, "users", "create", "--pool", "customers", "--email", adaEmail, "--password", customerPassword, "--name", "Ada the customer")
		e := newEdge(t, env, "--pool", "customers") // the SPA signs in the customers pool
		store := e.srv.app.Store()
		ctx := context.Background()
		customer, err := store.UserByEmail(ctx, "customers", adaEmail)
		if err != nil {
			t.Fatal(err)
		}
		staff, err := store.UserByEmail(ctx, "", adaEmail)
		if err != nil {
			t.Fatal(err)
		}
		sessionsOf := func(userID string) int {
			t.Helper()
			l, err := store.ListBrowserSessions(ctx, userID, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return len(l)
		}
		rows := func(body string) int { return strings.Count(body, `name="session_id"`) }
		loginTo := func(b *browserClient, u, password string) page {
			t.Helper()
			p := b.get(u)
			if p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
				t.Fatalf("GET %s: %d, no sign-in form\n%s", u, p.status, p.body)
			}
			return b.submit(p, map[string]string{"email": adaEmail, "password": password})
		}

		t.Run("authorization flow, then the sessions page, as a customer", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			// The default pool's password is wrong here: the client's pool decides.
			w := e.walk(b, e.authURL(e.conf, randomString(t), oauth2Verifier), adaEmail, adaPassword)
			if !w.sawLogin || !strings.Contains(w.body, "Incorrect email or password.") {
				t.Fatalf("the default pool's password signed in to a customers client: at %v (%d)\n%s", w.url, w.status, w.body)
			}
			w = e.walk(b, e.authURL(e.conf, randomString(t), oauth2Verifier), adaEmail, customerPassword)
			callback(t, w.page)
			p := b.get(e.srv.URL + "/account/sessions")
			if p.status != http.StatusOK || rows(p.body) != 1 || !strings.Contains(p.body, adaEmail) {
				t.Fatalf("sessions page of a customer: %d, %d rows\n%s", p.status, rows(p.body), p.body)
			}
			if sessionsOf(customer.ID) != 1 || sessionsOf(staff.ID) != 0 {
				t.Fatalf("sessions: customer %d, default %d; want 1, 0", sessionsOf(customer.ID), sessionsOf(staff.ID))
			}
			// It ends its own session like any user.
			got := post(b, p, formsOf(t, p.body)[0].action, formsOf(t, p.body)[0].values)
			if got.status != http.StatusOK || sessionsOf(customer.ID) != 0 {
				t.Fatalf("ending the customer's session: %d, %d left", got.status, sessionsOf(customer.ID))
			}
		})

		t.Run("the sessions page naming a pool signs in to that pool and comes back", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			target := e.srv.URL + "/account/sessions?pool=customers"
			resp, _ := fetch(t, noRedirects(b), http.MethodGet, target, nil)
			want := "/login?" + url.Values{"pool": {"customers"}, "return_to": {"/account/sessions?pool=customers"}}.Encode()
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != want {
				t.Fatalf("signed out: %d Location=%q, want %q", resp.StatusCode, loc, want)
			}
			if p := loginTo(b, target, adaPassword); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "Incorrect email or password.") {
				t.Fatalf("the default pool's password on the customers form: %d\n%s", p.status, p.body)
			}
			p := loginTo(b, target, customerPassword)
			if p.status != http.StatusOK || p.url.Path != "/account/sessions" || p.url.Query().Get("pool") != "customers" || rows(p.body) != 1 {
				t.Fatalf("after signing in: %d at %v, %d rows\n%s", p.status, p.url, rows(p.body), p.body)
			}
			if sessionsOf(customer.ID) != 1 || sessionsOf(staff.ID) != 0 {
				t.Fatalf("sessions: customer %d, default %d; want 1, 0", sessionsOf(customer.ID), sessionsOf(staff.ID))
			}

			// Signed in as the default pool's ada, the customers' page asks to sign in to customers.
			d := newBrowser(t, spaCallback)
			if p := loginTo(d, e.srv.URL+"/login", adaPassword); p.status != http.StatusOK || p.url.Path != "/account/sessions" {
				t.Fatalf("default pool sign-in: %d at %v", p.status, p.url)
			}
			resp, _ = fetch(t, noRedirects(d), http.MethodGet, target, nil)
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != want {
				t.Fatalf("signed in to another pool: %d Location=%q, want %q", resp.StatusCode, loc, want)
			}
			// Without a pool the page shows whoever is signed in.
			if p := d.get(e.srv.URL + "/account/sessions"); p.status != http.StatusOK || rows(p.body) != 1 {
				t.Fatalf("default pool's sessions page: %d, %d rows", p.status, rows(p.body))
			}
		})

		t.Run("direct sign-in per pool", func(t *testing.T) {
			for _, tc := range []struct {
				name, path, password string
				status               int
				landAt               string
			}{
				{"customers with its password", "/login?pool=customers", customerPassword, http.StatusOK, "/account/sessions?pool=customers"},
				{"customers with the default pool's password", "/login?pool=customers", adaPassword, http.StatusUnauthorized, ""},
				{"no pool is the default pool", "/login", adaPassword, http.StatusOK, "/account/sessions"},
				{"no pool with the customer's password", "/login", customerPassword, http.StatusUnauthorized, ""},
				{"pool=default", "/login?pool=default", adaPassword, http.StatusOK, "/account/sessions"},
				{"a pool and a return_to", "/login?pool=customers&return_to=%2Faccount%2Fsessions", customerPassword, http.StatusOK, "/account/sessions"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					b := newBrowser(t, spaCallback)
					p := loginTo(b, e.srv.URL+tc.path, tc.password)
					if p.status != tc.status {
						t.Fatalf("status %d, want %d\n%s", p.status, tc.status, p.body)
					}
					if tc.landAt != "" && p.url.RequestURI() != tc.landAt {
						t.Errorf("landed at %s, want %s", p.url.RequestURI(), tc.landAt)
					}
					if tc.status == http.StatusUnauthorized {
						// The form to try again keeps the pool.
						action, _ := parseForm(t, p.body)
						if want := strings.TrimPrefix(e.srv.URL+tc.path, e.srv.URL); action != want {
							t.Errorf("retry form action %q, want %q", action, want)
						}
					}
				})
			}
		})

		t.Run("an unknown pool is an error page, not a wrong password", func(t *testing.T) {
			b := newBrowser(t, spaCallback)
			resp, body := fetch(t, noRedirects(b), http.MethodGet, e.srv.URL+"/login?pool=nope", nil)
			isOurErrorPage(t, resp, body, http.StatusNotFound)
			// A posted form naming an unknown pool checks no password either (the CSRF token comes from a good page).
			good := b.get(e.srv.URL + "/login?pool=customers")
			_, values := parseForm(t, good.body)
			values.Set("email", adaEmail)
			values.Set("password", customerPassword)
			resp, body = fetch(t, noRedirects(b), http.MethodPost, e.srv.URL+"/login?pool=nope", values)
			isOurErrorPage(t, resp, body, http.StatusNotFound)
			if resp, _ := fetch(t, noRedirects(b), http.MethodGet, e.srv.URL+"/account/sessions?pool=nope", nil); resp.StatusCode != http.StatusSeeOther {
				t.Errorf("sessions page for an unknown pool: %d, want 303 to its sign-in page", resp.StatusCode)
			}
		})
	})
}

// oauth2Verifier is a fixed PKCE verifier for flows whose code is never exchanged.
const oauth2Verifier = "pool-test-verifier-0123456789abcdefghijklmnopqrstuvwxyz"
