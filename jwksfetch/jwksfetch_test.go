package jwksfetch

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
)

// jwksHost is the client's JWKS host: it counts the requests it answers and serves what the test sets.
type jwksHost struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	body   []byte
	status int
	header http.Header
	delay  time.Duration
}

func newJWKSHost(t *testing.T, body string) *jwksHost {
	h := &jwksHost{body: []byte(body), status: http.StatusOK, header: http.Header{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		h.mu.Lock()
		body, status, delay := h.body, h.status, h.delay
		for k, v := range h.header {
			w.Header()[k] = v
		}
		h.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *jwksHost) serve(body string, header ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.body, h.header = []byte(body), http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.header.Set(header[i], header[i+1])
	}
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newFetcher is a Fetcher that may dial 127.0.0.1 (where httptest listens), and no other internal address.
func newFetcher(opts Options) (*Fetcher, *clock) {
	c := &clock{now: time.Unix(1_700_000_000, 0)}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	f := New(opts)
	f.dialAllowed = func(ip netip.Addr) bool { return ip == netip.MustParseAddr("127.0.0.1") }
	return f, c
}

func keySet(t testing.TB, kids ...string) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, kid := range kids {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func resolveErr(t *testing.T, f *Fetcher, url string, want string) {
	t.Helper()
	set, err := f.Resolve(context.Background(), url, false)
	var fe *Error
	if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Resolve = %v, %v; want an *Error saying %q", set, err, want)
	}
}

func TestResolveCachesPerMaxAge(t *testing.T) {
	host := newJWKSHost(t, keySet(t, "a"))
	f, clk := newFetcher(Options{})
	for _, tc := range []struct {
		cacheControl string
		ttl          time.Duration
	}{
		{"", DefaultTTL},
		{"public, max-age=120", 120 * time.Second},
		{"max-age=5", DefaultMinTTL},         // bounded below
		{"max-age=999999999", DefaultMaxTTL}, // bounded above
		{"no-store", DefaultMinTTL},
	} {
		t.Run(tc.cacheControl, func(t *testing.T) {
			host.serve(keySet(t, "a"), "Cache-Control", tc.cacheControl)
			url := host.URL + "/jwks?cc=" + neturl.QueryEscape(tc.cacheControl) // a URL of its own, not cached yet
			before := host.hits.Load()
			for range 3 {
				set, err := f.Resolve(context.Background(), url, false)
				if err != nil || len(set.Key("a")) != 1 || set.Keys[0].Use != "sig" {
					t.Fatalf("Resolve = %v, %v; want kid a, use sig", set, err)
				}
			}
			clk.advance(tc.ttl - time.Second)
			if _, err := f.Resolve(context.Background(), url, false); err != nil {
				t.Fatal(err)
			}
			if n := host.hits.Load() - before; n != 1 {
				t.Fatalf("%d fetches within the TTL %v, want 1", n, tc.ttl)
			}
			clk.advance(2 * time.Second)
			if _, err := f.Resolve(context.Background(), url, false); err != nil {
				t.Fatal(err)
			}
			if n := host.hits.Load() - before; n != 2 {
				t.Fatalf("%d fetches after the TTL %v, want 2", n, tc.ttl)
			}
		})
	}
}

// 40 assertions at once for a client whose keys are not cached: one fetch.
func TestResolveSingleFlight(t *testing.T) {
	host := newJWKSHost(t, keySet(t, "a"))
	host.delay = 50 * time.Millisecond
	f, _ := newFetcher(Options{})
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 40)
	for range 40 {
		wg.Go(func() {
			<-start
			set, err := f.Resolve(context.Background(), host.URL, false)
			if err == nil && len(set.Key("a")) != 1 {
				err = fmt.Errorf("set %v lacks kid a", set)
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := host.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for 40 concurrent resolves, want 1", n)
	}
}

// An unknown kid makes fosite force a refetch: the first one is honoured (the client rotated its keys), more
// within RefetchInterval are answered from the cache (random kids cannot make us hammer the client's host).
func TestForcedRefetchIsRateLimited(t *testing.T) {
	host := newJWKSHost(t, keySet(t, "old"))
	f, clk := newFetcher(Options{})
	ctx := context.Background()
	if _, err := f.Resolve(ctx, host.URL, false); err != nil {
		t.Fatal(err)
	}
	host.serve(keySet(t, "new")) // rotated at the host
	set, err := f.Resolve(ctx, host.URL, true)
	if err != nil || len(set.Key("new")) != 1 {
		t.Fatalf("forced Resolve = %v, %v; want the rotated key", set, err)
	}
	for range 50 {
		if _, err := f.Resolve(ctx, host.URL, true); err != nil {
			t.Fatal(err)
		}
	}
	if n := host.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after 50 more forced resolves, want 2", n)
	}
	clk.advance(DefaultRefetchInterval)
	if _, err := f.Resolve(ctx, host.URL, true); err != nil {
		t.Fatal(err)
	}
	if n := host.hits.Load(); n != 3 {
		t.Fatalf("%d fetches once the interval passed, want 3", n)
	}
}

// A failing host is asked again only after RefetchInterval; a forced refetch that fails keeps the fresh set.
func TestFailuresAreRemembered(t *testing.T) {
	host := newJWKSHost(t, "")
	host.status = http.StatusInternalServerError
	f, clk := newFetcher(Options{})
	ctx := context.Background()
	for range 5 {
		resolveErr(t, f, host.URL, "HTTP 500")
	}
	if n := host.hits.Load(); n != 1 {
		t.Fatalf("%d fetches of a failing host, want 1", n)
	}
	clk.advance(DefaultRefetchInterval)
	host.mu.Lock()
	host.status, host.body = http.StatusOK, []byte(keySet(t, "a"))
	host.mu.Unlock()
	if _, err := f.Resolve(ctx, host.URL, false); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
	host.mu.Lock()
	host.status = http.StatusBadGateway
	host.mu.Unlock()
	if _, err := f.Resolve(ctx, host.URL, true); err == nil {
		t.Fatal("a forced refetch that failed answered no error")
	}
	if set, err := f.Resolve(ctx, host.URL, false); err != nil || len(set.Key("a")) != 1 {
		t.Fatalf("after a failed forced refetch: %v, %v; want the fresh set kept", set, err)
	}
}

func TestResolveRefusesBadAnswers(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	private, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: ec, KeyID: "p"}}})
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", "<html>hello</html>", "not a JSON object"},
		{"one JWK, not a set", `{"kty":"EC"}`, "no usable public key"},
		{"no keys", `{"keys":[]}`, "no usable public key"},
		{"a private key", string(private), "private or symmetric"},
		{"a symmetric key", `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0"}]}`, "private or symmetric"},
		{"too large", `{"keys":[],"pad":"` + strings.Repeat("x", MaxBytes) + `"}`, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := newJWKSHost(t, tc.body)
			f, _ := newFetcher(Options{})
			resolveErr(t, f, host.URL, tc.want)
		})
	}
}

