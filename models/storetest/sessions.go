package storetest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/models"
)

// sessionCases: browser sessions, consents and authorization challenges.
func sessionCases() []testCase {
	return []testCase{
		{"browser sessions create and look up by token", testBrowserSessionCreateLookup},
		{"browser sessions expire when idle and at the absolute deadline", testBrowserSessionExpiry},
		{"browser sessions touch extends the idle deadline, never past the absolute one", testBrowserSessionTouch},
		{"browser sessions end: lookup fails and tokens issued through it are revoked", testBrowserSessionEnd},
		{"browser sessions end all of a user's others: current one and other users kept", testBrowserSessionEndOthers},
		{"browser sessions list active ones, most recently active first", testBrowserSessionList},
		{"consents accumulate per user and client", testConsents},
		{"consents concurrent saves all land", testConsentsConcurrent},
		{"auth challenges need a browser session; consent and take are bound to it", testAuthChallenges},
		{"auth challenges concurrent take: exactly one finishes it", testConcurrentChallengeTake},
		{"auth challenges are capped per browser session", testChallengesCappedPerSession},
		{"expired sessions and challenges are deleted in bounded batches", testDeleteExpiredSessionsAndChallenges},
	}
}

// Browser sessions.

func testBrowserSessionCreateLookup(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u := mustUser(t, s, "ana@example.com")
	now := baseTime
	ua := "M" + strings.Repeat("é", 300) // 601 bytes; 512 would cut an é in half
	ses, tok, err := s.CreateBrowserSession(ctx, u, "2001:db8::1", ua, now, time.Hour, 24*time.Hour)
	must(t, "CreateBrowserSession", err)
	if !strings.HasPrefix(ses.ID, "ses_") || len(ses.ID) != len("ses_")+26 {
		t.Errorf("session id %q, want ses_ + 26 characters", ses.ID)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(tok); err != nil || len(raw) != 32 {
		t.Errorf("token %q: %d bytes, %v; want 256 bits of base64url", tok, len(raw), err)
	}
	if ses.UserID != u.ID || ses.IP != "2001:db8::1" || !ses.AuthTime.Equal(now) || !ses.CreatedAt.Equal(now) ||
		!ses.LastActiveAt.Equal(now) || !ses.IdleExpiresAt.Equal(now.Add(time.Hour)) ||
		!ses.ExpiresAt.Equal(now.Add(24*time.Hour)) || ses.EndedAt != nil {
		t.Errorf("created session = %+v", ses)
	}
	if len(ses.UserAgent) != 511 || !strings.HasPrefix(ua, ses.UserAgent) || !utf8.ValidString(ses.UserAgent) {
		t.Errorf("user agent of %d bytes, want the first 511 (whole characters within 512 bytes)", len(ses.UserAgent))
	}

	got, err := s.BrowserSessionByToken(ctx, tok, now.Add(time.Minute))
	must(t, "BrowserSessionByToken", err)
	if !reflect.DeepEqual(got, ses) {
		t.Errorf("by token = %+v, want %+v", got, ses)
	}
	byID, err := s.BrowserSessionByID(ctx, ses.ID)
	must(t, "BrowserSessionByID", err)
	if !reflect.DeepEqual(byID, ses) {
		t.Errorf("by id = %+v, want %+v", byID, ses)
	}
	for _, wrong := range []string{"", "x", tok[:len(tok)-1], ses.ID, strings.ToUpper(tok)} {
		_, err := s.BrowserSessionByToken(ctx, wrong, now)
		wantNotFound(t, fmt.Sprintf("token %q", wrong), err)
	}
	_, err = s.BrowserSessionByID(ctx, "ses_nope")
	wantNotFound(t, "unknown id", err)

	// Odd header bytes are stored safely: invalid UTF-8 and NUL would break PostgreSQL text.
	odd, _, err := s.CreateBrowserSession(ctx, u, strings.Repeat("9", 100), "bad\xff\x00ua", now, time.Hour, time.Hour)
	must(t, "CreateBrowserSession with odd headers", err)
	if len(odd.IP) != 64 || !utf8.ValidString(odd.UserAgent) || strings.Contains(odd.UserAgent, "\x00") {
		t.Errorf("odd session ip %q ua %q", odd.IP, odd.UserAgent)
	}
	// The idle deadline never passes the absolute one.
	short, _, err := s.CreateBrowserSession(ctx, u, "", "", now, 2*time.Hour, time.Hour)
	must(t, "CreateBrowserSession idle > absolute", err)
	if !short.IdleExpiresAt.Equal(short.ExpiresAt) {
		t.Errorf("IdleExpiresAt %v past ExpiresAt %v", short.IdleExpiresAt, short.ExpiresAt)
	}

	_, _, err = s.CreateBrowserSession(ctx, &models.User{ID: "usr_nope"}, "", "", now, time.Hour, time.Hour)
	wantNotFound(t, "session of an unknown user", err)
	if _, _, err := s.CreateBrowserSession(ctx, u, "", "", now, 0, time.Hour); !errors.Is(err, models.ErrInvalid) {
		t.Errorf("zero idle lifetime: %v, want models.ErrInvalid", err)
	}
}

func testBrowserSessionExpiry(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u := mustUser(t, s, "bo@example.com")
	now := baseTime
	_, tok, err := s.CreateBrowserSession(ctx, u, "", "", now, 30*time.Minute, 8*time.Hour)
	must(t, "CreateBrowserSession", err)
	tests := []struct {
		name   string
		at     time.Time
		active bool
	}{
		{"just created", now, true},
		{"before the idle deadline", now.Add(29 * time.Minute), true},
		{"at the idle deadline", now.Add(30 * time.Minute), false},
		{"idle too long", now.Add(31 * time.Minute), false},
		{"past the absolute deadline", now.Add(9 * time.Hour), false},
	}
	for _, tc := range tests {
		_, err := s.BrowserSessionByToken(ctx, tok, tc.at)
		if tc.active && err != nil {
			t.Errorf("%s: %v, want the session", tc.name, err)
		}
		if !tc.active && !errors.Is(err, models.ErrNotFound) {
			t.Errorf("%s: %v, want models.ErrNotFound", tc.name, err)
		}
	}
}

func testBrowserSessionTouch(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u := mustUser(t, s, "cy@example.com")
	now := baseTime
	idle, absolute := 30*time.Minute, time.Hour
	ses, tok, err := s.CreateBrowserSession(ctx, u, "192.0.2.1", "", now, idle, absolute)
	must(t, "CreateBrowserSession", err)

	// Activity every 20 minutes keeps it alive past the first idle deadline ...
	must(t, "touch at +20m", s.TouchBrowserSession(ctx, ses.ID, "192.0.2.9", now.Add(20*time.Minute), idle))
	got, err := s.BrowserSessionByToken(ctx, tok, now.Add(45*time.Minute))
	must(t, "lookup at +45m after touch", err)
	if got.IP != "192.0.2.9" || !got.LastActiveAt.Equal(now.Add(20*time.Minute)) ||
		!got.IdleExpiresAt.Equal(now.Add(50*time.Minute)) || !got.AuthTime.Equal(now) {
		t.Errorf("after touch: %+v", got)
	}
	// ... but not past the absolute deadline.
	must(t, "touch at +45m", s.TouchBrowserSession(ctx, ses.ID, "192.0.2.9", now.Add(45*time.Minute), idle))
	got, err = s.BrowserSessionByID(ctx, ses.ID)
	must(t, "BrowserSessionByID", err)
	if !got.IdleExpiresAt.Equal(now.Add(absolute)) {
		t.Errorf("IdleExpiresAt = %v, want capped at the absolute deadline %v", got.IdleExpiresAt, now.Add(absolute))
	}
	_, err = s.BrowserSessionByToken(ctx, tok, now.Add(61*time.Minute))
	wantNotFound(t, "lookup past the absolute deadline", err)
	wantNotFound(t, "touch past the absolute deadline",
		s.TouchBrowserSession(ctx, ses.ID, "", now.Add(61*time.Minute), idle))
	wantNotFound(t, "touch of an unknown session", s.TouchBrowserSession(ctx, "ses_nope", "", now, idle))

	// An idle-expired session cannot be revived by a touch.
	ses2, _, err := s.CreateBrowserSession(ctx, u, "", "", now, idle, absolute)
	must(t, "CreateBrowserSession 2", err)
	wantNotFound(t, "touch after idle expiry", s.TouchBrowserSession(ctx, ses2.ID, "", now.Add(31*time.Minute), idle))

	// Re-authentication moves auth_time.
	must(t, "SetBrowserSessionAuthTime", s.SetBrowserSessionAuthTime(ctx, ses.ID, now.Add(50*time.Minute)))
	got, err = s.BrowserSessionByID(ctx, ses.ID)
	must(t, "BrowserSessionByID", err)
	if !got.AuthTime.Equal(now.Add(50 * time.Minute)) {
		t.Errorf("AuthTime = %v, want %v", got.AuthTime, now.Add(50*time.Minute))
	}
	wantNotFound(t, "auth time of an unknown session", s.SetBrowserSessionAuthTime(ctx, "ses_nope", now))
	must(t, "end", s.EndBrowserSession(ctx, ses.ID, now.Add(55*time.Minute)))
	wantNotFound(t, "auth time of an ended session", s.SetBrowserSessionAuthTime(ctx, ses.ID, now.Add(56*time.Minute)))
	wantNotFound(t, "touch of an ended session", s.TouchBrowserSession(ctx, ses.ID, "", now.Add(56*time.Minute), idle))
}

func testBrowserSessionEnd(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	u := mustUser(t, s, "di@example.com")
	now := baseTime
	ses, tok, err := s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, 24*time.Hour)
	must(t, "session", err)
	other, otherTok, err := s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, 24*time.Hour)
	must(t, "other session", err)
	issueTokens(t, s, client, "ses", u.ID, ses.ID)
	issueTokens(t, s, client, "other", u.ID, other.ID)
	issueTokens(t, s, client, "nosid", u.ID, "")

	must(t, "EndBrowserSession", s.EndBrowserSession(ctx, ses.ID, now.Add(time.Minute)))
	_, err = s.BrowserSessionByToken(ctx, tok, now.Add(2*time.Minute))
	wantNotFound(t, "lookup of an ended session", err)
	got, err := s.BrowserSessionByID(ctx, ses.ID)
	must(t, "BrowserSessionByID of an ended session", err)
	if got.EndedAt == nil || !got.EndedAt.Equal(now.Add(time.Minute)) {
		t.Errorf("EndedAt = %v, want %v", got.EndedAt, now.Add(time.Minute))
	}
	checkTokens(t, s, "ses", true)
	checkTokens(t, s, "other", false)
	checkTokens(t, s, "nosid", false)
	_, err = s.BrowserSessionByToken(ctx, otherTok, now.Add(2*time.Minute))
	must(t, "other session still active", err)

	wantNotFound(t, "ending twice", s.EndBrowserSession(ctx, ses.ID, now.Add(3*time.Minute)))
	wantNotFound(t, "ending an unknown session", s.EndBrowserSession(ctx, "ses_nope", now))

	// Ending inside a caller's transaction that rolls back leaves the session and its tokens alone.
	txCtx, err := s.BeginTX(ctx)
	must(t, "begin", err)
	must(t, "end in tx", s.EndBrowserSession(txCtx, other.ID, now.Add(4*time.Minute)))
	must(t, "rollback", s.Rollback(txCtx))
	_, err = s.BrowserSessionByToken(ctx, otherTok, now.Add(5*time.Minute))
	must(t, "session after rolled-back end", err)
	checkTokens(t, s, "other", false)
}

