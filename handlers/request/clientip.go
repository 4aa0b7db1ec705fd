package request

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies are the networks of the load balancers and reverse proxies in front of Latchkey. A request
// whose TCP peer is in one of them is taken to come from the address that proxy appended to X-Forwarded-For.
// Empty (the default) trusts no one: the client is the TCP peer, and X-Forwarded-For is ignored, since anyone
// can send it.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies reads a comma-separated list of CIDR prefixes or single addresses
// ("10.0.3.0/24, 192.168.1.7, fd00:3::/64"). It refuses what would trust clients themselves or never match:
// prefixes of length 0, which trust every address, and zoned addresses (fe80::1%eth0), which netip never matches.
func ParseTrustedProxies(s string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := parseTrustedPrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%q %w", part, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseTrustedPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "%") {
		return netip.Prefix{}, errors.New("has a zone; list the address or network without it")
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, errors.New("is not an address or CIDR prefix")
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, errors.New("is not an address or CIDR prefix")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	// Peers are compared as plain IPv4 when they are IPv4-mapped, so a mapped prefix becomes its IPv4 one.
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, errors.New("mixes IPv4-mapped and other IPv6 addresses; list the IPv4 network")
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, errors.New("trusts every address, so any client could name its own; list your proxies' networks")
	}
	return p.Masked(), nil
}

// canonicalAddr is how addresses are compared and reported: IPv4-mapped IPv6 as IPv4, without a zone.
func canonicalAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

func (t TrustedProxies) trusts(a netip.Addr) bool {
	a = canonicalAddr(a)
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is the address of the client that sent r, as Track's trusted proxies resolve it
// (resolved once per request), or the TCP peer for a request that did not pass through it.
func ClientIP(r *http.Request) string {
	info, ok := r.Context().Value(requestKey).(*requestInfo)
	if !ok {
		return TrustedProxies(nil).clientAddr(r)
	}
	return info.client(r)
}

// client resolves the client address once per request. Only the request's own goroutine calls it (handlers start
// none), so the cache needs no lock.
func (info *requestInfo) client(r *http.Request) string {
	if info.clientIP == "" {
		info.clientIP = info.proxies.clientAddr(r)
	}
	return info.clientIP
}

// maxForwardedHops bounds the walk through X-Forwarded-For; no real chain of trusted proxies is this long.
const maxForwardedHops = 16

// clientAddr is the address of the client that sent r. Starting from the TCP peer, while the address at hand is
// a trusted proxy, it steps to the address that proxy reported: the next X-Forwarded-For entry from the right.
// The first untrusted address is the client; entries to its left were written by the client or by proxies we do
// not trust, so they are never read. If the entries run out or one is not an address, the last trusted hop is
// the answer: a proxy's own request, or a header we cannot read, never lets the client choose its address.
func (t TrustedProxies) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	cur, err := netip.ParseAddr(host)
	if err != nil {
		return host // not an IP peer (a Unix socket, say): nothing to resolve
	}
	cur = canonicalAddr(cur)
	if len(t) == 0 || !t.trusts(cur) {
		return cur.String()
	}
	// Several X-Forwarded-For lines are one list in order (RFC 9110 section 5.3); read it from the right.
	entries := forwardedFromRight{lines: r.Header.Values("X-Forwarded-For")}
	for hop := 0; hop < maxForwardedHops && t.trusts(cur); hop++ {
		entry, ok := entries.next()
		if !ok {
			break
		}
		prev, err := parseForwardedAddr(entry)
		if err != nil {
			break
		}
		cur = prev
	}
	return cur.String()
}

// forwardedFromRight hands out the comma-separated entries of header lines from the last one back, without
// copying or changing the lines (they belong to the request). An empty line and the empty piece before a leading
// comma are entries too (empty ones), so they stop the walk like any other unreadable entry.
type forwardedFromRight struct {
	lines []string
	rest  string // what is left of the line being read
	open  bool   // rest still holds at least one entry
}

func (f *forwardedFromRight) next() (string, bool) {
	if !f.open {
		if len(f.lines) == 0 {
			return "", false
		}
		f.rest, f.lines, f.open = f.lines[len(f.lines)-1], f.lines[:len(f.lines)-1], true
	}
	entry := f.rest
	if i := strings.LastIndexByte(f.rest, ','); i >= 0 {
		entry, f.rest = f.rest[i+1:], f.rest[:i]
	} else {
		f.rest, f.open = "", false
	}
	return strings.TrimSpace(entry), true
}

// parseForwardedAddr reads one X-Forwarded-For entry: an address, possibly with a port ("203.0.113.9:4711",
// "[2001:db8::1]:4711"), as some proxies write it.
func parseForwardedAddr(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return canonicalAddr(a), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return canonicalAddr(ap.Addr()), nil
}
