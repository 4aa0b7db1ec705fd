package handlers

import (
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
// ("10.0.0.0/8, 192.168.1.7, fd00::/8").
func ParseTrustedProxies(s string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR prefix", part)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR prefix", part)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (t TrustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the address of the client that sent r, as withRequestContext's trusted proxies resolve it
// (resolved once per request), or the TCP peer for a request that did not pass through it.
func clientIP(r *http.Request) string {
	info, ok := r.Context().Value(requestKey).(*requestInfo)
	if !ok {
		return TrustedProxies(nil).clientAddr(r)
	}
	return info.client(r)
}

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
	if len(t) == 0 {
		return host
	}
	cur, err := netip.ParseAddr(host)
	if err != nil || !t.trusts(cur) {
		return host
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
	return cur.Unmap().String()
}

// forwardedFromRight hands out the comma-separated entries of header lines from the last one back, without
// copying or changing the lines (they belong to the request).
type forwardedFromRight struct {
	lines []string
	rest  string // what is left of the line being read
}

func (f *forwardedFromRight) next() (string, bool) {
	for f.rest == "" {
		if len(f.lines) == 0 {
			return "", false
		}
		f.rest = f.lines[len(f.lines)-1]
		f.lines = f.lines[:len(f.lines)-1]
	}
	i := strings.LastIndexByte(f.rest, ',')
	entry := f.rest[i+1:]
	f.rest = f.rest[:max(i, 0)]
	return strings.TrimSpace(entry), true
}

// parseForwardedAddr reads one X-Forwarded-For entry: an address, possibly with a port ("203.0.113.9:4711",
// "[2001:db8::1]:4711"), as some proxies write it.
func parseForwardedAddr(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr().Unmap(), nil
}