func TestParseSetKeepsUsableKeys(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	big, _ := rsa.GenerateKey(rand.Reader, 2048)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &small.PublicKey, KeyID: "small"}, {Key: &big.PublicKey, KeyID: "big"}, {Key: &big.PublicKey, KeyID: "enc", Use: "enc"},
	}}
	b, _ := json.Marshal(set)
	// An unknown kty is left out, not fatal: a client's set may hold keys for other purposes.
	body := strings.Replace(string(b), `"keys":[`, `"keys":[{"kty":"XYZ","kid":"odd"},`, 1)
	got, err := ParseSet([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Keys) != 2 || len(got.Key("big")) != 1 || got.Key("big")[0].Use != "sig" || got.Key("enc")[0].Use != "enc" {
		t.Fatalf("ParseSet kept %+v; want big (use sig) and enc", got.Keys)
	}
}

func TestResolveTimesOut(t *testing.T) {
	host := newJWKSHost(t, keySet(t, "a"))
	host.delay = 5 * time.Second
	f, _ := newFetcher(Options{Timeout: 200 * time.Millisecond})
	start := time.Now()
	resolveErr(t, f, host.URL, "fetch JWK Set")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Resolve took %v with a 200ms timeout", d)
	}
	// The client's host timing out must not read, further up, as our own storage failing (503).
	_, err := f.Resolve(context.Background(), host.URL, false)
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Resolve = %v: it unwraps to a network error or a deadline", err)
	}
	// A caller whose own request is cancelled does not cut the fetch short for the others: the timeout is ours.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	host.mu.Lock()
	host.delay = 0
	host.mu.Unlock()
	f2, _ := newFetcher(Options{})
	if _, err := f2.Resolve(ctx, host.URL, false); err != nil {
		t.Fatalf("Resolve with a cancelled caller: %v", err)
	}
}

