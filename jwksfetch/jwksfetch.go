// Package jwksfetch fetches the public JWK Sets clients publish at their jwks_uri, for fosite
// (fosite.JWKSFetcherStrategy: private_key_jwt client assertions and signed request objects). The URL is the
// client's, so the fetch is guarded as a request an outsider steers: it never dials a loopback, private,
// link-local or otherwise internal address (checked on the address actually dialled, after DNS, so rebinding
// cannot pass) unless the operator allows it; each redirect hop is checked again; it is bounded in time and size;
// and it is cached per URL, one fetch at a time, with forced refetches (an unknown kid) rate-limited, so nobody
// can make us hammer the client's host. It imports nothing of Latchkey's.
package jwksfetch

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"golang.org/x/sync/singleflight"
)

// Bounds on a fetch and what it answers.
const (
	MaxBytes     = 64 << 10 // as models.MaxJWKSBytes for an inline set
	MaxKeys      = 100
	MaxRedirects = 3
	MinRSABits   = 2048 // smaller RSA keys are left out of the set
	maxEntries   = 10000
)

// Defaults for Options left zero.
const (
	DefaultTimeout         = 5 * time.Second
	DefaultTTL             = 10 * time.Minute
	DefaultMinTTL          = time.Minute
	DefaultMaxTTL          = 24 * time.Hour
	DefaultRefetchInterval = 10 * time.Second
)

// Options configure a Fetcher; zero values take the defaults above.
type Options struct {
	// AllowPrivate lets fetches dial loopback, private, link-local and other internal addresses
	// (LATCHKEY_JWKS_URI_ALLOW_PRIVATE): for development, and for JWKS hosts inside the operator's own network.
	AllowPrivate bool
	// Timeout bounds one fetch, connection, TLS, redirects and body included.
	Timeout time.Duration
	// DefaultTTL is how long a set is cached when its response has no Cache-Control max-age; a max-age is
	// honoured within MinTTL..MaxTTL.
	DefaultTTL, MinTTL, MaxTTL time.Duration
	// RefetchInterval is how often, per URL, a caller may force a refetch (fosite does when an assertion names a
	// kid the cached set lacks), and how long a failed fetch is remembered and answered without fetching again.
	RefetchInterval time.Duration
	// Logger gives the request's logger (default: slog.Default).
	Logger func(context.Context) *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Error is a fetch that gave no usable JWK Set: the client's host failed, not ours. It names the URL, never keys.
// It does not unwrap to its cause on purpose: a network error of the client's host (connection refused, a
// timeout) must not pass, further up, for our own database being unreachable.
type Error struct {
	URL   string
	cause string
}

func (e *Error) Error() string { return "fetch JWK Set from " + e.URL + ": " + e.cause }

// Fetcher resolves jwks_uri values; it implements fosite.JWKSFetcherStrategy. Safe for concurrent use.
type Fetcher struct {
	opts   Options
	client *http.Client
	flight singleflight.Group

	mu      sync.Mutex
	entries map[string]*entry

	// dialAllowed, when set (tests), allows an address the default rule refuses.
	dialAllowed func(netip.Addr) bool
}

// entry is what is known of one URL: the set fetched last (or the error of a failed fetch) and until when it
// stands, and when a refetch was last forced.
type entry struct {
	set        *jose.JSONWebKeySet
	err        error
	expires    time.Time
	lastForced time.Time
	gen        uint64 // counts stores, so a caller who waited for a fetch does not start another
}

// New returns a Fetcher.
func New(opts Options) *Fetcher {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Timeout, DefaultTimeout)
	def(&opts.DefaultTTL, DefaultTTL)
	def(&opts.MinTTL, DefaultMinTTL)
	def(&opts.MaxTTL, DefaultMaxTTL)
	def(&opts.RefetchInterval, DefaultRefetchInterval)
	if opts.Logger == nil {
		opts.Logger = func(context.Context) *slog.Logger { return slog.Default() }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f := &Fetcher{opts: opts, entries: map[string]*entry{}}
	dialer := &net.Dialer{Timeout: opts.Timeout, Control: f.control}
	f.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // a proxy would be what we dial, and the address check would see only it
			DialContext:            dialer.DialContext,
			TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    opts.Timeout,
			ResponseHeaderTimeout:  opts.Timeout,
			MaxResponseHeaderBytes: 16 << 10,
			MaxIdleConns:           64,
			IdleConnTimeout:        90 * time.Second,
			ForceAttemptHTTP2:      true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > MaxRedirects {
				return fmt.Errorf("more than %d redirects", MaxRedirects)
			}
			return checkURL(req.URL)
		},
	}
	return f
}

