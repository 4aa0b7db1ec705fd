package keys

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	testRetain  = time.Hour
	testRefresh = 30 * time.Second
)

// newTestManager returns a Manager on store with an injected clock and a logger writing to logs (may be nil).
func newTestManager(t testing.TB, store Store, clk *clock, logs *syncBuffer, tweak ...func(*Options)) *Manager {
	t.Helper()
	var h slog.Handler = slog.DiscardHandler
	if logs != nil {
		h = slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	opts := Options{Now: clk.Now, Logger: slog.New(h), RetainFor: testRetain, RefreshEvery: testRefresh}
	for _, f := range tweak {
		f(&opts)
	}
	m, err := NewManager(store, testSecret, opts)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

func loadedManager(t testing.TB, store Store, clk *clock) *Manager {
	t.Helper()
	m := newTestManager(t, store, clk, nil)
	if err := m.Load(context.Background()); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return m
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// signingKIDs maps each algorithm to the kid m signs with.
func signingKIDs(t *testing.T, m *Manager) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, alg := range Algorithms {
		k, err := m.SigningKey(alg)
		if err != nil {
			t.Fatalf("SigningKey(%s): %v", alg, err)
		}
		out[alg] = k.KeyID
	}
	return out
}

// jwksKIDs returns the kids in m's JWKS, in order, after checking that the set holds no private material.
func jwksKIDs(t *testing.T, m *Manager) []string {
	t.Helper()
	body, etag := m.JWKS()
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 3 {
		t.Fatalf("ETag %s is not a quoted strong etag", etag)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS is not JSON: %v\n%s", err, body)
	}
	var kids []string
	for _, k := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := k[private]; ok {
				t.Fatalf("JWKS key %v carries private member %q", k["kid"], private)
			}
		}
		if k["use"] != "sig" || k["alg"] == nil || k["kid"] == nil {
			t.Fatalf("JWKS key lacks use=sig, alg or kid: %v", k)
		}
		kids = append(kids, k["kid"].(string))
	}
	return kids
}

func TestNewManagerRejectsBadOptions(t *testing.T) {
	clk := newClock()
	good := Options{Now: clk.Now, RetainFor: time.Hour}
	tests := []struct {
		name   string
		store  Store
		secret []byte
		opts   func(o Options) Options
	}{
		{"nil store", nil, testSecret, func(o Options) Options { return o }},
		{"short secret", &fakeStore{}, testSecret[:16], func(o Options) Options { return o }},
		{"no RetainFor", &fakeStore{}, testSecret, func(o Options) Options { o.RetainFor = 0; return o }},
		{"negative RotateEvery", &fakeStore{}, testSecret, func(o Options) Options { o.RotateEvery = -1; return o }},
		{"RSA below 2048 bits", &fakeStore{}, testSecret, func(o Options) Options { o.RSABits = 1024; return o }},
		{"negative JWKSMaxAge", &fakeStore{}, testSecret, func(o Options) Options { o.JWKSMaxAge = -1; return o }},
		{"RotateEvery not longer than the activation delay", &fakeStore{}, testSecret, func(o Options) Options {
			o.RefreshEvery, o.JWKSMaxAge, o.RotateEvery = time.Minute, time.Hour, time.Hour+2*time.Minute
			return o
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewManager(tt.store, tt.secret, tt.opts(good)); err == nil {
				t.Fatal("NewManager succeeded, want error")
			}
		})
	}
}

func TestManagerBeforeLoad(t *testing.T) {
	m := newTestManager(t, &fakeStore{}, newClock(), nil)
	if _, err := m.SigningKey(RS256); err == nil {
		t.Fatal("SigningKey before Load succeeded")
	}
	if kids := jwksKIDs(t, m); len(kids) != 0 {
		t.Fatalf("JWKS before Load has keys %v", kids)
	}
	if body, _ := m.JWKS(); string(body) != `{"keys":[]}` {
		t.Fatalf("empty JWKS = %s", body)
	}
}