func testBrowserSessionEndOthers(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	client := mustClient(t, s, "app")
	u := mustUser(t, s, "ed@example.com")
	v := mustUser(t, s, "fay@example.com")
	now := baseTime
	var ids []string
	for i := range 3 {
		ses, _, err := s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, 24*time.Hour)
		must(t, "session", err)
		ids = append(ids, ses.ID)
		issueTokens(t, s, client, fmt.Sprintf("u%d", i), u.ID, ses.ID)
	}
	vSes, _, err := s.CreateBrowserSession(ctx, v, "", "", now, time.Hour, 24*time.Hour)
	must(t, "v's session", err)
	issueTokens(t, s, client, "v", v.ID, vSes.ID)
	must(t, "end one already", s.EndBrowserSession(ctx, ids[2], now))

	n, err := s.EndUserBrowserSessions(ctx, u.ID, ids[0], now.Add(time.Minute))
	must(t, "EndUserBrowserSessions", err)
	if n != 1 {
		t.Errorf("ended %d sessions, want 1 (one kept, one already ended)", n)
	}
	list, err := s.ListBrowserSessions(ctx, u.ID, now.Add(2*time.Minute))
	must(t, "ListBrowserSessions", err)
	if len(list) != 1 || list[0].ID != ids[0] {
		t.Errorf("sessions left = %v, want only the current one %s", sessionIDs(list), ids[0])
	}
	checkTokens(t, s, "u0", false)
	checkTokens(t, s, "u1", true)
	checkTokens(t, s, "u2", true)
	checkTokens(t, s, "v", false)

	n, err = s.EndUserBrowserSessions(ctx, u.ID, "", now.Add(3*time.Minute))
	must(t, "EndUserBrowserSessions without exception", err)
	if n != 1 {
		t.Errorf("ended %d sessions, want 1", n)
	}
	checkTokens(t, s, "u0", true)
	n, err = s.EndUserBrowserSessions(ctx, u.ID, "", now.Add(4*time.Minute))
	if err != nil || n != 0 {
		t.Errorf("ending again = %d, %v; want 0, nil", n, err)
	}
}