type clientIDKey struct{}

// WithClientID notes under ctx the client whose keys a Resolve is for, so a failed fetch is logged with it.
func WithClientID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, clientIDKey{}, id)
}

func clientID(ctx context.Context) string {
	id, _ := ctx.Value(clientIDKey{}).(string)
	return id
}

// redacted is location as logged: without a password (which a registered jwks_uri never has).
func redacted(location string) string {
	if u, err := url.Parse(location); err == nil {
		return u.Redacted()
	}
	return "(not a URL)"
}

// Resolve answers the JWK Set at location: from the cache while fresh, else fetched (one fetch per URL at a
// time; callers arriving meanwhile share it). ignoreCache forces a refetch, at most once per RefetchInterval per
// URL; a forced refetch sooner is answered from the cache. A failed fetch is answered as an *Error, and
// remembered for RefetchInterval.
func (f *Fetcher) Resolve(ctx context.Context, location string, ignoreCache bool) (*jose.JSONWebKeySet, error) {
	now := f.opts.Now()
	f.mu.Lock()
	e := f.entries[location]
	var seen uint64
	if e != nil {
		seen = e.gen
		fresh := now.Before(e.expires)
		switch {
		case fresh && (!ignoreCache || e.err != nil):
			f.mu.Unlock()
			return e.set, e.err
		case fresh && now.Sub(e.lastForced) < f.opts.RefetchInterval:
			f.mu.Unlock()
			return e.set, nil
		case fresh:
			e.lastForced = now
		}
	}
	f.mu.Unlock()

	v, err, _ := f.flight.Do(location, func() (any, error) {
		f.mu.Lock()
		if e := f.entries[location]; e != nil && e.gen != seen {
			// Another fetch stored its answer while this caller was deciding: take it.
			f.mu.Unlock()
			return e.set, e.err
		}
		f.mu.Unlock()
		set, ttl, err := f.fetch(ctx, location)
		f.store(location, set, ttl, err)
		if err != nil {
			f.opts.Logger(ctx).Warn("client JWK Set could not be fetched", "client_id", clientID(ctx),
				"jwks_uri", redacted(location), "error", err)
			return nil, err
		}
		f.opts.Logger(ctx).Debug("client JWK Set fetched", "client_id", clientID(ctx),
			"jwks_uri", redacted(location), "keys", len(set.Keys), "ttl", ttl)
		return set, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*jose.JSONWebKeySet), nil
}

// store records a fetch's outcome. A failure does not displace a set still fresh (a forced refetch that failed);
// otherwise it is remembered for RefetchInterval, so a failing host is asked at most that often.
func (f *Fetcher) store(location string, set *jose.JSONWebKeySet, ttl time.Duration, err error) {
	now := f.opts.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.entries[location]
	e := &entry{set: set, err: err, expires: now.Add(ttl)}
	if old != nil {
		e.lastForced, e.gen = old.lastForced, old.gen
		if err != nil && old.err == nil && now.Before(old.expires) {
			e.set, e.err, e.expires = old.set, nil, old.expires
		}
	}
	if err != nil && e.set == nil {
		e.expires = now.Add(f.opts.RefetchInterval)
	}
	e.gen++
	if old == nil && len(f.entries) >= maxEntries {
		f.entries = map[string]*entry{}
	}
	f.entries[location] = e
}

// fetch GETs location and parses the answer, within Timeout whatever becomes of the caller's request (callers
// sharing the fetch may still wait for it).
func (f *Fetcher) fetch(ctx context.Context, location string) (*jose.JSONWebKeySet, time.Duration, error) {
	fail := func(err error) (*jose.JSONWebKeySet, time.Duration, error) {
		return nil, 0, &Error{URL: redacted(location), cause: err.Error()}
	}
	u, err := url.Parse(location)
	if err != nil {
		return fail(errors.New("not a URL"))
	}
	if err := checkURL(u); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, location, nil)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("answered HTTP %d", resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+1))
	if err != nil {
		return fail(fmt.Errorf("read: %w", err))
	}
	if len(body) > MaxBytes {
		return fail(fmt.Errorf("the JWK Set is longer than %d bytes", MaxBytes))
	}
	set, err := ParseSet(body)
	if err != nil {
		return fail(err)
	}
	return set, f.ttl(resp.Header.Values("Cache-Control")), nil
}