func TestLoadGeneratesOnceAndReuses(t *testing.T) {
	ctx := t.Context()
	store, clk := &fakeStore{}, newClock()
	first := loadedManager(t, store, clk)
	kids := signingKIDs(t, first)
	if got := len(store.all()); got != len(Algorithms) {
		t.Fatalf("store has %d keys after first Load, want %d", got, len(Algorithms))
	}
	if active := store.activeKIDs(t, clk.Now()); !maps.Equal(kids, active) {
		t.Fatalf("manager signs with %v, store's active keys are %v", kids, active)
	}
	if err := first.Load(ctx); err != nil {
		t.Fatalf("second Load on the same manager: %v", err)
	}

	second := loadedManager(t, store, clk)
	if got := len(store.all()); got != len(Algorithms) {
		t.Fatalf("store has %d keys after a fresh manager's Load, want %d", got, len(Algorithms))
	}
	if got := signingKIDs(t, second); !maps.Equal(got, kids) {
		t.Fatalf("fresh manager signs with %v, want the stored %v", got, kids)
	}
	b1, e1 := first.JWKS()
	b2, e2 := second.JWKS()
	if !bytes.Equal(b1, b2) || e1 != e2 {
		t.Fatalf("two nodes serve different JWKS:\n%s %s\n%s %s", b1, e1, b2, e2)
	}

	infos, err := second.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, info := range infos {
		if info.State != StateActive || info.Alg != Algorithms[i] || info.KID != kids[info.Alg] || info.RetiresAt != nil ||
			info.PublishedUntil != nil || !info.ActivatesAt.Equal(clk.Now()) {
			t.Fatalf("List()[%d] = %+v", i, info)
		}
	}
}

func TestKIDIsRFC7638Thumbprint(t *testing.T) {
	store := &fakeStore{}
	m := loadedManager(t, store, newClock())
	for _, rec := range store.all() {
		t.Run(rec.Alg, func(t *testing.T) {
			var pub jose.JSONWebKey
			if err := pub.UnmarshalJSON(rec.PublicJWK); err != nil {
				t.Fatal(err)
			}
			tp, err := pub.Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			want := base64.RawURLEncoding.EncodeToString(tp)
			if rec.KID != want || pub.KeyID != want {
				t.Fatalf("record kid %s, JWK kid %s, thumbprint %s", rec.KID, pub.KeyID, want)
			}
			priv, err := m.SigningKey(rec.Alg)
			if err != nil {
				t.Fatal(err)
			}
			if priv.KeyID != want || priv.Algorithm != rec.Alg || priv.Use != "sig" || priv.IsPublic() {
				t.Fatalf("SigningKey = kid %s alg %s use %s public %v", priv.KeyID, priv.Algorithm, priv.Use, priv.IsPublic())
			}
			for _, member := range []string{`"d"`, `"p"`, `"q"`} {
				if bytes.Contains(rec.PublicJWK, []byte(member)) {
					t.Fatalf("stored public JWK has %s: %s", member, rec.PublicJWK)
				}
			}
		})
	}
}

