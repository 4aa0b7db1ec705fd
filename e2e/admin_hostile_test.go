package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hostile input to the admin API's lists: forged cursors at the ends of the int64 range, a flood of ?type=
// filters, times at the ends of RFC 3339: each a 400 or an answer, never a 500.
func TestAdminAPIHostileListParamsAreNeverFaults(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ops := env.createClient(t, "--name", "ops", "--admin")
		srv := env.startServer(t)
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))
		api.call(t, "POST", "/users", nil, "", map[string]any{"email": "dee@example.com", "password": "violet-tractor-47"}, nil)

		b64 := base64.RawURLEncoding.EncodeToString
		var queries []struct{ tpl, q string }
		for _, ts := range []string{"-9223372036854775808", "9223372036854775807", "-62135596800000001", "253402300800000000"} {
			c := b64([]byte(`{"t":` + ts + `,"id":"x"}`))
			queries = append(queries, struct{ tpl, q string }{"/users", "?cursor=" + c}, struct{ tpl, q string }{"/clients", "?cursor=" + c},
				struct{ tpl, q string }{"/audit-events", "?cursor=" + b64([]byte(ts+".1"))})
		}
		for _, tm := range []string{"0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00%2B23:59", "9999-12-31T23:59:59-23:59"} {
			queries = append(queries, struct{ tpl, q string }{"/audit-events", "?since=" + tm}, struct{ tpl, q string }{"/audit-events", "?until=" + tm})
		}
		queries = append(queries, struct{ tpl, q string }{"/audit-events", "?type=" + strings.Repeat("user.created,", 2400)})
		for _, q := range queries {
			code, _, b := api.call(t, "GET", q.tpl, nil, q.q, nil, nil)
			if code != 200 && code != 400 {
				t.Errorf("GET %s%.120s: %d %v", q.tpl, q.q, code, b)
			}
		}
	})
}

// Of 40 concurrent conditional writes (PATCH, then DELETE) carrying one ETag, exactly one wins.
func TestAdminAPIFortyWritersOneETagOneWins(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		ops := env.createClient(t, "--name", "ops", "--admin")
		env.createClient(t, "--id", "shop", "--pool", "customers")
		srv := env.startServer(t)
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))
		_, _, u := api.call(t, "POST", "/users", nil, "", map[string]any{"email": "dee@example.com", "password": "violet-tractor-47", "pool": "customers"}, nil)
		for _, res := range []struct{ tpl, id, field string }{
			{"/users/{id}", u["id"].(string), "name"},
			{"/clients/{id}", "shop", "client_name"},
		} {
			for _, method := range []string{"PATCH", "DELETE"} {
				_, hdr, _ := api.call(t, "GET", res.tpl, []string{res.id}, "", nil, nil)
				const writers = 40
				codes := make([]int, writers)
				var wg sync.WaitGroup
				for i := range writers {
					wg.Go(func() {
						var body any
						if method == "PATCH" {
							body = map[string]any{res.field: fmt.Sprintf("writer %d", i)}
						}
						codes[i], _, _ = api.call(t, method, res.tpl, []string{res.id}, "", body, map[string]string{"If-Match": hdr.Get("ETag")})
					})
				}
				wg.Wait()
				won := 0
				for _, c := range codes {
					if c >= 200 && c < 300 {
						won++
					} else if c != 412 && c != 404 {
						t.Errorf("%s %s: a loser answered %d", method, res.tpl, c)
					}
				}
				if won != 1 {
					t.Errorf("%s %s: %d writers won (codes %v), want exactly one", method, res.tpl, won, codes)
				}
			}
		}
	})
}