func sessionIDs(l []models.BrowserSession) []string {
	var out []string
	for _, s := range l {
		out = append(out, s.ID)
	}
	return out
}

func testBrowserSessionList(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u := mustUser(t, s, "gus@example.com")
	other := mustUser(t, s, "hana@example.com")
	now := baseTime
	mk := func() string {
		ses, _, err := s.CreateBrowserSession(ctx, u, "", "", now, time.Hour, 24*time.Hour)
		must(t, "CreateBrowserSession", err)
		return ses.ID
	}
	a, b, c, ended, idle := mk(), mk(), mk(), mk(), mk()
	_, _, err := s.CreateBrowserSession(ctx, other, "", "", now, time.Hour, 24*time.Hour)
	must(t, "other user's session", err)
	must(t, "touch a", s.TouchBrowserSession(ctx, a, "", now.Add(10*time.Minute), time.Hour))
	must(t, "touch c", s.TouchBrowserSession(ctx, c, "", now.Add(20*time.Minute), time.Hour))
	must(t, "touch b", s.TouchBrowserSession(ctx, b, "", now.Add(30*time.Minute), time.Hour))
	must(t, "touch ended", s.TouchBrowserSession(ctx, ended, "", now.Add(40*time.Minute), time.Hour))
	must(t, "end", s.EndBrowserSession(ctx, ended, now.Add(41*time.Minute)))
	// idle was last active at now: at +65m it has been idle over an hour.
	list, err := s.ListBrowserSessions(ctx, u.ID, now.Add(65*time.Minute))
	must(t, "ListBrowserSessions", err)
	if got, want := sessionIDs(list), []string{b, c, a}; !reflect.DeepEqual(got, want) {
		t.Errorf("sessions = %v, want most recently active first %v (without ended %s and idle %s)", got, want, ended, idle)
	}
	list, err = s.ListBrowserSessions(ctx, "usr_nobody", now)
	if err != nil || list == nil || len(list) != 0 {
		t.Errorf("sessions of an unknown user = %#v, %v; want empty", list, err)
	}
}

