package admin

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// The webhooks fragment of the OpenAPI document names exactly the webhook routes mounted, with their methods,
// and every $ref in it resolves within it.
func TestOpenAPIWebhooksFragmentMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile("openapi_webhooks.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components map[string]map[string]json.RawMessage `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+Prefix+path)
			}
		}
	}
	r := mux.NewRouter()
	(&API{Webhooks: &Webhooks{}}).Mount(r)
	var mounted []string
	_ = r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, _ := route.GetPathTemplate()
		methods, _ := route.GetMethods()
		if strings.HasPrefix(tpl, Prefix+"/webhooks") {
			for _, m := range methods {
				mounted = append(mounted, m+" "+tpl)
			}
		}
		return nil
	})
	slices.Sort(documented)
	slices.Sort(mounted)
	if len(mounted) == 0 || !slices.Equal(documented, mounted) {
		t.Errorf("documented:\n%s\nmounted:\n%s", strings.Join(documented, "\n"), strings.Join(mounted, "\n"))
	}
	for _, ref := range strings.Split(string(raw), `"$ref": "#/components/`)[1:] {
		kind, rest, _ := strings.Cut(ref, "/")
		name, _, _ := strings.Cut(rest, `"`)
		if _, ok := doc.Components[kind][name]; !ok {
			t.Errorf("$ref #/components/%s/%s does not resolve", kind, name)
		}
	}
}