// ttl is how long a response may be cached: its max-age (MinTTL for no-store or no-cache), within
// MinTTL..MaxTTL, else DefaultTTL.
func (f *Fetcher) ttl(cacheControl []string) time.Duration {
	ttl := f.opts.DefaultTTL
	for _, h := range cacheControl {
		for d := range strings.SplitSeq(h, ",") {
			name, value, _ := strings.Cut(strings.ToLower(strings.TrimSpace(d)), "=")
			switch name {
			case "no-store", "no-cache":
				return f.opts.MinTTL
			case "max-age":
				if n, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64); err == nil && n >= 0 {
					ttl = time.Duration(min(n, int64(f.opts.MaxTTL/time.Second))) * time.Second
				}
			}
		}
	}
	return min(max(ttl, f.opts.MinTTL), f.opts.MaxTTL)
}

// ParseSet parses a JWK Set of public keys as fosite reads it. A set holding private or symmetric key material
// is refused whole (the client published what it must keep); keys go-jose cannot read, and RSA keys under
// MinRSABits, are left out; a key without a use gets use sig (fosite reads only keys marked sig).
func ParseSet(body []byte) (*jose.JSONWebKeySet, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, errors.New(`the answer is not a JSON object {"keys": [...]}`)
	}
	if len(raw.Keys) > MaxKeys {
		return nil, fmt.Errorf("the JWK Set has more than %d keys", MaxKeys)
	}
	set := &jose.JSONWebKeySet{}
	for i, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			continue // an unknown kty or curve: not a key we could verify with
		}
		if !k.IsPublic() { // a private key, or a symmetric one ([]byte)
			return nil, fmt.Errorf("key %d is private or symmetric; a JWK Set publishes public keys only", i)
		}
		if pub, ok := k.Key.(*rsa.PublicKey); ok && pub.N.BitLen() < MinRSABits {
			continue
		}
		if k.Use == "" {
			k.Use = "sig"
		}
		set.Keys = append(set.Keys, k)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("the JWK Set has no usable public key")
	}
	return set, nil
}

// checkURL is the rule for every URL fetched, each redirect hop included: https, or http to a loopback host
// (which is dialled only where private addresses are allowed); no credentials.
func checkURL(u *url.URL) error {
	switch {
	case u.User != nil:
		return errors.New("the URL has credentials")
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
		return nil
	default:
		return errors.New("only https URLs are fetched (http only on localhost)")
	}
}

func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// control runs before every connection, on the address it is about to dial (after DNS): the one place a
// resolved address is checked, so a name that resolves to a public address when asked and to an internal one
// when dialled cannot pass.
func (f *Fetcher) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: not an IP address", address)
	}
	ip := ap.Addr().Unmap()
	if f.opts.AllowPrivate || PublicAddr(ip) || (f.dialAllowed != nil && f.dialAllowed(ip)) {
		return nil
	}
	return fmt.Errorf("dial %s: not a public address (LATCHKEY_JWKS_URI_ALLOW_PRIVATE allows it)", ip)
}

// Internal ranges IsPrivate and its kin do not cover.
var internalRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT; some clouds' metadata services
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),   // reserved, and the broadcast address
}

var nat64 = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: an IPv4 address inside an IPv6 one

// PublicAddr reports whether ip is an address on the public internet: not loopback, private, link-local,
// unspecified, multicast or another internal range (an IPv4 address mapped or translated into IPv6 is judged as
// itself).
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range internalRanges {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}