// Consents.

func testConsents(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	sc, err := s.ConsentedScopes(ctx, "usr_1", "app")
	if err != nil || sc != nil {
		t.Fatalf("no consent = %v, %v; want nil, nil", sc, err)
	}
	steps := []struct {
		user, client string
		save         []string
		want         []string
	}{
		{"usr_1", "app", []string{"openid", "profile"}, []string{"openid", "profile"}},
		{"usr_1", "app", []string{"email", "openid"}, []string{"openid", "profile", "email"}},
		{"usr_1", "app", nil, []string{"openid", "profile", "email"}},
		{"usr_1", "other", []string{"offline_access"}, []string{"offline_access"}},
		{"usr_2", "app", []string{"openid", "openid"}, []string{"openid"}},
	}
	for i, st := range steps {
		must(t, fmt.Sprintf("SaveConsent %d", i), s.SaveConsent(ctx, st.user, st.client, st.save, now.Add(time.Duration(i)*time.Minute)))
		got, err := s.ConsentedScopes(ctx, st.user, st.client)
		must(t, "ConsentedScopes", err)
		if !reflect.DeepEqual(got, st.want) {
			t.Errorf("step %d: %s→%s scopes = %q, want %q", i, st.user, st.client, got, st.want)
		}
	}
	got, err := s.ConsentedScopes(ctx, "usr_1", "app")
	must(t, "ConsentedScopes", err)
	if !reflect.DeepEqual(got, []string{"openid", "profile", "email"}) {
		t.Errorf("consent to app changed by other clients' or users' saves: %q", got)
	}
}

