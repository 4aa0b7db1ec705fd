package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

func mailTokenCases() []testCase {
	return []testCase{
		{"mail token: link single use under concurrency, retired by a newer one, expires", testMailTokenLink},
		{"mail token: code guesses reserved and limited under concurrency", testMailTokenCode},
		{"mail token: reset sets password, verifies, ends sessions; sign-in waits for verification", testMailTokenReset},
		{"mail token: a failed compose leaves no user, token or mail", testMailTokenComposeFails},
		{"mail token: sign-in codes issued at once leave one live; sign-in verifies, stays in its pool", testMailTokenSignIn},
	}
}

// mailCatcher is a ComposeMail that keeps the last token and code it was given.
type mailCatcher struct {
	mu          sync.Mutex
	token, code string
}

func (c *mailCatcher) compose(purpose, to, token, code string) (models.MailMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token, c.code = token, code
	return models.MailMessage{From: "no-reply@x.example", To: to, Message: purpose}, nil
}

func testMailTokenLink(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	var mc mailCatcher
	u, err := s.CreateUserWith(ctx, models.NewUser{Email: "ada@example.com", Password: "pw-ada", VerifyMail: mc.compose})
	must(t, "create with mail", err)
	if msgs, _ := s.OutboxMessages(ctx, models.OutboxMail, 10); len(msgs) != 1 {
		t.Fatalf("%d mails queued with the user, want 1", len(msgs))
	}
	first := mc.token
	must(t, "resend", s.SendMailToken(ctx, "", "ada@example.com", models.MailVerifyEmail, baseTime, mc.compose))
	if _, err := s.VerifyEmail(ctx, models.MailTokenRef{Token: first}, baseTime); !errors.Is(err, models.ErrMailToken) {
		t.Fatalf("retired token: %v", err)
	}
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.VerifyEmail(ctx, models.MailTokenRef{Token: mc.token}, baseTime); err == nil {
				ok.Add(1)
			} else if !errors.Is(err, models.ErrMailToken) {
				t.Errorf("concurrent verify: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d concurrent uses of one link succeeded, want 1", ok.Load())
	}
	got, err := s.UserByID(ctx, u.ID)
	must(t, "user", err)
	if !got.EmailVerified {
		t.Fatal("not verified")
	}
	if err := s.SendMailToken(ctx, "", "ada@example.com", models.MailVerifyEmail, baseTime, mc.compose); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("verification mail to a verified user: %v", err)
	}
	if err := s.SendMailToken(ctx, "", "nobody@example.com", models.MailResetPassword, baseTime, mc.compose); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("mail to an unknown user: %v", err)
	}
	must(t, "reset mail", s.SendMailToken(ctx, "", "ada@example.com", models.MailResetPassword, baseTime, mc.compose))
	if _, err := s.VerifyEmail(ctx, models.MailTokenRef{Token: mc.token}, baseTime); !errors.Is(err, models.ErrMailToken) {
		t.Fatalf("a reset token used to verify: %v", err)
	}
	late := baseTime.Add(models.ResetTTL + time.Second)
	if _, err := s.ResetPassword(ctx, models.MailTokenRef{Token: mc.token}, "new-pw-123456", func(string) error { return nil }, late); !errors.Is(err, models.ErrMailToken) {
		t.Fatalf("an expired reset token: %v", err)
	}
}

func testMailTokenCode(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	var mc mailCatcher
	_, err := s.CreateUserWith(ctx, models.NewUser{Email: "bob@example.com", Password: "pw-bob", VerifyMail: mc.compose})
	must(t, "create", err)
	wrong := fmt.Sprintf("%06d", (mustAtoi(mc.code)+1)%1000000)
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			_, err := s.VerifyEmail(ctx, models.MailTokenRef{Email: "bob@example.com", Code: wrong}, baseTime)
			if !errors.Is(err, models.ErrMailToken) {
				t.Errorf("wrong code: %v", err)
			}
		})
	}
	wg.Wait()
	if _, err := s.VerifyEmail(ctx, models.MailTokenRef{Email: "bob@example.com", Code: mc.code}, baseTime); !errors.Is(err, models.ErrMailToken) {
		t.Fatalf("the right code after the guesses ran out: %v", err)
	}
	// A new mail brings a new code with fresh guesses; the code expires before the link.
	must(t, "resend", s.SendMailToken(ctx, "", "bob@example.com", models.MailVerifyEmail, baseTime, mc.compose))
	if _, err := s.VerifyEmail(ctx, models.MailTokenRef{Email: "bob@example.com", Code: mc.code}, baseTime.Add(models.VerifyCodeTTL+time.Second)); !errors.Is(err, models.ErrMailToken) {
		t.Fatalf("an expired code: %v", err)
	}
	if _, err := s.VerifyEmail(ctx, models.MailTokenRef{Email: "BOB@example.com", Code: mc.code}, baseTime); err != nil {
		t.Fatalf("the right code: %v", err)
	}
}

func mustAtoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func testMailTokenReset(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	var mc mailCatcher
	must(t, "pool", s.CreatePool(ctx, models.Pool{Name: "members", RequireEmailVerification: true}))
	u, err := s.CreateUserWith(ctx, models.NewUser{Pool: "members", Email: "cy@example.com", Password: "pw-cy-old", VerifyMail: mc.compose})
	must(t, "create", err)
	if _, err := s.Authenticate(ctx, "members", "cy@example.com", "pw-cy-old"); !errors.Is(err, models.ErrEmailNotVerified) {
		t.Fatalf("unverified sign-in: %v", err)
	}
	if _, err := s.Authenticate(ctx, "members", "cy@example.com", "wrong"); !errors.Is(err, models.ErrInvalidCredentials) {
		t.Fatalf("a wrong password must not say the email is unverified: %v", err)
	}
	bs, _, err := s.CreateBrowserSession(ctx, u, "203.0.113.1", "test", baseTime, time.Hour, time.Hour)
	must(t, "session", err)
	must(t, "reset mail", s.SendMailToken(ctx, "members", "cy@example.com", models.MailResetPassword, baseTime, mc.compose))
	refused := errors.New("weak")
	if _, err := s.ResetPassword(ctx, models.MailTokenRef{Token: mc.token}, "pw-cy-new", func(email string) error {
		if email != "cy@example.com" {
			t.Errorf("policy got %q", email)
		}
		return refused
	}, baseTime); !errors.Is(err, refused) {
		t.Fatalf("policy refusal: %v", err)
	}
	n, err := s.ResetPassword(ctx, models.MailTokenRef{Token: mc.token}, "pw-cy-new", func(string) error { return nil }, baseTime)
	must(t, "reset (the policy refusal did not use the token)", err)
	if n != 1 {
		t.Fatalf("ended %d sessions, want 1", n)
	}
	if got, _ := s.BrowserSessionByID(ctx, bs.ID); got != nil && got.EndedAt == nil {
		t.Fatal("session still live after a reset")
	}
	if _, err := s.Authenticate(ctx, "members", "cy@example.com", "pw-cy-new"); err != nil {
		t.Fatalf("sign-in after reset (which verifies the email): %v", err)
	}
}

func testMailTokenComposeFails(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	boom := errors.New("boom")
	_, err := s.CreateUserWith(ctx, models.NewUser{Email: "dan@example.com", Password: "pw-dan",
		VerifyMail: func(string, string, string, string) (models.MailMessage, error) { return models.MailMessage{}, boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("create: %v", err)
	}
	if _, err := s.Authenticate(ctx, "", "dan@example.com", "pw-dan"); !errors.Is(err, models.ErrInvalidCredentials) {
		t.Fatalf("the user exists after a failed compose: %v", err)
	}
	if msgs, _ := s.OutboxMessages(ctx, models.OutboxMail, 10); len(msgs) != 0 {
		t.Fatalf("%d mails queued", len(msgs))
	}
}

func testMailTokenSignIn(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u, err := s.CreateUserWith(ctx, models.NewUser{Email: "ada@example.com", Password: "pw-ada"})
	must(t, "create", err)
	// Issued concurrently (the outbox handles requests in parallel): only the last one issued stays live.
	var mu sync.Mutex
	var tokens []string
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			err := s.SendMailToken(ctx, "", "ada@example.com", models.MailSignIn, baseTime, func(_, to, token, _ string) (models.MailMessage, error) {
				mu.Lock()
				tokens = append(tokens, token)
				mu.Unlock()
				return models.MailMessage{From: "no-reply@x.example", To: to, Message: "x"}, nil
			})
			if err != nil {
				t.Errorf("concurrent issue: %v", err)
			}
		})
	}
	wg.Wait()
	// A link token names no pool: another pool's client cannot spend it (and it stays usable).
	if _, err := s.SignInWithMailToken(ctx, models.MailTokenRef{Pool: "members", Token: tokens[0]}, baseTime); !errors.Is(err, models.ErrMailToken) {
		t.Fatalf("a token through another pool: %v", err)
	}
	live := 0
	for _, tok := range tokens {
		got, err := s.SignInWithMailToken(ctx, models.MailTokenRef{Token: tok}, baseTime)
		switch {
		case err == nil:
			live++
			if got.ID != u.ID || !got.EmailVerified {
				t.Fatalf("signed in as %v", got)
			}
		case !errors.Is(err, models.ErrMailToken):
			t.Fatalf("sign in: %v", err)
		}
	}
	if live != 1 {
		t.Fatalf("%d of %d concurrently issued sign-in tokens were live, want 1", live, len(tokens))
	}
	if got, err := s.UserByID(ctx, u.ID); err != nil || !got.EmailVerified {
		t.Fatalf("email not verified after a sign-in by mail: %v %v", got, err)
	}
}
