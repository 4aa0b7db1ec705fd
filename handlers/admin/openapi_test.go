package admin_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/latchkey/latchkey/handlers/admin"
)

// The OpenAPI document is written by hand; this test holds it to the code. Routes are walked generically on a
// router the admin API mounted itself on, so a route added to Mount (or to a family mounted here) without its
// path in openapi.json fails, and so does a documented path nothing serves. Paths in the document are relative
// to admin.Prefix (its server URL).

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// mountedRoutes are "METHOD /path" of every route under admin.Prefix.
func mountedRoutes(t *testing.T) []string {
	t.Helper()
	r := mux.NewRouter()
	for _, f := range []interface{ Mount(*mux.Router) }{&admin.API{Webhooks: &admin.Webhooks{}}} {
		f.Mount(r)
	}
	var out []string
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil // the subrouter's prefix route: no handler of its own
		}
		p, ok := strings.CutPrefix(tpl, admin.Prefix)
		if !ok {
			t.Errorf("route %s is mounted outside %s", tpl, admin.Prefix)
			return nil
		}
		for _, m := range methods {
			out = append(out, m+" "+p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

type document struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

func TestOpenAPIMatchesTheMountedRoutes(t *testing.T) {
	var doc document
	if err := json.Unmarshal(admin.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	var documented []string
	for p, item := range doc.Paths {
		for m := range item {
			if slices.Contains(httpMethods, m) {
				documented = append(documented, strings.ToUpper(m)+" "+p)
			}
		}
	}
	slices.Sort(documented)
	mounted := mountedRoutes(t)
	if len(mounted) < 20 {
		t.Fatalf("only %d routes mounted: the walk is not seeing them", len(mounted))
	}
	for _, r := range mounted {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is mounted but not documented", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(mounted, r) {
			t.Errorf("%s is documented but not mounted", r)
		}
	}
}

// compileDoc loads the document as a JSON Schema resource, so that any schema in it compiles by its pointer.
func compileDoc(t *testing.T) (*jsonschema.Compiler, any) {
	t.Helper()
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(admin.OpenAPI))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("mem:///openapi.json", raw); err != nil {
		t.Fatal(err)
	}
	return c, raw
}

func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// Every example in the document (request bodies, responses, whatever holds a schema beside an example) is valid
// against that schema, and every JSON request body and success response has one.
func TestOpenAPIExamplesMatchTheirSchemas(t *testing.T) {
	c, raw := compileDoc(t)
	checked := 0
	var walk func(v any, ptr string)
	walk = func(v any, ptr string) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["schema"]; ok {
				if ex, ok := v["example"]; ok {
					sch, err := c.Compile("mem:///openapi.json#" + ptr + "/schema")
					if err != nil {
						t.Fatalf("%s: %v", ptr, err)
					}
					if err := sch.Validate(ex); err != nil {
						t.Errorf("example at %s is invalid: %v", ptr, err)
					}
					checked++
				}
			}
			for k, child := range v {
				walk(child, ptr+"/"+pointerToken(k))
			}
		case []any:
			for i, child := range v {
				walk(child, ptr+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(raw, "")
	if checked < 30 {
		t.Errorf("only %d examples checked", checked)
	}

	type operation struct {
		OperationID string `json:"operationId"`
		RequestBody *struct {
			Content map[string]struct {
				Example any `json:"example"`
			} `json:"content"`
		} `json:"requestBody"`
		Responses map[string]struct {
			Content map[string]struct {
				Example any `json:"example"`
			} `json:"content"`
		} `json:"responses"`
		Security *[]any `json:"security"`
	}
	var doc document
	if err := json.Unmarshal(admin.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for p, item := range doc.Paths {
		for m, rawOp := range item {
			if !slices.Contains(httpMethods, m) {
				continue
			}
			var op operation
			if err := json.Unmarshal(rawOp, &op); err != nil {
				t.Fatalf("%s %s: %v", m, p, err)
			}
			where := strings.ToUpper(m) + " " + p
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s: operationId %q missing or not unique", where, op.OperationID)
			}
			ids[op.OperationID] = true
			if op.RequestBody != nil && op.RequestBody.Content["application/json"].Example == nil {
				t.Errorf("%s: request body without an example", where)
			}
			for status, resp := range op.Responses {
				if media, ok := resp.Content["application/json"]; ok && strings.HasPrefix(status, "2") && media.Example == nil && p != "/openapi.json" {
					t.Errorf("%s: %s response without an example", where, status)
				}
			}
			if op.Security == nil {
				for _, status := range []string{"401", "403", "503"} {
					if _, ok := op.Responses[status]; !ok {
						t.Errorf("%s: %s not documented", where, status)
					}
				}
			}
		}
	}
}

// The document is served as it is.
func TestOpenAPIServed(t *testing.T) {
	r := mux.NewRouter()
	(&admin.API{Webhooks: &admin.Webhooks{}}).Mount(r)
	req, _ := http.NewRequest(http.MethodGet, admin.Prefix+"/openapi.json", nil)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), admin.OpenAPI) || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET openapi.json: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
}