func testConsentsConcurrent(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	const workers = 8
	errs := make([]error, workers)
	runWithDeadline(t, func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.SaveConsent(ctx, "usr_1", "app", []string{fmt.Sprintf("scope%d", i)}, baseTime)
			}()
		}
		close(start)
		wg.Wait()
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	got, err := s.ConsentedScopes(ctx, "usr_1", "app")
	must(t, "ConsentedScopes", err)
	if len(got) != workers {
		t.Errorf("scopes = %q, want all %d concurrent saves kept", got, workers)
	}
}

// Authorization challenges.

func testAuthChallenges(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	query := "response_type=code&client_id=app&scope=openid&state=xyz"
	requested, login := now.Add(-2*time.Minute), now.Add(-time.Second)
	ch, err := s.CreateAuthChallenge(ctx, models.AuthChallenge{
		ID: "ignored", Query: query, ClientID: "app", BrowserSessionID: "ses_1", LoginAt: &login,
		CreatedAt: requested, ExpiresAt: now.Add(10 * time.Minute),
	})
	must(t, "CreateAuthChallenge", err)
	if raw, err := base64.RawURLEncoding.DecodeString(ch.ID); err != nil || len(raw) != 32 {
		t.Errorf("challenge id %q: %d bytes, %v; want 256 bits of base64url", ch.ID, len(raw), err)
	}
	if ch.Query != query || ch.ClientID != "app" || ch.BrowserSessionID != "ses_1" || ch.LoginAt == nil || !ch.LoginAt.Equal(login) ||
		ch.ConsentAt != nil || !ch.CreatedAt.Equal(requested) || !ch.ExpiresAt.Equal(now.Add(10*time.Minute)) {
		t.Errorf("created = %+v", ch)
	}
	got, err := s.AuthChallenge(ctx, ch.ID, now.Add(time.Minute))
	must(t, "AuthChallenge", err)
	if !reflect.DeepEqual(got, ch) {
		t.Errorf("AuthChallenge = %+v, want %+v", got, ch)
	}
	_, err = s.AuthChallenge(ctx, "nope", now)
	wantNotFound(t, "unknown challenge", err)
	_, err = s.AuthChallenge(ctx, ch.ID, now.Add(10*time.Minute))
	wantNotFound(t, "challenge at its expiry", err)

	// Consent is bound to the challenge's browser session: another session cannot mark it or take it over.
	wantNotFound(t, "mark consent from another session", s.MarkChallengeConsent(ctx, ch.ID, "ses_other", now.Add(3*time.Minute)))
	if got, _ = s.AuthChallenge(ctx, ch.ID, now); got.BrowserSessionID != "ses_1" || got.ConsentAt != nil {
		t.Errorf("consent from another session changed the challenge: %+v", got)
	}
	must(t, "MarkChallengeConsent", s.MarkChallengeConsent(ctx, ch.ID, "ses_1", now.Add(3*time.Minute)))
	got, err = s.AuthChallenge(ctx, ch.ID, now.Add(4*time.Minute))
	must(t, "AuthChallenge after consent", err)
	if got.BrowserSessionID != "ses_1" || got.ConsentAt == nil || !got.ConsentAt.Equal(now.Add(3*time.Minute)) {
		t.Errorf("after consent = %+v", got)
	}
	wantNotFound(t, "mark consent on an expired challenge", s.MarkChallengeConsent(ctx, ch.ID, "ses_1", now.Add(11*time.Minute)))
	wantNotFound(t, "mark consent on an unknown challenge", s.MarkChallengeConsent(ctx, "nope", "ses_1", now))

	// Taking finishes it once, and only for its own session and while it lives.
	wantNotFound(t, "take from another session", s.TakeAuthChallenge(ctx, ch.ID, "ses_other", now))
	wantNotFound(t, "take at its expiry", s.TakeAuthChallenge(ctx, ch.ID, "ses_1", now.Add(10*time.Minute)))
	must(t, "TakeAuthChallenge", s.TakeAuthChallenge(ctx, ch.ID, "ses_1", now))
	_, err = s.AuthChallenge(ctx, ch.ID, now)
	wantNotFound(t, "taken challenge", err)
	wantNotFound(t, "take again", s.TakeAuthChallenge(ctx, ch.ID, "ses_1", now))

	valid := func(q string) models.AuthChallenge {
		return models.AuthChallenge{Query: q, ClientID: "app", BrowserSessionID: "ses_1", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	}
	ok, err := s.CreateAuthChallenge(ctx, valid(strings.Repeat("q", 8<<10)))
	must(t, "query of exactly 8 KiB", err)
	if ok.Query != strings.Repeat("q", 8<<10) || ok.LoginAt != nil {
		t.Errorf("8 KiB challenge without sign-in = %d bytes, login %v", len(ok.Query), ok.LoginAt)
	}
	noSession, expired := valid("q"), valid("q")
	noSession.BrowserSessionID = ""
	expired.ExpiresAt = now
	for name, c := range map[string]models.AuthChallenge{
		"over 8 KiB": valid(strings.Repeat("q", 8<<10+1)), "not UTF-8": valid("a=\xff"), "NUL": valid("a=\x00"),
		"no browser session (anonymous)": noSession, "expires when created": expired,
	} {
		if _, err := s.CreateAuthChallenge(ctx, c); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("challenge %s: %v, want models.ErrInvalid", name, err)
		}
	}
}

