package admin

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// The OpenAPI document's audit part says what the code does: the event type enum is the models' catalog, and
// an event's schema has exactly the fields an event encodes to. (openapi_test.go checks the routes.)
func TestAuditOpenAPISchemas(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
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
		t.Fatalf("openapi.json: %v", err)
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