// While the database refuses writes, the admin API's writes (the webhooks', and a sample of the others: the
// endpoints already held to this elsewhere are left out, each costs the lock's wait) answer 503 with
// Retry-After: never a 4xx blaming the caller, never a 500; and the outbox worker's claims, failing meanwhile,
// do not keep the one SQLite connection from the requests for so long that they time out.
func TestAdminAPIWritesDuringOutageAre503(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, databases()[0].url(t))
	env.cli(t, "pools", "create", "customers")
	ops := env.createClient(t, "--name", "ops", "--admin")
	env.createClient(t, "--id", "shop", "--pool", "customers")
	srv := env.startServer(t)
	api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))
	_, _, u := api.call(t, "POST", "/users", nil, "", map[string]any{"email": "dee@example.com", "password": "violet-tractor-47", "pool": "customers"}, nil)
	uid := u["id"].(string)
	_, _, wh := api.call(t, "POST", "/webhooks", nil, "", map[string]any{"url": "https://hooks.example.com/a", "events": []string{"user.created"}}, nil)
	whID := wh["id"].(string)

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
	defer lock.ExecContext(ctx, "ROLLBACK")
	for _, c := range []struct {
		method, tpl string
		vars        []string
		body        any
	}{
		{"POST", "/webhooks", nil, map[string]any{"url": "https://hooks.example.com/b", "events": []string{"user.created"}}},
		{"PATCH", "/webhooks/{id}", []string{whID}, map[string]any{"enabled": false}},
		{"POST", "/webhooks/{id}/secret", []string{whID}, nil},
		{"DELETE", "/webhooks/{id}", []string{whID}, nil},
		{"POST", "/clients/{id}/secret", []string{"shop"}, nil},
		{"DELETE", "/users/{id}/sessions", []string{uid}, nil},
		{"POST", "/keys/rotation", nil, nil},
	} {
		code, hdr, b := api.call(t, c.method, c.tpl, c.vars, "", c.body, nil)
		if code != 503 || hdr.Get("Retry-After") == "" {
			t.Errorf("%s %s while the database is locked: %d %v Retry-After=%q", c.method, c.tpl, code, b, hdr.Get("Retry-After"))
		}
	}
}

// Bytes no database column holds (invalid UTF-8, NUL) in ids, filters and cursors are not found or 400, never a
// 500 from the database refusing the parameter.
func TestAdminAPIUnstorableBytesAreNeverFaults(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ops := env.createClient(t, "--name", "ops", "--admin")
		srv := env.startServer(t)
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))
		_, _, wh := api.call(t, "POST", "/webhooks", nil, "", map[string]any{"url": "https://hooks.example.com/a", "events": []string{"user.created"}}, nil)
		whID := wh["id"].(string)
		b64 := base64.RawURLEncoding.EncodeToString
		for _, bad := range []string{"\xff\xfe", "a\x00b"} {
			for _, c := range []struct {
				method, tpl string
				vars        []string
				query       string
				body        any
			}{
				{"GET", "/users/{id}", []string{bad}, "", nil},
				{"PATCH", "/users/{id}", []string{bad}, "", map[string]any{"name": "x"}},
				{"DELETE", "/users/{id}", []string{bad}, "", nil},
				{"GET", "/users/{id}/sessions", []string{bad}, "", nil},
				{"DELETE", "/users/{id}/sessions/{sid}", []string{"x", bad}, "", nil},
				{"GET", "/clients/{id}", []string{bad}, "", nil},
				{"PATCH", "/clients/{id}", []string{bad}, "", map[string]any{"client_name": "x"}},
				{"DELETE", "/clients/{id}", []string{bad}, "", nil},
				{"POST", "/clients/{id}/secret", []string{bad}, "", nil},
				{"GET", "/pools/{name}", []string{bad}, "", nil},
				{"GET", "/webhooks/{id}", []string{bad}, "", nil},
				{"PATCH", "/webhooks/{id}", []string{bad}, "", map[string]any{"enabled": false}},
				{"DELETE", "/webhooks/{id}", []string{bad}, "", nil},
				{"GET", "/webhooks/{id}/deliveries", []string{bad}, "", nil},
				{"POST", "/webhooks/{id}/deliveries/{did}/redeliver", []string{whID, bad}, "", nil},
				{"GET", "/users", nil, "?pool=" + url.QueryEscape(bad), nil},
				{"GET", "/users", nil, "?email=" + url.QueryEscape(bad), nil},
				{"GET", "/users", nil, "?cursor=" + b64([]byte(`{"t":1,"id":"`+bad+`"}`)), nil},
				{"GET", "/clients", nil, "?pool=" + url.QueryEscape(bad), nil},
				{"GET", "/clients", nil, "?cursor=" + b64([]byte(`{"t":1,"id":"`+bad+`"}`)), nil},
				{"GET", "/webhooks", nil, "?pool=" + url.QueryEscape(bad), nil},
				{"GET", "/audit-events", nil, "?user_id=" + url.QueryEscape(bad), nil},
				{"GET", "/audit-events", nil, "?client_id=" + url.QueryEscape(bad), nil},
				{"GET", "/audit-events", nil, "?pool=" + url.QueryEscape(bad), nil},
				{"POST", "/webhooks", nil, "", map[string]any{"url": "https://hooks.example.com/" + bad, "events": []string{"user.created"}}},
				{"POST", "/webhooks", nil, "", map[string]any{"url": "https://hooks.example.com/", "events": []string{"user.created"}, "pool": bad}},
			} {
				code, _, b := api.call(t, c.method, c.tpl, c.vars, c.query, c.body, nil)
				if code >= 500 {
					t.Errorf("%s %s %q %s: %d %v", c.method, c.tpl, c.vars, c.query, code, b)
				}
			}
		}
	})
}

