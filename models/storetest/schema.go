package storetest

import (
	"testing"

	"github.com/latchkey/latchkey/models"
)

// schemaCases: migrating and the connection.
func schemaCases() []testCase {
	return []testCase{
		{"migrate is idempotent", testMigrateIdempotent},
		{"ping", testPing},
	}
}

func testMigrateIdempotent(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	v1, err := s.SchemaVersion(ctx)
	must(t, "SchemaVersion", err)
	if v1 < 1 {
		t.Fatalf("SchemaVersion after Migrate = %d", v1)
	}
	must(t, "Migrate again", s.Migrate(ctx))
	must(t, "Migrate a third time", s.Migrate(ctx))
	v2, err := s.SchemaVersion(ctx)
	must(t, "SchemaVersion", err)
	if v2 != v1 {
		t.Errorf("SchemaVersion changed %d -> %d", v1, v2)
	}
}

// The dialect each URL opens is checked in models (TestOpenDialect), the only place that can see it.
func testPing(t *testing.T, s *models.Store) {
	must(t, "Ping", s.Ping(ctxT(t)))
}