// Loopback is refused unless the operator allows internal addresses; the check is on the address dialled, so
// a name (localhost) that resolves to loopback is refused too.
func TestLoopbackNeedsAllowPrivate(t *testing.T) {
	host := newJWKSHost(t, keySet(t, "a"))
	_, port, _ := net.SplitHostPort(host.Listener.Addr().String())
	strict := New(Options{})
	for _, u := range []string{host.URL, "http://localhost:" + port + "/jwks"} {
		resolveErr(t, strict, u, "not a public address")
	}
	if n := host.hits.Load(); n != 0 {
		t.Fatalf("the refused host was reached %d times", n)
	}
	allowed := New(Options{AllowPrivate: true})
	if _, err := allowed.Resolve(context.Background(), host.URL, false); err != nil {
		t.Fatalf("with AllowPrivate: %v", err)
	}
}

// Each redirect hop is checked again: its scheme, and the address it dials.
func TestRedirectsAreCheckedEachHop(t *testing.T) {
	// A second host on another loopback address, which the test fetcher may not dial.
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 here: %v", err)
	}
	inner := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the internal host was reached")
	}))
	inner.Listener = l
	inner.Start()
	defer inner.Close()

	good := newJWKSHost(t, keySet(t, "a"))
	var hops atomic.Int64
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-internal":
			http.Redirect(w, r, inner.URL+"/jwks", http.StatusFound)
		case "/to-metadata":
			http.Redirect(w, r, "https://169.254.169.254/latest/meta-data", http.StatusFound)
		case "/to-plain-http":
			http.Redirect(w, r, "http://jwks.example/keys", http.StatusFound)
		case "/loop":
			hops.Add(1)
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/to-good":
			http.Redirect(w, r, good.URL, http.StatusMovedPermanently)
		}
	}))
	defer redirector.Close()
	f, _ := newFetcher(Options{})
	resolveErr(t, f, redirector.URL+"/to-internal", "not a public address")
	resolveErr(t, f, redirector.URL+"/to-metadata", "not a public address")
	resolveErr(t, f, redirector.URL+"/to-plain-http", "only https")
	resolveErr(t, f, redirector.URL+"/loop", "redirects")
	if n := hops.Load(); n != MaxRedirects+1 {
		t.Errorf("%d requests for a redirect loop, want %d", n, MaxRedirects+1)
	}
	if set, err := f.Resolve(context.Background(), redirector.URL+"/to-good", false); err != nil || len(set.Keys) != 1 {
		t.Fatalf("a redirect to a permitted host: %v, %v", set, err)
	}
}

func TestResolveRefusesURLs(t *testing.T) {
	f, _ := newFetcher(Options{})
	for _, u := range []string{"ftp://jwks.example/keys", "http://jwks.example/keys", "https://user:pw@jwks.example/keys", "keys.json"} {
		_, err := f.Resolve(context.Background(), u, false)
		if err == nil || strings.Contains(err.Error(), "pw@") {
			t.Errorf("Resolve(%q) = %v; want an error, without the password", u, err)
		}
	}
}

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700:4700::1111": true, "203.0.113.9": true,
		"127.0.0.1": false, "127.1.2.3": false, "::1": false, "10.0.0.1": false, "172.16.5.4": false,
		"192.168.1.1": false, "fd00::1": false, "169.254.169.254": false, "fe80::1": false, "0.0.0.0": false,
		"::": false, "224.0.0.1": false, "ff02::1": false, "100.100.100.200": false, "255.255.255.255": false,
		"::ffff:10.0.0.1": false, "::ffff:127.0.0.1": false, "64:ff9b::a00:1": false, "64:ff9b::808:808": true,
	} {
		if got := PublicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("PublicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

// BenchmarkResolveCacheHit is the cost private_key_jwt adds per assertion once a client's keys are cached.
func BenchmarkResolveCacheHit(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(keySet(b, "a", "b")))
	}))
	defer srv.Close()
	f := New(Options{AllowPrivate: true})
	ctx := context.Background()
	if _, err := f.Resolve(ctx, srv.URL, false); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.Resolve(ctx, srv.URL, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}
