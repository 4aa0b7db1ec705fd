package jsonapi_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latchkey/latchkey/handlers/jsonapi"
)

func TestPageCursorRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 0, 0, 123456000, time.UTC)
	rows := []int{1, 2, 3}
	page, cursor := jsonapi.NextPage(rows, 2, func(i *int) (time.Time, string) { return at, "row-2" })
	if len(page) != 2 || cursor == nil {
		t.Fatalf("page %v cursor %v", page, cursor)
	}
	p, err := jsonapi.ReadPage(httptest.NewRequest("GET", "/x?limit=7&cursor="+*cursor, nil))
	if err != nil || p.Limit != 7 || p.After == nil || !p.After.CreatedAt.Equal(at) || p.After.ID != "row-2" {
		t.Fatalf("read back: %+v %v", p, err)
	}
	if _, last := jsonapi.NextPage(rows, 3, nil); last != nil {
		t.Error("a page that holds every row has a next cursor")
	}
	for _, q := range []string{"limit=0", "limit=201", "limit=ten", "cursor=!!!", "cursor=e30"} {
		var e *jsonapi.Error
		if _, err := jsonapi.ReadPage(httptest.NewRequest("GET", "/x?"+q, nil)); !errors.As(err, &e) || e.Status != 400 || e.Field == "" {
			t.Errorf("%s: %v", q, err)
		}
	}
}

func TestIfMatch(t *testing.T) {
	tag := jsonapi.ETag(map[string]int{"a": 1})
	if tag == jsonapi.ETag(map[string]int{"a": 2}) || tag[0] != '"' {
		t.Fatalf("ETag %s", tag)
	}
	for _, c := range []struct {
		header      string
		conditional bool
		status      int
	}{
		{"", false, 0},
		{tag, true, 0},
		{`"other", ` + tag, true, 0},
		{"*", true, 0},
		{`"other"`, false, http.StatusPreconditionFailed},
		{"W/" + tag, false, http.StatusPreconditionFailed}, // a weak tag never matches a strong comparison
	} {
		r := httptest.NewRequest("PATCH", "/x", nil)
		if c.header != "" {
			r.Header.Set("If-Match", c.header)
		}
		cond, err := jsonapi.IfMatch(r, tag)
		var e *jsonapi.Error
		if cond != c.conditional || (c.status == 0) != (err == nil) || (err != nil && (!errors.As(err, &e) || e.Status != c.status)) {
			t.Errorf("If-Match %q: %v %v", c.header, cond, err)
		}
	}
}
