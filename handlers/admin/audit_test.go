package admin

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/models"
)

// The OpenAPI fragment for the audit route says what the code does: the route is mounted with its method, the
// event type enum is the models' catalog, and the example event carries exactly the fields an event encodes to.
func TestAuditOpenAPIFragment(t *testing.T) {
	raw, err := os.ReadFile("openapi_audit.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Enum       []string                   `json:"enum"`
				Required   []string                   `json:"required"`
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi_audit.json: %v", err)
	}
	r := mux.NewRouter()
	(&API{}).Mount(r)
	for path, ops := range doc.Paths {
		for method := range ops {
			req, _ := http.NewRequest(strings.ToUpper(method), path, nil)
			var m mux.RouteMatch
			if !r.Match(req, &m) || m.MatchErr != nil {
				t.Errorf("documented %s %s is not mounted", strings.ToUpper(method), path)
			}
		}
	}
	if got := doc.Components.Schemas["AuditEventType"].Enum; !slices.Equal(got, models.EventTypes) {
		t.Errorf("AuditEventType enum %v, want the catalog %v", got, models.EventTypes)
	}
	b, _ := json.Marshal(models.AuditEvent{Time: time.Now(), Details: map[string]any{}})
	var encoded map[string]any
	_ = json.Unmarshal(b, &encoded)
	schema := doc.Components.Schemas["AuditEvent"]
	for k := range encoded {
		if _, ok := schema.Properties[k]; !ok || !slices.Contains(schema.Required, k) {
			t.Errorf("an event encodes %q, which the schema does not require", k)
		}
	}
	if len(schema.Properties) != len(encoded) {
		t.Errorf("the schema has %d properties, an event %d", len(schema.Properties), len(encoded))
	}
}

// Cursors round-trip, and anything else is refused.
func TestAuditCursor(t *testing.T) {
	c := models.AuditCursor{Time: time.Date(2026, 11, 30, 13, 4, 22, 123456000, time.UTC), ID: 4711}
	if got, ok := decodeAuditCursor(encodeAuditCursor(c)); !ok || !got.Time.Equal(c.Time) || got.ID != c.ID {
		t.Errorf("round trip: %+v %v", got, ok)
	}
	for _, bad := range []string{"", "!!", "MTIz", "YS5i"} {
		if _, ok := decodeAuditCursor(bad); ok {
			t.Errorf("cursor %q accepted", bad)
		}
	}
}