func TestConcurrentLoadCreatesOneKeyPerAlg(t *testing.T) {
	const nodes = 4
	store, clk := &fakeStore{}, newClock()
	// Hold every node's first read until all have made it, so all of them see an empty store and race to create.
	var arrived sync.WaitGroup
	arrived.Add(nodes)
	store.onList = func(call int) {
		if call <= nodes {
			arrived.Done()
			arrived.Wait()
		}
	}
	managers := make([]*Manager, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range managers {
		managers[i] = newTestManager(t, store, clk, nil)
		wg.Go(func() { errs[i] = managers[i].Load(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d Load: %v", i, err)
		}
	}
	active := store.activeKIDs(t, clk.Now())
	if len(store.all()) != len(Algorithms) || len(active) != len(Algorithms) {
		t.Fatalf("store has %d keys (%v active), want exactly one per algorithm", len(store.all()), active)
	}
	if want := (nodes - 1) * len(Algorithms); store.conflicts != want {
		t.Fatalf("store refused %d inserts, want %d (every loser per alg)", store.conflicts, want)
	}
	for i, m := range managers {
		if got := signingKIDs(t, m); !maps.Equal(got, active) {
			t.Fatalf("node %d signs with %v, store's active keys are %v", i, got, active)
		}
	}
}

// The whole life of a rotated key on one node, with the clock moved by hand: next (published, not signing)
// until the stored activation moment, then active while the old key is retired (published, not signing) until
// every token it signed has expired, then gone from the JWKS.
func TestRotationLifecycle(t *testing.T) {
	for _, keepExpired := range []bool{false, true} {
		name := "store drops expired keys"
		if keepExpired {
			name = "store still returns expired keys"
		}
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			store, clk := &fakeStore{keepExpired: keepExpired}, newClock()
			m := loadedManager(t, store, clk)
			old := signingKIDs(t, m)
			_, etagBefore := m.JWKS()

			rotatedAt := clk.Now()
			delay := m.ActivationDelay()
			if want := 2*testRefresh + DefaultJWKSMaxAge; delay != want {
				t.Fatalf("ActivationDelay = %v, want 2 x refresh + JWKS max-age = %v", delay, want)
			}
			infos, err := m.Rotate(ctx)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			if len(infos) != len(Algorithms) {
				t.Fatalf("Rotate returned %d keys, want %d", len(infos), len(Algorithms))
			}
			activatesAt := rotatedAt.Add(delay)
			next := map[string]string{}
			for i, info := range infos {
				if info.Alg != Algorithms[i] || info.State != StateNext || info.KID == old[info.Alg] ||
					!info.ActivatesAt.Equal(activatesAt) || info.RetiresAt != nil || info.PublishedUntil != nil {
					t.Fatalf("Rotate()[%d] = %+v; want a next key activating at %v", i, info, activatesAt)
				}
				next[info.Alg] = info.KID
			}
			if _, etag := m.JWKS(); etag == etagBefore {
				t.Fatal("ETag did not change when the key set changed")
			}
			notAfter := activatesAt.Add(testRetain + testRefresh)
			for _, rec := range store.all() {
				if rec.KID == old[rec.Alg] && (rec.RetiredAt == nil || !rec.RetiredAt.Equal(activatesAt) ||
					rec.NotAfter == nil || !rec.NotAfter.Equal(notAfter)) {
					t.Fatalf("old %s key retires at %v, published until %v; want %v and %v", rec.Alg, rec.RetiredAt, rec.NotAfter, activatesAt, notAfter)
				}
			}

			wantAll := []string{next[RS256], next[ES256], old[RS256], old[ES256]}
			wantNew := []string{next[RS256], next[ES256]}
			steps := []struct {
				name    string
				advance time.Duration // from the rotation
				signing map[string]string
				state   string // of the new keys; the old ones are active while these are next, then retired
				jwks    []string
			}{
				{"right after rotation the new keys are published, not signing", 0, old, StateNext, wantAll},
				{"a moment before activation the old keys still sign", delay - time.Microsecond, old, StateNext, wantAll},
				{"at the stored activation moment the new keys sign", delay, next, StateActive, wantAll},
				{"a second before NotAfter the old keys are still published", delay + testRetain + testRefresh - time.Second, next, StateActive, wantAll},
				{"at NotAfter the old keys are gone", delay + testRetain + testRefresh, next, StateActive, wantNew},
				{"long after, only the new keys", 10 * testRetain, next, StateActive, wantNew},
			}
			for _, step := range steps {
				clk.Advance(rotatedAt.Add(step.advance).Sub(clk.Now()))
				// Signing follows the clock against the stored moment, with no reload: every node switches at once.
				if got := signingKIDs(t, m); !maps.Equal(got, step.signing) {
					t.Fatalf("%s: signing with %v, want %v", step.name, got, step.signing)
				}
				// The hot path stops vouching for an expired key even before the next reload.
				_, stillValid := m.PublicKey(old[RS256])
				if stillValid != slices.Contains(step.jwks, old[RS256]) {
					t.Fatalf("%s: PublicKey(old) before reload found = %v", step.name, stillValid)
				}
				if err := m.Reload(ctx); err != nil {
					t.Fatalf("%s: Reload: %v", step.name, err)
				}
				if got := signingKIDs(t, m); !maps.Equal(got, step.signing) {
					t.Fatalf("%s: after reload signing with %v, want %v", step.name, got, step.signing)
				}
				if got := jwksKIDs(t, m); !slices.Equal(got, step.jwks) {
					t.Fatalf("%s: JWKS kids = %v, want %v", step.name, got, step.jwks)
				}
				if got := store.activeKIDs(t, clk.Now()); !maps.Equal(got, step.signing) {
					t.Fatalf("%s: the store's states say %v is active, the manager signs with %v", step.name, got, step.signing)
				}
				list, err := m.List(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, info := range list {
					want := step.state
					if info.KID == old[info.Alg] {
						want = StateRetired
						if step.state == StateNext {
							want = StateActive
						}
					}
					if info.State != want {
						t.Fatalf("%s: List shows %s %s as %s, want %s", step.name, info.Alg, info.KID, info.State, want)
					}
				}
				for _, alg := range Algorithms {
					if _, ok := m.PublicKey(old[alg]); ok != slices.Contains(step.jwks, old[alg]) {
						t.Fatalf("%s: PublicKey(old %s) found = %v", step.name, alg, ok)
					}
					if _, ok := m.PublicKey(next[alg]); !ok {
						t.Fatalf("%s: PublicKey(new %s) not found", step.name, alg)
					}
				}
			}
		})
	}
}

// An emergency rotation signs at once; one that overtakes a scheduled rotation retires the scheduled key
// before it ever signs, and still exactly one key is active at every instant.
func TestRotateNow(t *testing.T) {
	ctx := t.Context()
	store, clk := &fakeStore{}, newClock()
	m := loadedManager(t, store, clk)
	old := signingKIDs(t, m)
	scheduled, err := m.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute) // the scheduled keys are still next
	infos, err := m.RotateNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	for i, info := range infos {
		if info.State != StateActive || !info.ActivatesAt.Equal(now) {
			t.Fatalf("RotateNow()[%d] = %+v, want active from %v", i, info, now)
		}
		if got, _ := m.SigningKey(info.Alg); got.KeyID != info.KID {
			t.Fatalf("signing %s with %s right after RotateNow, want %s", info.Alg, got.KeyID, info.KID)
		}
	}
	states := store.states(now)
	for _, alg := range Algorithms {
		if states[old[alg]] != StateRetired {
			t.Errorf("old %s key is %s, want retired", alg, states[old[alg]])
		}
	}
	for _, info := range scheduled {
		if states[info.KID] != StateRetired {
			t.Errorf("overtaken scheduled %s key is %s, want retired", info.Alg, states[info.KID])
		}
	}
	// Through and past the moment the overtaken keys were to activate, the emergency keys keep signing.
	for _, at := range []time.Duration{0, m.ActivationDelay(), 2 * m.ActivationDelay(), testRetain} {
		clk.Advance(now.Add(at).Sub(clk.Now()))
		if err := m.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		for _, info := range infos {
			if got, _ := m.SigningKey(info.Alg); got.KeyID != info.KID {
				t.Fatalf("+%v: signing %s with %s, want the emergency key %s", at, info.Alg, got.KeyID, info.KID)
			}
		}
		if got := store.activeKIDs(t, clk.Now()); len(got) != len(Algorithms) {
			t.Fatalf("+%v: active keys %v", at, got)
		}
		// Every key is still published: the retired ones until tokens they signed have expired.
		if got := len(jwksKIDs(t, m)); at < testRetain && got != 3*len(Algorithms) {
			t.Fatalf("+%v: JWKS has %d keys, want %d", at, got, 3*len(Algorithms))
		}
	}
}

func TestSecondNodePublishesScheduledKeyAndSwitchesWithoutReload(t *testing.T) {
	ctx := t.Context()
	store, clk := &fakeStore{}, newClock()
	a := loadedManager(t, store, clk)
	b := loadedManager(t, store, clk)
	old := signingKIDs(t, b)
	infos, err := a.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Node b's timer reload, any time before activation: it publishes the new keys and keeps signing with the old.
	clk.Advance(testRefresh)
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		if _, ok := b.PublicKey(info.KID); !ok {
			t.Fatalf("node b does not publish the next %s key", info.Alg)
		}
	}
	for _, m := range []*Manager{a, b} {
		if got := signingKIDs(t, m); !maps.Equal(got, old) {
			t.Fatalf("a node signs with %v before activation, want %v", got, old)
		}
	}
	ba, ea := a.JWKS()
	bb, eb := b.JWKS()
	if !bytes.Equal(ba, bb) || ea != eb {
		t.Fatalf("nodes serve different JWKS after rotation:\n%s\n%s", ba, bb)
	}
	// At the stored moment both switch, neither reloading.
	clk.Advance(infos[0].ActivatesAt.Sub(clk.Now()))
	for _, m := range []*Manager{a, b} {
		for _, info := range infos {
			if got, _ := m.SigningKey(info.Alg); got.KeyID != info.KID {
				t.Fatalf("at activation a node signs %s with %s, want %s", info.Alg, got.KeyID, info.KID)
			}
		}
		for _, alg := range Algorithms {
			if _, ok := m.PublicKey(old[alg]); !ok {
				t.Fatalf("a node dropped the retired %s key", alg)
			}
		}
	}
}

