package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Paging through users while others are created: every user that existed when the listing began is listed
// exactly once, and no user twice (keyset cursors, not offsets).
func TestAdminAPIPagesUnderConcurrentInserts(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		ops := env.createClient(t, "--name", "ops", "--admin")
		srv := env.startServer(t)
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))
		create := func(i int) string {
			code, _, u := api.call(t, "POST", "/users", nil, "", map[string]any{"email": fmt.Sprintf("u%03d@example.com", i), "password": "violet-tractor-47", "pool": "customers"}, nil)
			if code != 201 {
				t.Errorf("create user %d: %d %v", i, code, u) // not Fatal: it runs on another goroutine too
				return ""
			}
			return u["id"].(string)
		}
		before := map[string]bool{}
		for i := range 24 {
			before[create(i)] = true
		}

		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // inserts while the pages are read
			defer wg.Done()
			for i := 100; i < 116; i++ {
				create(i)
			}
		}()
		seen := map[string]int{}
		cursor, pages := "", 0
		for {
			q := "?pool=customers&limit=5"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			code, _, page := api.call(t, "GET", "/users", nil, q, nil, nil)
			if code != 200 {
				t.Fatalf("page %d: %d %v", pages, code, page)
			}
			pages++
			for _, id := range ids(page["users"], "id") {
				seen[id]++
			}
			next, _ := page["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		wg.Wait()
		for id, n := range seen {
			if n != 1 {
				t.Errorf("user %s listed %d times", id, n)
			}
		}
		for id := range before {
			if seen[id] != 1 {
				t.Errorf("user %s, there before the listing began, listed %d times", id, seen[id])
			}
		}
		if pages < 5 {
			t.Errorf("%d pages of 5 for at least 24 users", pages)
		}
		for _, q := range []string{"?limit=0", "?limit=201", "?limit=x", "?cursor=not-a-cursor"} {
			if code, _, b := api.call(t, "GET", "/users", nil, q, nil, nil); code != 400 || b["field"] == nil {
				t.Errorf("GET /users%s: %d %v", q, code, b)
			}
		}
		// Clients page the same way.
		for i := range 3 {
			api.call(t, "POST", "/clients", nil, "", map[string]any{"client_id": fmt.Sprintf("c%d", i), "pool": "customers"}, nil)
		}
		_, _, p1 := api.call(t, "GET", "/clients", nil, "?limit=2", nil, nil)
		_, _, p2 := api.call(t, "GET", "/clients", nil, "?limit=2&cursor="+p1["next_cursor"].(string), nil, nil)
		got := append(ids(p1["clients"], "client_id"), ids(p2["clients"], "client_id")...)
		if strings.Join(got, ",") != ops.ClientID+",c0,c1,c2" || p2["next_cursor"] != nil {
			t.Errorf("clients over two pages: %v, then %v", got, p2["next_cursor"])
		}
	})
}

// Every documented operation is served by the real server and every route it serves under the prefix is
// documented (its router walked); without a token each operation answers 401 (not the router's 404 or 405), with
// the documented error body; the document itself needs no token.
func TestAdminAPIDocumentedRoutesAreServed(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	srv := env.startServer(t)
	api := &adminAPI{base: srv.URL + adminPrefix, doc: loadAdminDoc(t, srv.URL)}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	_, _, raw := get(t, srv.URL+adminPrefix+"/openapi.json")
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	// Both ways against the real server's router, whichever family mounts under the prefix.
	var documented, mounted []string
	for tpl, item := range doc.Paths {
		for m := range item {
			if m != "parameters" {
				documented = append(documented, strings.ToUpper(m)+" "+tpl)
			}
		}
	}
	for _, r := range srv.app.Routes() {
		if method, path, _ := strings.Cut(r, " "); strings.HasPrefix(path, adminPrefix+"/") {
			mounted = append(mounted, method+" "+strings.TrimPrefix(path, adminPrefix))
		}
	}
	for _, r := range mounted {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is served but not in openapi.json", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(mounted, r) {
			t.Errorf("%s is in openapi.json but not served", r)
		}
	}
	n := 0
	for tpl, item := range doc.Paths {
		for m := range item {
			method := strings.ToUpper(m)
			if m == "parameters" || tpl == "/openapi.json" {
				continue
			}
			vars := make([]string, strings.Count(tpl, "{"))
			for i := range vars {
				vars[i] = "x"
			}
			var body any
			if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
				body = map[string]any{}
			}
			if code, hdr, b := api.call(t, method, tpl, vars, "", body, nil); code != 401 || hdr.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s without a token: %d %v", method, tpl, code, b)
			}
			n++
		}
	}
	if n < 20 {
		t.Errorf("only %d operations tried", n)
	}
}

// A storage failure is ours: 503 temporarily_unavailable with Retry-After (documented on every operation), never a
// 4xx blaming the caller; once storage is back the same call works. SQLite locked past its busy timeout by another
// process is the outage here (as in TestClientSecretJWTOutageIsUnavailable).
func TestAdminAPIStorageOutageIs503(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	ops := env.createClient(t, "--name", "ops", "--admin")
	srv := env.startServer(t)
	api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))
	_, _, u := api.call(t, "POST", "/users", nil, "", map[string]any{"email": "dee@example.com", "password": "violet-tractor-47"}, nil)
	id := u["id"].(string)

	db, _ := rawDB(t, env)
	ctx := context.Background()
	lock, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	code, hdr, b := api.call(t, "PATCH", "/users/{id}", []string{id}, "", map[string]any{"name": "Dee"}, nil)
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if code != 503 || hdr.Get("Retry-After") == "" || b["error"] != "temporarily_unavailable" {
		t.Errorf("PATCH while the database is locked: %d %v Retry-After=%q", code, b, hdr.Get("Retry-After"))
	}
	if code, _, p := api.call(t, "PATCH", "/users/{id}", []string{id}, "", map[string]any{"name": "Dee"}, nil); code != 200 || p["name"] != "Dee" {
		t.Errorf("once the database is back: %d %v", code, p)
	}
}
