package request

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
		{"::ffff:10.0.0.0/104", []string{"10.0.0.0/8"}, false},
		{"::ffff:0:0/80", nil, true},
		{"0.0.0.0/0", nil, true},
		{"10.0.0.0/8, ::/0", nil, true},
		{"fe80::1%eth0", nil, true},
		{"fe80::%eth0/10", nil, true},
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

func TestMappedTrustedPrefixMatchesIPv4Peers(t *testing.T) {
	mapped, err := ParseTrustedProxies("::ffff:10.0.0.0/104")
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.2:5000"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := mapped.clientAddr(r); got != "198.51.100.1" {
		t.Fatalf("clientAddr = %q, want the forwarded client", got)
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
		{"untrusted IPv4-mapped peer: reported as IPv4", nil, "[::ffff:203.0.113.9]:5000", nil, "203.0.113.9"},
		{"zoned link-local proxy is trusted", TrustedProxies{netip.MustParsePrefix("fe80::/10")}, "[fe80::1%eth0]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"zone in an entry is dropped", lb, "10.0.0.2:5000", []string{"2001:db8::1%zz"}, "2001:db8::1"},
		{"empty line stops the walk", lb, "10.0.0.2:5000", []string{"6.6.6.6", "", "10.0.0.9"}, "10.0.0.9"},
		{"leading comma stops the walk", lb, "10.0.0.2:5000", []string{"6.6.6.6", ",10.0.0.9"}, "10.0.0.9"},
		{"not an IP peer: as is", lb, "@", nil, "@"},
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

// FuzzClientAddr compares clientAddr, which walks the header lines in place, with the plainest reading of the
// rule: join the lines with commas, split, and step left from the peer while the address at hand is trusted.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"198.51.100.1", "1.2.3.4, 10.0.0.9", "[2001:db8::1]:80,,", ",,,", "10.0.0.1, x, 10.0.0.2",
		"6.6.6.6\n\n10.0.0.9", "6.6.6.6\n,10.0.0.9", "fe80::1%eth0, 10.0.0.3", ""} {
		f.Add(s)
	}
	lb := TrustedProxies{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, xff string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "10.0.0.2:5000"
		lines := strings.Split(xff, "\n") // several header lines: one list, as if joined by commas
		for _, line := range lines {
			r.Header.Add("X-Forwarded-For", line)
		}
		cur := netip.MustParseAddr("10.0.0.2")
		entries := strings.Split(strings.Join(lines, ","), ",")
		for hop, i := 0, len(entries)-1; hop < maxForwardedHops && i >= 0 && lb.trusts(cur); hop, i = hop+1, i-1 {
			a, err := parseForwardedAddr(strings.TrimSpace(entries[i]))
			if err != nil {
				break
			}
			cur = a
		}
		if got, want := lb.clientAddr(r), cur.String(); got != want {
			t.Fatalf("clientAddr = %q, want %q for X-Forwarded-For lines %q", got, want, lines)
		}
	})
}
