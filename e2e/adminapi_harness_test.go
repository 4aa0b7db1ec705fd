package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// adminAPI calls the admin API of a running server and checks every answer against the OpenAPI document that
// server serves: the status must be documented for the operation, and the body valid against its schema. That
// is what keeps the document honest about live responses, not only about its own examples.
type adminAPI struct {
	base string // srv.URL + /api/v1/admin
	auth map[string]string
	doc  *adminDoc
}

type adminDoc struct {
	mu     sync.Mutex // the compiler is not safe for concurrent use
	c      *jsonschema.Compiler
	raw    map[string]any
	cached map[string]*jsonschema.Schema
}

const adminPrefix = "/api/v1/admin"

// loadAdminDoc fetches the served document.
func loadAdminDoc(t *testing.T, srvURL string) *adminDoc {
	t.Helper()
	code, _, body := get(t, srvURL+adminPrefix+"/openapi.json")
	if code != 200 {
		t.Fatalf("GET openapi.json: %d", code)
	}
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("mem:///openapi.json", raw); err != nil {
		t.Fatal(err)
	}
	return &adminDoc{c: c, raw: raw.(map[string]any), cached: map[string]*jsonschema.Schema{}}
}

func newAdminAPI(t *testing.T, srvURL, token string) *adminAPI {
	return &adminAPI{base: srvURL + adminPrefix, auth: bearerHeader(token), doc: loadAdminDoc(t, srvURL)}
}

// as is the same API with another admin client's token.
func (a *adminAPI) as(token string) *adminAPI {
	return &adminAPI{base: a.base, auth: bearerHeader(token), doc: a.doc}
}

func ptrToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// check validates one live answer to method on the path template tpl.
func (d *adminDoc) check(t *testing.T, method, tpl string, status int, body []byte) {
	t.Helper()
	op, _ := d.raw["paths"].(map[string]any)[tpl].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if op == nil {
		t.Errorf("%s %s is not documented", method, tpl)
		return
	}
	resp, ok := op["responses"].(map[string]any)[strconv.Itoa(status)].(map[string]any)
	if !ok {
		t.Errorf("%s %s answered %d, which is not documented: %s", method, tpl, status, body)
		return
	}
	ptr := "/paths/" + ptrToken(tpl) + "/" + strings.ToLower(method) + "/responses/" + strconv.Itoa(status)
	if ref, ok := resp["$ref"].(string); ok {
		ptr = strings.TrimPrefix(ref, "#")
		name := ptr[strings.LastIndex(ptr, "/")+1:]
		resp = d.raw["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
	}
	content, _ := resp["content"].(map[string]any)
	if _, ok := content["application/json"]; !ok {
		if len(bytes.TrimSpace(body)) > 0 {
			t.Errorf("%s %s %d: a body where the document says none: %s", method, tpl, status, body)
		}
		return
	}
	loc := "mem:///openapi.json#" + ptr + "/content/application~1json/schema"
	d.mu.Lock()
	sch, ok := d.cached[loc]
	var err error
	if !ok {
		if sch, err = d.c.Compile(loc); err == nil {
			d.cached[loc] = sch
		}
	}
	d.mu.Unlock()
	if err != nil {
		t.Fatalf("compile %s: %v", loc, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s %s %d: body is not JSON: %v", method, tpl, status, err)
		return
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s %s %d: body does not match the documented schema: %v\n%s", method, tpl, status, err, body)
	}
}

// call sends method to the path template tpl with vars filled in order (escaped) and query appended, checks the
// answer against the document and returns it decoded (nil for an empty body).
func (a *adminAPI) call(t *testing.T, method, tpl string, vars []string, query string, body any, headers map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	path := tpl
	for _, v := range vars {
		i, j := strings.Index(path, "{"), strings.Index(path, "}")
		path = path[:i] + url.PathEscape(v) + path[j+1:]
	}
	var rdr io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rdr = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, a.base+path+query, rdr)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range a.auth {
		req.Header.Set(k, v)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a.doc.check(t, method, tpl, resp.StatusCode, raw)
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		_ = json.Unmarshal(raw, &out)
	}
	return resp.StatusCode, resp.Header, out
}

// adminToken is a client_credentials token with the admin scope for c.
func adminToken(t *testing.T, srvURL string, c createdClient) string {
	t.Helper()
	code, _, b := postForm(t, srvURL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"latchkey.admin"}}, c.ClientID, c.ClientSecret)
	if code != 200 {
		t.Fatalf("admin token for %s: %d %v", c.ClientID, code, b)
	}
	return b["access_token"].(string)
}

// ids are the "id" (or idKey) fields of a list's objects.
func ids(list any, idKey string) []string {
	var out []string
	items, _ := list.([]any)
	for _, it := range items {
		out = append(out, it.(map[string]any)[idKey].(string))
	}
	return out
}