// testChallengesCappedPerSession: a browser session keeps only its newest MaxChallengesPerSession unfinished
// challenges; other sessions' are untouched.
func testChallengesCappedPerSession(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	create := func(sid string, i int) *models.AuthChallenge {
		t.Helper()
		at := now.Add(time.Duration(i) * time.Second)
		c, err := s.CreateAuthChallenge(ctx, models.AuthChallenge{Query: fmt.Sprintf("state=%d", i), ClientID: "app",
			BrowserSessionID: sid, CreatedAt: at, ExpiresAt: at.Add(time.Hour)})
		must(t, "CreateAuthChallenge", err)
		return c
	}
	other := create("ses_other", 0)
	var made []*models.AuthChallenge
	for i := range models.MaxChallengesPerSession + 10 {
		made = append(made, create("ses_busy", i+1))
	}
	for i, c := range made {
		_, err := s.AuthChallenge(ctx, c.ID, now)
		kept := i >= len(made)-models.MaxChallengesPerSession
		switch {
		case kept && err != nil:
			t.Errorf("challenge %d of %d: %v, want kept", i, len(made), err)
		case !kept && !errors.Is(err, models.ErrNotFound):
			t.Errorf("challenge %d of %d: %v, want dropped (only the newest %d are kept)", i, len(made), err, models.MaxChallengesPerSession)
		}
	}
	if _, err := s.AuthChallenge(ctx, other.ID, now); err != nil {
		t.Errorf("another session's challenge: %v, want kept", err)
	}
}