func TestSigningKeySignsJWTVerifiableWithJWKS(t *testing.T) {
	store, clk := &fakeStore{}, newClock()
	signer := loadedManager(t, store, clk)
	verifier := loadedManager(t, store, clk) // another node: only the published keys
	body, _ := verifier.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"iss":"https://latchkey.example","sub":"alice","exp":1893456000}`)
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			key, err := signer.SigningKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key},
				(&jose.SignerOptions{}).WithType("JWT"))
			if err != nil {
				t.Fatal(err)
			}
			obj, err := s.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			token, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			kid := parsed.Signatures[0].Header.KeyID
			if kid != key.KeyID {
				t.Fatalf("JWT header kid = %q, want %q", kid, key.KeyID)
			}
			published := set.Key(kid)
			if len(published) != 1 {
				t.Fatalf("JWKS has %d keys with kid %s", len(published), kid)
			}
			got, err := parsed.Verify(published[0])
			if err != nil {
				t.Fatalf("verify with JWKS key: %v", err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("payload = %s", got)
			}
			pub, ok := verifier.PublicKey(kid)
			if !ok {
				t.Fatal("PublicKey(kid) not found")
			}
			if _, err := parsed.Verify(pub); err != nil {
				t.Fatalf("verify with PublicKey: %v", err)
			}
		})
	}
}

func TestAutomaticRotationWhenDue(t *testing.T) {
	const every = 24 * time.Hour
	ctx := t.Context()
	store, clk := &fakeStore{}, newClock()
	logs := &syncBuffer{}
	withRotation := func(o *Options) { o.RotateEvery = every }
	a := newTestManager(t, store, clk, logs, withRotation)
	b := newTestManager(t, store, clk, logs, withRotation)
	for _, m := range []*Manager{a, b} {
		if err := m.Load(ctx); err != nil {
			t.Fatal(err)
		}
	}
	created := clk.Now()
	old := signingKIDs(t, a)
	delay := a.ActivationDelay()

	off := newTestManager(t, store, clk, nil)
	if err := off.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// A successor is scheduled one activation delay early, so it signs when the key is RotateEvery old.
	tests := []struct {
		name string
		m    *Manager
		at   time.Duration
		want []string
	}{
		{"fresh keys are not due", a, 0, nil},
		{"a second before RotateEvery - delay nothing is due", a, every - delay - time.Second, nil},
		{"at RotateEvery - delay every algorithm is due", a, every - delay, Algorithms},
		{"long after, still due", a, 10 * every, Algorithms},
		{"RotateEvery 0 never rotates", off, 100 * every, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.dueForRotation(created.Add(tt.at)); !slices.Equal(got, tt.want) {
				t.Fatalf("dueForRotation = %v, want %v", got, tt.want)
			}
		})
	}

	clk.Advance(every - delay)
	a.rotateDue(ctx)
	if got := signingKIDs(t, a); !maps.Equal(got, old) {
		t.Fatalf("automatic rotation switched keys at once: signing with %v, want %v until activation", got, old)
	}
	states := store.states(clk.Now())
	scheduled := map[string]string{}
	for _, rec := range store.all() {
		if rec.KID != old[rec.Alg] {
			if states[rec.KID] != StateNext || !rec.ActivatesAt.Equal(created.Add(every)) {
				t.Fatalf("automatic rotation stored %s key %s as %s activating %v, want next activating %v",
					rec.Alg, rec.KID, states[rec.KID], rec.ActivatesAt, created.Add(every))
			}
			scheduled[rec.Alg] = rec.KID
		}
	}
	if len(scheduled) != len(Algorithms) {
		t.Fatalf("automatic rotation scheduled %v", scheduled)
	}
	if due := a.dueForRotation(clk.Now()); len(due) != 0 {
		t.Fatalf("with a successor scheduled, %v still due", due)
	}

	// Node b still holds the old snapshot, finds the same keys due, and loses the compare-and-swap.
	b.rotateDue(ctx)
	if got := len(store.all()); got != 2*len(Algorithms) {
		t.Fatalf("store has %d keys, want %d: the losing node rotated too", got, 2*len(Algorithms))
	}
	if !strings.Contains(logs.String(), `level=INFO msg="another node rotated the signing key first"`) {
		t.Fatalf("the losing node did not log its conflict at Info:\n%s", logs)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("a lost rotation was logged as an error:\n%s", logs)
	}
	clk.Advance(delay)
	for name, m := range map[string]*Manager{"winner": a, "loser": b} {
		if got := signingKIDs(t, m); !maps.Equal(got, scheduled) {
			t.Fatalf("%s signs with %v when the keys are RotateEvery old, want %v", name, got, scheduled)
		}
	}
	if due := a.dueForRotation(clk.Now()); len(due) != 0 {
		t.Fatalf("right after activation, %v still due", due)
	}
}

func TestConcurrentRotateOneWinnerPerAlg(t *testing.T) {
	store, clk := &fakeStore{}, newClock()
	managers := []*Manager{loadedManager(t, store, clk), loadedManager(t, store, clk)}
	old := signingKIDs(t, managers[0])
	infos := make([][]KeyInfo, len(managers))
	errs := make([]error, len(managers))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, m := range managers {
		wg.Go(func() {
			<-start
			infos[i], errs[i] = m.Rotate(t.Context())
		})
	}
	close(start)
	wg.Wait()

	winners := map[string]int{}
	for i := range managers {
		for _, info := range infos[i] {
			winners[info.Alg]++
		}
		if len(infos[i]) < len(Algorithms) && !errors.Is(errs[i], ErrRotationConflict) {
			t.Fatalf("node %d lost a rotation with error %v, want ErrRotationConflict", i, errs[i])
		}
		if len(infos[i]) == len(Algorithms) && errs[i] != nil {
			t.Fatalf("node %d won every rotation but returned %v", i, errs[i])
		}
	}
	for _, alg := range Algorithms {
		if winners[alg] != 1 {
			t.Fatalf("%d nodes rotated %s, want exactly 1", winners[alg], alg)
		}
	}
	if len(store.all()) != 2*len(Algorithms) {
		t.Fatalf("store has %d keys, want %d", len(store.all()), 2*len(Algorithms))
	}
	clk.Advance(managers[0].ActivationDelay())
	active := store.activeKIDs(t, clk.Now())
	for i, m := range managers {
		if err := m.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := signingKIDs(t, m)
		if !maps.Equal(got, active) {
			t.Fatalf("node %d signs with %v, store's active keys are %v", i, got, active)
		}
		for _, alg := range Algorithms {
			if got[alg] == old[alg] {
				t.Fatalf("node %d still signs %s with the old key", i, alg)
			}
		}
	}
}

func TestLoadWithWrongSecretFailsClearly(t *testing.T) {
	store, clk := &fakeStore{}, newClock()
	loadedManager(t, store, clk)
	m, err := NewManager(store, otherSecret, Options{Now: clk.Now, RetainFor: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Load(t.Context())
	if !errors.Is(err, ErrSecretMismatch) {
		t.Fatalf("Load with the wrong secret = %v, want ErrSecretMismatch", err)
	}
	if !strings.Contains(err.Error(), "system secret") || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("error does not explain the secret mismatch: %v", err)
	}
	if len(store.all()) != len(Algorithms) {
		t.Fatal("Load with the wrong secret wrote keys")
	}
}

func TestReloadRejectsCorruptRows(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(recs []Record)
		want    string
	}{
		{"private key sealed for another kid", func(r []Record) {
			r[0].SealedPrivate, r[1].SealedPrivate = r[1].SealedPrivate, r[0].SealedPrivate
		}, "does not match"},
		{"public JWK of another key", func(r []Record) {
			r[0].PublicJWK = r[1].PublicJWK
		}, "does not match the row"},
		{"kid that is not the thumbprint", func(r []Record) {
			var k jose.JSONWebKey
			_ = k.UnmarshalJSON(r[0].PublicJWK)
			k.KeyID = "chosen-kid"
			r[0].PublicJWK, _ = k.MarshalJSON()
			r[0].KID = "chosen-kid"
		}, "thumbprint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, clk := &fakeStore{}, newClock()
			m := loadedManager(t, store, clk)
			before := signingKIDs(t, m)
			store.mu.Lock()
			tt.corrupt(store.recs)
			store.mu.Unlock()
			fresh := newTestManager(t, store, clk, nil)
			if err := fresh.Load(t.Context()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load over a corrupt row = %v, want error containing %q", err, tt.want)
			}
			// The running node keeps serving what it had; its cache is keyed by kid, so only a
			// corrupted kid it has never seen can reach it.
			_ = m.Reload(t.Context())
			if got := signingKIDs(t, m); !maps.Equal(got, before) {
				t.Fatalf("running node's keys changed to %v", got)
			}
		})
	}
}

func TestReloadFailureKeepsSnapshot(t *testing.T) {
	store, clk := &fakeStore{}, newClock()
	m := loadedManager(t, store, clk)
	before := signingKIDs(t, m)
	body, etag := m.JWKS()
	store.mu.Lock()
	store.listErr = errors.New("database is down")
	store.mu.Unlock()
	if err := m.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "database is down") {
		t.Fatalf("Reload = %v, want the store's error", err)
	}
	if got := signingKIDs(t, m); !maps.Equal(got, before) {
		t.Fatalf("keys changed after a failed reload: %v", got)
	}
	if b, e := m.JWKS(); !bytes.Equal(b, body) || e != etag {
		t.Fatal("JWKS changed after a failed reload")
	}
}

func TestReloadDecryptsOnlyNewKeys(t *testing.T) {
	store, clk := &fakeStore{}, newClock()
	m := loadedManager(t, store, clk)
	k1, _ := m.SigningKey(RS256)
	if err := m.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	k2, _ := m.SigningKey(RS256)
	if k1.Key != k2.Key {
		t.Fatal("Reload decrypted a key it already had")
	}
	// Callers get their own struct: changing it does not change what others sign with.
	k2.KeyID = "mutated"
	if k3, _ := m.SigningKey(RS256); k3.KeyID == "mutated" {
		t.Fatal("SigningKey returned the snapshot's own struct")
	}
}

// The lesson from the well-known deadlock: signing must not wait for a reload stuck on the database.
func TestHotPathDoesNotWaitForStore(t *testing.T) {
	store, clk := &fakeStore{}, newClock()
	m := loadedManager(t, store, clk)
	kids := signingKIDs(t, m)
	inStore, release := make(chan struct{}), make(chan struct{})
	store.mu.Lock()
	store.onList = func(int) {
		close(inStore)
		<-release
	}
	store.mu.Unlock()
	done := make(chan error)
	go func() { done <- m.Reload(context.Background()) }()
	<-inStore // the reload now holds the manager's reload lock and waits on the "database"

	if got := signingKIDs(t, m); !maps.Equal(got, kids) {
		t.Fatalf("SigningKey during a stuck reload = %v", got)
	}
	if _, ok := m.PublicKey(kids[ES256]); !ok {
		t.Fatal("PublicKey during a stuck reload failed")
	}
	if body, _ := m.JWKS(); len(body) == 0 {
		t.Fatal("JWKS during a stuck reload is empty")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	store, clk := &fakeStore{}, newClock()
	m := newTestManager(t, store, clk, nil, func(o *Options) { o.RotateEvery = time.Hour; o.RefreshEvery = time.Millisecond })
	if err := m.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	// Stop once Run has reloaded twice on its own ticker.
	store.mu.Lock()
	base := store.lists
	store.onList = func(call int) {
		if call >= base+2 {
			cancel()
		}
	}
	store.mu.Unlock()
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	<-done
	if got := len(store.all()); got != len(Algorithms) {
		t.Fatalf("Run rotated keys that were not due: %d keys", got)
	}
}
