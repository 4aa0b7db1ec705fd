package e2e

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"testing"
)

// An access token is never a credential for introspection, however the request is shaped: a multipart body whose
// query string does not parse used to skip the check, and fosite then took the token as the caller.
func TestIntrospectionRefusesTokensInOddlyShapedRequests(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, env testEnv) {
		svc := env.createClient(t, "--name", "svc", "--grant-types", "client_credentials", "--scopes", "read")
		srv := env.startServer(t)
		code, _, body := postForm(t, srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, svc.ClientID, svc.ClientSecret)
		if code != http.StatusOK {
			t.Fatalf("token: %d %v", code, body)
		}
		token := body["access_token"].(string)
		multipartBody := func(fields map[string]string) (*bytes.Buffer, string) {
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			for k, v := range fields {
				_ = mw.WriteField(k, v)
			}
			_ = mw.Close()
			return &b, mw.FormDataContentType()
		}
		for _, tc := range []struct {
			name   string
			query  string
			fields map[string]string
			bearer bool
		}{
			{"access_token in a multipart body, unparsable query", "?x=%zz", map[string]string{"token": token, "access_token": token}, false},
			{"bearer header, multipart body, unparsable query", "?%", map[string]string{"token": token}, true},
			{"access_token in the query", "?access_token=" + url.QueryEscape(token), map[string]string{"token": token}, false},
			{"no credentials at all", "", map[string]string{"token": token}, false},
		} {
			b, ct := multipartBody(tc.fields)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth2/introspect"+tc.query, b)
			req.Header.Set("Content-Type", ct)
			if tc.bearer {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			code, _, body := do(t, req)
			if code == http.StatusOK || body["active"] != nil {
				t.Errorf("%s: %d %v, want a refusal", tc.name, code, body)
			}
		}
	})
}
