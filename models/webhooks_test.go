package models_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// Every change site fans its event out in its own transaction: the catalog's events appear as deliveries, in the
// order of the changes, and a change rolled back leaves no delivery.
func TestWebhookEventsAtEveryChange(t *testing.T) {
	backends := map[string]func(t *testing.T) *models.Store{"sqlite": func(t *testing.T) *models.Store { return newSQLiteStore(t) }}
	if base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL"); base != "" {
		backends["postgres"] = func(t *testing.T) *models.Store { return newPostgresStore(t, base) }
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := open(t)
			now := time.Now()
			all := &models.Webhook{ID: "whk_all", URL: "https://backend.example/h", Events: models.WebhookEventTypeNames(), SealedSecret: "sealed", Enabled: true}
			other := &models.Webhook{ID: "whk_other", URL: "https://backend.example/o", Events: models.WebhookEventTypeNames(), Pool: "staff", SealedSecret: "sealed", Enabled: true}
			off := &models.Webhook{ID: "whk_off", URL: "https://backend.example/x", Events: models.WebhookEventTypeNames(), SealedSecret: "sealed"}
			if err := s.CreatePool(ctx, models.Pool{Name: "staff"}); err != nil {
				t.Fatal(err)
			}
			for _, w := range []*models.Webhook{all, other, off} {
				if err := s.CreateWebhook(ctx, w); err != nil {
					t.Fatal(err)
				}
			}
			var token string
			compose := func(purpose, to, tok, code string) (models.MailMessage, error) {
				token = tok
				return models.MailMessage{To: to, Message: "x"}, nil
			}
			u, err := s.CreateUserWith(ctx, models.NewUser{Email: "ada@example.com", Password: "violet-tractor-47", VerifyMail: compose})
			if err != nil {
				t.Fatal(err)
			}
			steps := []struct {
				want []string
				do   func() error
			}{
				{[]string{"user.created"}, func() error { return nil }},
				{[]string{"user.email_verified"}, func() error { _, err := s.VerifyEmail(ctx, models.MailTokenRef{Token: token}, now); return err }},
				{[]string{"session.started"}, func() error {
					_, _, err := s.CreateBrowserSession(ctx, u, "127.0.0.1", "test", now, time.Hour, time.Hour)
					return err
				}},
				{[]string{"user.updated"}, func() error { return s.SetName(ctx, u.ID, "Ada") }},
				{[]string{"user.updated"}, func() error { return s.SetRoles(ctx, u.ID, []string{"admin"}) }},
				{[]string{"user.updated"}, func() error { return s.SetExtras(ctx, u.ID, map[string]any{"plan": "pro"}) }},
				{[]string{"user.updated"}, func() error {
					name := "Ada L."
					_, err := s.UpdateUser(ctx, u.ID, models.UserPatch{Name: &name}, now)
					return err
				}},
				{[]string{"user.password_changed", "session.ended"}, func() error {
					_, err := s.ChangePassword(ctx, u.ID, "another-password-58", "", now)
					return err
				}},
				{[]string{"session.started"}, func() error {
					_, err := s.CreateMintedSession(ctx, u.ID, "backend", "", "", now, time.Hour, time.Hour)
					return err
				}},
				{[]string{"user.updated", "session.ended"}, func() error { // the change, then what it ends
					disabled := true
					_, err := s.UpdateUser(ctx, u.ID, models.UserPatch{Disabled: &disabled}, now)
					return err
				}},
				{[]string{"user.updated"}, func() error { return s.SetDisabled(ctx, u.ID, false, now) }},
				{nil, func() error { // rolled back: no event
					tctx, err := s.BeginTX(ctx)
					if err != nil {
						return err
					}
					if err := s.SetName(tctx, u.ID, "Never"); err != nil {
						return err
					}
					return s.Rollback(tctx)
				}},
				{[]string{"session.started"}, func() error {
					_, err := s.CreateMintedSession(ctx, u.ID, "backend", "", "", now, time.Hour, time.Hour)
					return err
				}},
				{[]string{"session.ended", "user.deleted"}, func() error { return s.DeleteUser(ctx, u.ID) }},
			}
			seen := 0
			for i, st := range steps {
				if err := st.do(); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				list, _, err := s.WebhookDeliveries(ctx, all.ID, "", 100)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for j := len(list) - 1 - seen; j >= 0; j-- { // the log is newest first
					var p models.WebhookPayload
					if err := json.Unmarshal(list[j].Payload, &p); err != nil {
						t.Fatal(err)
					}
					got = append(got, p.Type)
					if p.Pool != "default" || list[j].OrderKey != all.ID+"/"+u.ID {
						t.Errorf("step %d: delivery %+v of %+v", i, list[j], p)
					}
				}
				seen = len(list)
				if !slices.Equal(got, st.want) {
					t.Errorf("step %d: events %v, want %v", i, got, st.want)
				}
			}
			for _, w := range []*models.Webhook{other, off} {
				if list, _, _ := s.WebhookDeliveries(ctx, w.ID, "", 10); len(list) != 0 {
					t.Errorf("webhook %s (another pool, or disabled) got %d deliveries", w.ID, len(list))
				}
			}
		})
	}
}
