package storetest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

func ptr[T any](v T) *T { return &v }

// testUpdateUser: UpdateUser checks every field before writing any, applies them all in one transaction with
// the setters' rules and SetDisabled's effects, and changes nothing when any field is refused.
func testUpdateUser(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	client := mustClient(t, s, "app")
	kim, err := s.CreateUserWith(ctx, models.NewUser{Email: "kim@example.com", Password: "pw-kim", Name: "Kim",
		Roles: []string{"customer"}, Extras: map[string]any{"plan": "free"}})
	must(t, "CreateUserWith", err)
	ses, _, err := s.CreateBrowserSession(ctx, kim, "192.0.2.1", "ua", now, time.Hour, 24*time.Hour)
	must(t, "CreateBrowserSession", err)
	issueTokens(t, s, client, "kim", kim.ID, ses.ID)
	before, err := s.UserByID(ctx, kim.ID)
	must(t, "UserByID", err)
	unchanged := func(what string) {
		t.Helper()
		got, err := s.UserByID(ctx, kim.ID)
		must(t, "UserByID", err)
		if !reflect.DeepEqual(got, before) {
			t.Errorf("%s changed the user:\n got  %+v\n want %+v", what, got, before)
		}
	}

	// Each refused patch also carries valid fields, a disable among them: none of them may land.
	valid := models.UserPatch{Name: ptr("Kim Lee"), Roles: ptr([]string{"ops"}), Extras: ptr(map[string]any{"plan": "pro"}), Disabled: ptr(true)}
	for _, tc := range []struct {
		name  string
		patch func(p *models.UserPatch)
	}{
		{"a name over 200 characters", func(p *models.UserPatch) { p.Name = ptr(strings.Repeat("n", 201)) }},
		{"a name with a NUL byte", func(p *models.UserPatch) { p.Name = ptr("Kim\x00") }},
		{"extras over the size limit", func(p *models.UserPatch) {
			p.Extras = ptr(map[string]any{"blob": strings.Repeat("x", models.MaxExtrasBytes)})
		}},
		{"extras with an empty key", func(p *models.UserPatch) { p.Extras = ptr(map[string]any{"": "v"}) }},
	} {
		p := valid
		tc.patch(&p)
		if _, err := s.UpdateUser(ctx, kim.ID, p, now.Add(time.Minute)); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("%s: %v, want models.ErrInvalid", tc.name, err)
		}
		unchanged(tc.name)
	}
	checkTokens(t, s, "kim", false)
	if bs, err := s.BrowserSessionByID(ctx, ses.ID); err != nil || bs.EndedAt != nil {
		t.Errorf("session after refused patches: %+v, %v; want it still open", bs, err)
	}

	got, err := s.UpdateUser(ctx, kim.ID, models.UserPatch{}, now.Add(time.Minute))
	must(t, "empty patch", err)
	if !reflect.DeepEqual(got, before) {
		t.Errorf("empty patch returned %+v, want %+v", got, before)
	}
	unchanged("an empty patch")

	// Inside a caller's transaction the change is the caller's to commit or roll back.
	txCtx, err := s.BeginTX(ctx)
	must(t, "BeginTX", err)
	_, err = s.UpdateUser(txCtx, kim.ID, valid, now.Add(time.Minute))
	must(t, "UpdateUser in a transaction", err)
	must(t, "Rollback", s.Rollback(txCtx))
	unchanged("a rolled-back transaction")
	checkTokens(t, s, "kim", false)

	at := now.Add(2 * time.Minute)
	got, err = s.UpdateUser(ctx, kim.ID, models.UserPatch{Name: ptr("  Kim Lee "), Roles: ptr([]string{"ops", "admin"}),
		Extras: ptr(map[string]any{"team": "blue"}), Disabled: ptr(true)}, at)
	must(t, "UpdateUser", err)
	if got.Name != "Kim Lee" || !reflect.DeepEqual(got.Roles, []string{"ops", "admin"}) ||
		!reflect.DeepEqual(got.Extras, map[string]any{"team": "blue"}) || !got.Disabled || !got.UpdatedAt.Equal(at) ||
		got.Email != before.Email || !got.CreatedAt.Equal(before.CreatedAt) {
		t.Errorf("after UpdateUser: %+v", got)
	}
	if stored, err := s.UserByID(ctx, kim.ID); err != nil || !reflect.DeepEqual(stored, got) {
		t.Errorf("stored user %+v (%v), want what UpdateUser returned %+v", stored, err, got)
	}
	// Disabling has SetDisabled's effects.
	if bs, err := s.BrowserSessionByID(ctx, ses.ID); err != nil || bs.EndedAt == nil || !bs.EndedAt.Equal(at) {
		t.Errorf("session after disabling: %+v, %v; want ended at %v", bs, err, at)
	}
	checkTokens(t, s, "kim", true)

	got, err = s.UpdateUser(ctx, kim.ID, models.UserPatch{Extras: ptr(map[string]any(nil)), Disabled: ptr(false)}, at)
	must(t, "UpdateUser nil extras, enable", err)
	if got.Extras == nil || len(got.Extras) != 0 || got.Disabled || got.Name != "Kim Lee" {
		t.Errorf("after clearing extras and enabling: %+v", got)
	}
	_, err = s.Authenticate(ctx, "", "kim@example.com", "pw-kim")
	must(t, "Authenticate after re-enabling", err)

	for name, p := range map[string]models.UserPatch{
		"empty": {}, "name": {Name: ptr("x")}, "disabled": {Disabled: ptr(true)}, "all": valid,
	} {
		_, err := s.UpdateUser(ctx, "usr_nope", p, at)
		wantNotFound(t, "UpdateUser "+name+" of an unknown user", err)
	}
}