// testConcurrentChallengeTake: of 40 browser tabs resuming one challenge at once, exactly one finishes it.
func testConcurrentChallengeTake(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	ch, err := s.CreateAuthChallenge(ctx, models.AuthChallenge{
		Query: "q", ClientID: "app", BrowserSessionID: "ses_1", CreatedAt: baseTime, ExpiresAt: baseTime.Add(time.Minute),
	})
	must(t, "CreateAuthChallenge", err)
	const workers = 40
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.TakeAuthChallenge(ctx, ch.ID, "ses_1", baseTime)
		}()
	}
	wg.Wait()
	took := 0
	for i, err := range errs {
		switch {
		case err == nil:
			took++
		case !errors.Is(err, models.ErrNotFound):
			t.Errorf("worker %d: %v", i, err)
		}
	}
	if took != 1 {
		t.Errorf("%d of %d concurrent takes succeeded, want exactly 1", took, workers)
	}
}

// Maintenance of the new tables.

func testDeleteExpiredSessionsAndChallenges(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u := mustUser(t, s, "ida@example.com")
	now := baseTime
	const week = 7 * 24 * time.Hour
	mk := func(created time.Time, idle, absolute time.Duration) string {
		ses, _, err := s.CreateBrowserSession(ctx, u, "", "", created, idle, absolute)
		must(t, "CreateBrowserSession", err)
		return ses.ID
	}
	live := mk(now.Add(-time.Minute), time.Hour, 24*time.Hour)
	idleRecent := mk(now.Add(-3*24*time.Hour), time.Hour, 30*24*time.Hour) // idle-expired 3 days ago: kept
	idleOld := mk(now.Add(-8*24*time.Hour), time.Hour, 30*24*time.Hour)    // idle-expired 8 days ago: goes
	absOld := mk(now.Add(-9*24*time.Hour), 24*time.Hour, time.Hour)        // expired 9 days ago: goes
	endedRecent := mk(now.Add(-2*24*time.Hour), 30*24*time.Hour, 30*24*time.Hour)
	must(t, "end recent", s.EndBrowserSession(ctx, endedRecent, now.Add(-24*time.Hour))) // ended a day ago: kept
	endedOld := mk(now.Add(-10*24*time.Hour), 30*24*time.Hour, 30*24*time.Hour)
	must(t, "end old", s.EndBrowserSession(ctx, endedOld, now.Add(-week-time.Hour))) // ended 7d1h ago: goes

	challenge := func(at time.Time) models.AuthChallenge {
		return models.AuthChallenge{Query: "q", ClientID: "app", BrowserSessionID: live, CreatedAt: at, ExpiresAt: at.Add(time.Minute)}
	}
	chLive, err := s.CreateAuthChallenge(ctx, challenge(now))
	must(t, "live challenge", err)
	var chOld []string
	for range 3 {
		ch, err := s.CreateAuthChallenge(ctx, challenge(now.Add(-time.Hour)))
		must(t, "expired challenge", err)
		chOld = append(chOld, ch.ID)
	}

	var total int64
	for {
		n, err := sweep(ctx, s, now, 2)
		must(t, "sweep", err)
		total += n
		if n < 2 {
			break
		}
	}
	if total != 6 {
		t.Errorf("deleted %d rows, want 6 (3 sessions, 3 challenges)", total)
	}
	for _, id := range []string{live, idleRecent, endedRecent} {
		_, err := s.BrowserSessionByID(ctx, id)
		must(t, "kept session", err)
	}
	for _, id := range []string{idleOld, absOld, endedOld} {
		_, err := s.BrowserSessionByID(ctx, id)
		wantNotFound(t, "purged session", err)
	}
	_, err = s.AuthChallenge(ctx, chLive.ID, now)
	must(t, "live challenge kept", err)
	for _, id := range chOld {
		_, err := s.AuthChallenge(ctx, id, now.Add(-time.Hour))
		wantNotFound(t, "expired challenge deleted", err)
	}
}
