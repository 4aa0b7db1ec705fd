package handlers

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestParseTrustedProxies(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{" , ", nil, false},
		{"10.0.0.0/8", []string{"10.0.0.0/8"}, false},
		{"10.1.2.3/8, 192.168.1.7 ,fd00::/8", []string{"10.0.0.0/8", "192.168.1.7/32", "fd00::/8"}, false},
		{"::ffff:10.0.0.1", []string{"10.0.0.1/32"}, false},
		{"10.0.0.0/33", nil, true},
		{"proxy.internal", nil, true},
		{"10.0.0.1:8080", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseTrustedProxies(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseTrustedProxies(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if strings.Join(s, " ") != strings.Join(tt.want, " ") {
			t.Errorf("ParseTrustedProxies(%q) = %v, want %v", tt.in, s, tt.want)
		}
	}
}

func TestClientAddr(t *testing.T) {
	lb := TrustedProxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		proxies TrustedProxies
		peer    string
		xff     []string // header lines
		want    string
	}{
		{"no proxies trusted: the peer, header ignored", nil, "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"untrusted peer: header ignored", lb, "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted peer: the address it appended", lb, "10.0.0.2:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"a client's own entries are not believed", lb, "10.0.0.2:5000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops are walked past", lb, "10.0.0.2:5000", []string{"1.2.3.4, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several header lines are one list", lb, "10.0.0.2:5000", []string{"1.2.3.4, 198.51.100.1", "10.9.9.9"}, "198.51.100.1"},
		{"entry with a port", lb, "10.0.0.2:5000", []string{"198.51.100.1:4711"}, "198.51.100.1"},
		{"IPv6 entry with a port", lb, "[fd00::1]:5000", []string{"[2001:db8::7]:4711"}, "2001:db8::7"},
		{"IPv4-mapped IPv6 peer", lb, "[::ffff:10.0.0.2]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"no header: the proxy itself", lb, "10.0.0.2:5000", nil, "10.0.0.2"},
		{"only trusted entries: the leftmost of them", lb, "10.0.0.2:5000", []string{"10.0.0.3, 10.0.0.4"}, "10.0.0.3"},
		{"garbage entry: stop at the last trusted hop", lb, "10.0.0.2:5000", []string{"198.51.100.1, not-an-ip"}, "10.0.0.2"},
		{"empty entry: stop at the last trusted hop", lb, "10.0.0.2:5000", []string{"198.51.100.1,"}, "10.0.0.2"},
		{"peer without a port", lb, "10.0.0.2", []string{"198.51.100.1"}, "198.51.100.1"},
		{"more trusted hops than the bound: stop", lb, "10.0.0.2:5000",
			[]string{"198.51.100.1" + strings.Repeat(", 10.0.0.1", maxForwardedHops)}, "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			for _, line := range tt.xff {
				r.Header.Add("X-Forwarded-For", line)
			}
			before := strings.Join(r.Header.Values("X-Forwarded-For"), "|")
			if got := tt.proxies.clientAddr(r); got != tt.want {
				t.Fatalf("clientAddr = %q, want %q", got, tt.want)
			}
			if after := strings.Join(r.Header.Values("X-Forwarded-For"), "|"); after != before {
				t.Fatalf("the request's header changed: %q -> %q", before, after)
			}
		})
	}
}

// FuzzClientAddr: whatever a client puts in X-Forwarded-For, the answer is the peer or an address that appears
// in the header, and never one to the left of an untrusted entry.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"198.51.100.1", "1.2.3.4, 10.0.0.9", "[2001:db8::1]:80,,", ",,,", "10.0.0.1, x, 10.0.0.2"} {
		f.Add(s)
	}
	lb := TrustedProxies{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, xff string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "10.0.0.2:5000"
		r.Header.Set("X-Forwarded-For", xff)
		got := lb.clientAddr(r)
		if got == "10.0.0.2" {
			return
		}
		a, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("clientAddr = %q, not an address", got)
		}
		// The answer must be the first entry from the right that is not trusted, or a trusted one.
		entries := strings.Split(xff, ",")
		for i := len(entries) - 1; i >= 0; i-- {
			e, err := parseForwardedAddr(strings.TrimSpace(entries[i]))
			if err != nil {
				t.Fatalf("clientAddr = %q, read past the unreadable entry %q in %q", got, entries[i], xff)
			}
			if e == a {
				return
			}
			if !lb.trusts(e) {
				t.Fatalf("clientAddr = %q, read past the untrusted entry %q in %q", got, entries[i], xff)
			}
		}
		t.Fatalf("clientAddr = %q, which is not in %q", got, xff)
	})
}