// Without trusted proxies, what a caller writes in X-Forwarded-For (or Forwarded, X-Real-IP) is not the address
// the audit log records for its change: the TCP peer is.
func TestAuditAddressIsNotTheCallersToChoose(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		ops := env.createClient(t, "--name", "ops", "--admin")
		srv := env.startServer(t)
		api := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, ops))
		code, _, u := api.call(t, "POST", "/users", nil, "", map[string]any{"email": "dee@example.com", "password": "violet-tractor-47"},
			map[string]string{"X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9", "X-Real-IP": "203.0.113.9"})
		if code != 201 {
			t.Fatalf("create user: %d %v", code, u)
		}
		events := auditList(t, env, "--type", "user.created", "--user", u["id"].(string))
		if len(events) != 1 || events[0].IP != "127.0.0.1" || events[0].Actor != "client:"+ops.ClientID {
			t.Errorf("user.created recorded as %+v, want ip 127.0.0.1 by client:%s", events, ops.ClientID)
		}
	})
}

// A pool-limited admin client rotating a client's secret while an admin of every pool makes that client an admin
// client must not come away with the new admin client's secret: what made the client its to manage is checked
// by the write itself, not only by the read before it (hashing the new secret sits between the two).
func TestAdminAPILimitedAdminCannotRaceIntoAnAdminClient(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		env.cli(t, "pools", "create", "customers")
		root := env.createClient(t, "--name", "root", "--admin")
		xano := env.createClient(t, "--id", "xano", "--pool", "customers", "--admin", "--admin-pools", "customers")
		srv := env.startServer(t)
		rootAPI := newAdminAPI(t, srv.URL, adminToken(t, srv.URL, root))
		limited := rootAPI.as(adminToken(t, srv.URL, xano))
		for round := range 8 {
			id := fmt.Sprintf("app-%d", round)
			if code, _, b := rootAPI.call(t, "POST", "/clients", nil, "", map[string]any{"client_id": id, "pool": "customers", "grant_types": []string{"client_credentials"}}, nil); code != 201 {
				t.Fatalf("create %s: %d %v", id, code, b)
			}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					limited.call(t, "POST", "/clients/{id}/secret", []string{id}, "", nil, nil)
				}
			})
			time.Sleep(30 * time.Millisecond)
			if code, _, b := rootAPI.call(t, "PATCH", "/clients/{id}", []string{id}, "", map[string]any{"admin": true}, nil); code != 200 {
				t.Fatalf("promote %s: %d %v", id, code, b)
			}
			time.Sleep(30 * time.Millisecond)
			close(stop)
			wg.Wait()
			// The audit log orders the writes as they committed: no rotation by the limited admin after the
			// promotion (its secret, answered to it, would be an admin client's).
			promoted := int64(0)
			events := auditList(t, env, "--type", "client.updated,client.secret_rotated")
			slices.Reverse(events) // oldest first
			for _, e := range events {
				switch {
				case e.ClientID != id:
				case e.Type == "client.updated":
					promoted = e.ID
				case promoted != 0 && e.Actor == "client:xano":
					t.Fatalf("round %d: the limited admin rotated the secret of %s after it became an admin client", round, id)
				}
			}
			if promoted == 0 {
				t.Fatalf("round %d: no client.updated event of %s", round, id)
			}
		}
	})
}
