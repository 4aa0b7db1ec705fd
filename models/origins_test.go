package models_test

import (
	"testing"

	"github.com/latchkey/latchkey/models"
)

func TestOrigin(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"https://app.example/cb", "https://app.example", true},
		{"HTTPS://App.EXAMPLE:443/cb?x=1#f", "https://app.example", true},
		{"http://app.example:80", "http://app.example", true},
		{"http://app.example:443", "http://app.example:443", true},
		{"https://app.example:80", "https://app.example:80", true},
		{"https://app.example:08443/", "https://app.example:8443", true},
		{"http://localhost:8080/callback", "http://localhost:8080", true},
		{"http://127.0.0.1:3000", "http://127.0.0.1:3000", true},
		{"http://[::1]:3000/x", "http://[::1]:3000", true},
		{"https://[2001:DB8::1]/", "https://[2001:db8::1]", true},
		{"https://user:pw@app.example/", "https://app.example", true},
		{"com.example.app:/oauth2redirect", "", false},
		{"urn:ietf:wg:oauth:2.0:oob", "", false},
		{"ftp://files.example/", "", false},
		{"https:app.example", "", false},
		{"https:///path", "", false},
		{"/relative/cb", "", false},
		{"https://app.example:99999/", "", false},
		{"https://app.example:0/", "", false},
		{"://bad", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		got, ok := models.Origin(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Origin(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
