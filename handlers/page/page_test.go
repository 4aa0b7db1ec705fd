package page

import "testing"

func TestLocalPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"/account/sessions", "/account/sessions", true},
		{"/account/sessions?x=1", "/account/sessions?x=1", true},
		{"", "", false},
		{"account", "", false},
		{"//evil.example/x", "", false},
		{"/\\evil.example", "", false},
		{"https://evil.example/", "", false},
	} {
		got, ok := LocalPath(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("LocalPath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
