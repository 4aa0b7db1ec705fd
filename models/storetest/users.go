package storetest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/models"
)

// userCases: users, their profiles, authentication, setters, disabling, updates and deletion.
func userCases() []testCase {
	return []testCase{
		{"users create, get by id and case-insensitive email, list, delete", testUsersCRUD},
		{"users duplicate email differing in case is ErrConflict", testUserDuplicateEmail},
		{"users invalid email or password is ErrInvalid", testUserInvalid},
		{"users create with name, extras and verified email round-trips", testUserProfile},
		{"users invalid extras or name are ErrInvalid and write nothing", testUserProfileInvalid},
		{"users authenticate: right, wrong, unknown, disabled, any case", testAuthenticate},
		{"users setters update the user and reject bad input", testUserSetters},
		{"users disabling ends their browser sessions and revokes their tokens", testUserDisable},
		{"users update applies every field in one transaction or none", testUpdateUser},
		{"users delete removes their browser sessions and consents", testUserDeleteCascades},
	}
}

// sidSession is a session that names the browser session its tokens were issued through, as the
// provider's session does.
type sidSession struct {
	openid.DefaultSession
	SID string `json:"sid"`
}

func (s *sidSession) GetSID() string { return s.SID }

// newSIDRequest is newRequest with a session carrying sid.
func newSIDRequest(client fosite.Client, requestID, subject, sid string, exp time.Time) *fosite.AuthorizeRequest {
	r := newRequest(client, requestID, subject, exp)
	r.Session = &sidSession{DefaultSession: *newSession(subject, exp), SID: sid}
	return r
}

func mustUser(t *testing.T, s *models.Store, email string) *models.User {
	t.Helper()
	u, err := s.CreateUserWith(ctxT(t), models.NewUser{Email: email, Password: "pw-" + email})
	if err != nil {
		t.Fatalf("CreateUserWith(%q): %v", email, err)
	}
	return u
}

// issueTokens creates an access token, a refresh token and a code named prefix-{a,r,c} in grant prefix.
func issueTokens(t *testing.T, s *models.Store, client fosite.Client, prefix, subject, sid string) {
	t.Helper()
	ctx := ctxT(t)
	exp := time.Now().Add(time.Hour)
	req := func() *fosite.AuthorizeRequest {
		if sid == "" {
			return newRequest(client, prefix, subject, exp)
		}
		return newSIDRequest(client, prefix, subject, sid, exp)
	}
	must(t, "create access "+prefix, s.CreateAccessTokenSession(ctx, prefix+"-a", req()))
	must(t, "create refresh "+prefix, s.CreateRefreshTokenSession(ctx, prefix+"-r", prefix+"-a", req()))
	must(t, "create code "+prefix, s.CreateAuthorizeCodeSession(ctx, prefix+"-c", req()))
}

// checkTokens checks the tokens issueTokens created under prefix are all active, or all revoked: the
// refresh token inactive but readable, the access token deleted, the code used.
func checkTokens(t *testing.T, s *models.Store, prefix string, revoked bool) {
	t.Helper()
	ctx := ctxT(t)
	_, errA := s.GetAccessTokenSession(ctx, prefix+"-a", new(openid.DefaultSession))
	reqR, errR := s.GetRefreshTokenSession(ctx, prefix+"-r", new(openid.DefaultSession))
	_, errC := s.GetAuthorizeCodeSession(ctx, prefix+"-c", new(openid.DefaultSession))
	if !revoked {
		if errA != nil || errR != nil || errC != nil {
			t.Errorf("%s tokens: access %v, refresh %v, code %v; want all active", prefix, errA, errR, errC)
		}
		return
	}
	if !errors.Is(errA, fosite.ErrNotFound) {
		t.Errorf("%s access token: %v, want deleted (fosite.ErrNotFound)", prefix, errA)
	}
	if !errors.Is(errR, fosite.ErrInactiveToken) || reqR == nil {
		t.Errorf("%s refresh token: (%v, %v), want its requester with fosite.ErrInactiveToken", prefix, reqR, errR)
	}
	if !errors.Is(errC, fosite.ErrInvalidatedAuthorizeCode) {
		t.Errorf("%s code: %v, want fosite.ErrInvalidatedAuthorizeCode", prefix, errC)
	}
}

func testUserProfile(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	extras := map[string]any{"department": "ops", "level": 3.0, "tags": []any{"a", "b"}, "nested": map[string]any{"x": true}}
	u, err := s.CreateUserWith(ctx, models.NewUser{
		Email: "dora@example.com", Password: "pw", Name: "  Dora Ünal ", Roles: []string{"admin"},
		Extras: extras, EmailVerified: true,
	})
	must(t, "CreateUserWith", err)
	check := func(what string, got *models.User) {
		t.Helper()
		if got.Name != "Dora Ünal" || !reflect.DeepEqual(got.Extras, extras) || !got.EmailVerified || got.Disabled ||
			!reflect.DeepEqual(got.Roles, []string{"admin"}) {
			t.Errorf("%s = %+v", what, got)
		}
	}
	check("created", u)
	got, err := s.UserByID(ctx, u.ID)
	must(t, "UserByID", err)
	check("read back", got)

	plain, err := s.CreateUserWith(ctx, models.NewUser{Email: "eve@example.com", Password: "pw"})
	must(t, "CreateUserWith", err)
	if plain.Extras == nil || len(plain.Extras) != 0 || plain.Name != "" || plain.EmailVerified {
		t.Errorf("CreateUserWith defaults = %+v, want empty non-nil extras, no name, unverified", plain)
	}
	list, err := s.ListUsers(ctx, "")
	must(t, "ListUsers", err)
	if len(list) != 2 || list[1].Extras == nil {
		t.Errorf("ListUsers = %+v", list)
	}
}

func testUserProfileInvalid(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	big := map[string]any{"blob": strings.Repeat("x", models.MaxExtrasBytes)}
	tests := []struct {
		name    string
		u       models.NewUser
		wantMsg string
	}{
		{"extras over the size limit", models.NewUser{Extras: big}, "4096"},
		{"extras with an empty key", models.NewUser{Extras: map[string]any{"": 1}}, "empty key"},
		{"extras that are not JSON", models.NewUser{Extras: map[string]any{"f": func() {}}}, "JSON"},
		{"name over 200 characters", models.NewUser{Name: strings.Repeat("é", 201)}, "200"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.u.Email, tc.u.Password = "frank@example.com", "pw"
			_, err := s.CreateUserWith(ctx, tc.u)
			if !errors.Is(err, models.ErrInvalid) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("CreateUserWith: %v, want models.ErrInvalid mentioning %q", err, tc.wantMsg)
			}
			_, err = s.UserByEmail(ctx, "", "frank@example.com")
			wantNotFound(t, "user after rejected create", err)
		})
	}
	// Exactly at the limit is accepted: {"blob":"…"} is 11 bytes of framing.
	atLimit := map[string]any{"blob": strings.Repeat("x", models.MaxExtrasBytes-11)}
	_, err := s.CreateUserWith(ctx, models.NewUser{Email: "gina@example.com", Password: "pw", Extras: atLimit})
	must(t, "extras of exactly MaxExtrasBytes", err)
	// 200 multi-byte characters are within the limit.
	_, err = s.CreateUserWith(ctx, models.NewUser{Email: "hal@example.com", Password: "pw", Name: strings.Repeat("é", 200)})
	must(t, "name of 200 characters", err)
}

func testAuthenticate(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u, err := s.CreateUserWith(ctx, models.NewUser{Email: "Ivy@Example.com", Password: "right password"})
	must(t, "CreateUserWith ivy", err)
	off, err := s.CreateUserWith(ctx, models.NewUser{Email: "off@example.com", Password: "right password"})
	must(t, "CreateUserWith off", err)
	must(t, "disable off", s.SetDisabled(ctx, off.ID, true, time.Now()))
	tests := []struct {
		name            string
		email, password string
		wantID          string
		wantErr         error
	}{
		{"right password", "Ivy@Example.com", "right password", u.ID, nil},
		{"email in another case", "  ivy@EXAMPLE.COM ", "right password", u.ID, nil},
		{"wrong password", "ivy@example.com", "wrong password", "", models.ErrInvalidCredentials},
		{"password differing in case", "ivy@example.com", "Right password", "", models.ErrInvalidCredentials},
		{"empty password", "ivy@example.com", "", "", models.ErrInvalidCredentials},
		{"unknown email", "nobody@example.com", "right password", "", models.ErrInvalidCredentials},
		{"disabled user, right password", "off@example.com", "right password", off.ID, models.ErrUserDisabled},
		{"disabled user, wrong password", "off@example.com", "wrong password", "", models.ErrInvalidCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Authenticate(ctx, "", tc.email, tc.password)
			if tc.wantErr != nil {
				// A disabled user comes back with the error, so the caller can log who it was; an unknown
				// email or a wrong password reveals no user.
				if !errors.Is(err, tc.wantErr) || (tc.wantID == "") != (got == nil) || (got != nil && got.ID != tc.wantID) {
					t.Fatalf("Authenticate = (%+v, %v), want user %q with %v", got, err, tc.wantID, tc.wantErr)
				}
				return
			}
			if err != nil || got == nil || got.ID != tc.wantID {
				t.Fatalf("Authenticate = (%+v, %v), want user %s", got, err, tc.wantID)
			}
		})
	}
}

func testUserSetters(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u, err := s.CreateUserWith(ctx, models.NewUser{Email: "jo@example.com", Password: "old password", Extras: map[string]any{"a": "b"}})
	must(t, "CreateUserWith", err)

	_, err = s.ChangePassword(ctx, u.ID, "new password", "", time.Now())
	must(t, "ChangePassword", err)
	_, err = s.Authenticate(ctx, "", "jo@example.com", "new password")
	must(t, "Authenticate with the new password", err)
	if _, err := s.Authenticate(ctx, "", "jo@example.com", "old password"); !errors.Is(err, models.ErrInvalidCredentials) {
		t.Errorf("Authenticate with the old password: %v, want models.ErrInvalidCredentials", err)
	}
	must(t, "SetRoles", s.SetRoles(ctx, u.ID, []string{"ops", "admin"}))
	must(t, "SetName", s.SetName(ctx, u.ID, "Jo March"))
	must(t, "SetExtras", s.SetExtras(ctx, u.ID, map[string]any{"team": "blue"}))
	got, err := s.UserByID(ctx, u.ID)
	must(t, "UserByID", err)
	if !reflect.DeepEqual(got.Roles, []string{"ops", "admin"}) || got.Name != "Jo March" ||
		!reflect.DeepEqual(got.Extras, map[string]any{"team": "blue"}) || got.UpdatedAt.Before(got.CreatedAt) {
		t.Errorf("after setters: %+v", got)
	}
	must(t, "SetExtras nil", s.SetExtras(ctx, u.ID, nil))
	got, err = s.UserByID(ctx, u.ID)
	must(t, "UserByID", err)
	if got.Extras == nil || len(got.Extras) != 0 {
		t.Errorf("extras after SetExtras(nil) = %#v, want {}", got.Extras)
	}

	changePassword := func(userID, password string) error {
		_, err := s.ChangePassword(ctx, userID, password, "", time.Now())
		return err
	}
	invalid := []struct {
		name string
		err  error
	}{
		{"ChangePassword empty", changePassword(u.ID, "")},
		{"ChangePassword too long", changePassword(u.ID, strings.Repeat("p", 1025))},
		{"SetName too long", s.SetName(ctx, u.ID, strings.Repeat("n", 201))},
		{"SetExtras too large", s.SetExtras(ctx, u.ID, map[string]any{"k": strings.Repeat("x", models.MaxExtrasBytes)})},
		{"SetExtras empty key", s.SetExtras(ctx, u.ID, map[string]any{"": "v"})},
	}
	for _, tc := range invalid {
		if !errors.Is(tc.err, models.ErrInvalid) {
			t.Errorf("%s: %v, want models.ErrInvalid", tc.name, tc.err)
		}
	}
	got, err = s.UserByID(ctx, u.ID)
	must(t, "UserByID", err)
	if got.Name != "Jo March" || len(got.Extras) != 0 {
		t.Errorf("rejected setters changed the user: %+v", got)
	}
	_, err = s.Authenticate(ctx, "", "jo@example.com", "new password")
	must(t, "password unchanged by rejected ChangePassword", err)

	for name, err := range map[string]error{
		"ChangePassword": changePassword("usr_nope", "pw"),
		"SetRoles":       s.SetRoles(ctx, "usr_nope", nil),
		"SetName":        s.SetName(ctx, "usr_nope", "x"),
		"SetExtras":      s.SetExtras(ctx, "usr_nope", nil),
		"SetDisabled":    s.SetDisabled(ctx, "usr_nope", true, time.Now()),
	} {
		wantNotFound(t, name+" of an unknown user", err)
	}
}

func testUserDisable(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	now := baseTime
	client := mustClient(t, s, "app")
	kim := mustUser(t, s, "kim@example.com")
	lee := mustUser(t, s, "lee@example.com")
	ses1, tok1, err := s.CreateBrowserSession(ctx, kim, "192.0.2.1", "ua", now, time.Hour, 24*time.Hour)
	must(t, "session 1", err)
	ses2, _, err := s.CreateBrowserSession(ctx, kim, "192.0.2.2", "ua", now, time.Hour, 24*time.Hour)
	must(t, "session 2", err)
	_, leeTok, err := s.CreateBrowserSession(ctx, lee, "192.0.2.3", "ua", now, time.Hour, 24*time.Hour)
	must(t, "lee's session", err)
	issueTokens(t, s, client, "kim-ses", kim.ID, ses1.ID)
	issueTokens(t, s, client, "kim-nosid", kim.ID, "")
	issueTokens(t, s, client, "lee", lee.ID, "")

	must(t, "SetDisabled true", s.SetDisabled(ctx, kim.ID, true, now.Add(time.Minute)))
	got, err := s.UserByID(ctx, kim.ID)
	must(t, "UserByID", err)
	if !got.Disabled {
		t.Error("user not disabled")
	}
	_, err = s.BrowserSessionByToken(ctx, tok1, now.Add(2*time.Minute))
	wantNotFound(t, "session of a disabled user", err)
	for _, id := range []string{ses1.ID, ses2.ID} {
		bs, err := s.BrowserSessionByID(ctx, id)
		must(t, "BrowserSessionByID", err)
		if bs.EndedAt == nil || !bs.EndedAt.Equal(now.Add(time.Minute)) {
			t.Errorf("session %s EndedAt = %v, want %v", id, bs.EndedAt, now.Add(time.Minute))
		}
	}
	checkTokens(t, s, "kim-ses", true)
	checkTokens(t, s, "kim-nosid", true)
	checkTokens(t, s, "lee", false)
	_, err = s.BrowserSessionByToken(ctx, leeTok, now.Add(2*time.Minute))
	must(t, "other user's session kept", err)

	if _, _, err := s.CreateBrowserSession(ctx, kim, "", "", now, time.Hour, time.Hour); !errors.Is(err, models.ErrUserDisabled) {
		t.Errorf("CreateBrowserSession for a disabled user: %v, want models.ErrUserDisabled", err)
	}
	must(t, "SetDisabled false", s.SetDisabled(ctx, kim.ID, false, now.Add(3*time.Minute)))
	_, err = s.Authenticate(ctx, "", "kim@example.com", "pw-kim@example.com")
	must(t, "Authenticate after re-enabling", err)
}

func testUserDeleteCascades(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	mustClient(t, s, "app")
	mia := mustUser(t, s, "max@example.com")
	ned := mustUser(t, s, "ned@example.com")
	for _, u := range []*models.User{mia, ned} {
		_, _, err := s.CreateBrowserSession(ctx, u, "", "", baseTime, time.Hour, time.Hour)
		must(t, "CreateBrowserSession", err)
		must(t, "SaveConsent", s.SaveConsent(ctx, u.ID, "app", []string{"openid"}, baseTime))
	}
	must(t, "DeleteUser", s.DeleteUser(ctx, mia.ID))
	if l, err := s.ListBrowserSessions(ctx, mia.ID, baseTime); err != nil || len(l) != 0 {
		t.Errorf("deleted user's sessions = %v, %v; want none", l, err)
	}
	if sc, err := s.ConsentedScopes(ctx, mia.ID, "app"); err != nil || sc != nil {
		t.Errorf("deleted user's consent = %v, %v; want nil", sc, err)
	}
	if l, err := s.ListBrowserSessions(ctx, ned.ID, baseTime); err != nil || len(l) != 1 {
		t.Errorf("other user's sessions = %v, %v; want 1", l, err)
	}
	if sc, err := s.ConsentedScopes(ctx, ned.ID, "app"); err != nil || len(sc) != 1 {
		t.Errorf("other user's consent = %v, %v", sc, err)
	}
}

// Client origins.

func testUsersCRUD(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	u, err := s.CreateUserWith(ctx, models.NewUser{Email: "  Alice@Example.COM ", Password: "correct horse", Roles: []string{"admin"}})
	must(t, "CreateUserWith", err)
	if !strings.HasPrefix(u.ID, "usr_") || len(u.ID) != len("usr_")+26 || u.Email != "Alice@Example.COM" ||
		!reflect.DeepEqual(u.Roles, []string{"admin"}) || u.CreatedAt.IsZero() {
		t.Errorf("created user = %+v", u)
	}
	ok, err := models.VerifyPassword(u.PasswordHash, "correct horse")
	if err != nil || !ok {
		t.Errorf("VerifyPassword(right) = %v, %v", ok, err)
	}
	ok, err = models.VerifyPassword(u.PasswordHash, "wrong horse")
	if err != nil || ok {
		t.Errorf("VerifyPassword(wrong) = %v, %v", ok, err)
	}
	byID, err := s.UserByID(ctx, u.ID)
	must(t, "UserByID", err)
	byEmail, err := s.UserByEmail(ctx, "", "alice@EXAMPLE.com")
	must(t, "UserByEmail", err)
	if byID.ID != u.ID || byEmail.ID != u.ID || byID.PasswordHash != u.PasswordHash || !byID.CreatedAt.Equal(u.CreatedAt) {
		t.Errorf("lookups = %+v / %+v, want %+v", byID, byEmail, u)
	}
	bob, err := s.CreateUserWith(ctx, models.NewUser{Email: "bob@example.com", Password: "pw"})
	must(t, "CreateUserWith bob", err)
	list, err := s.ListUsers(ctx, "")
	must(t, "ListUsers", err)
	if len(list) != 2 || list[0].ID != u.ID || list[1].ID != bob.ID || list[1].Roles == nil {
		t.Errorf("ListUsers = %+v", list)
	}

	client := mustClient(t, s, "app")
	must(t, "token for alice", s.CreateAccessTokenSession(ctx, "a-alice", newRequest(client, "g", u.ID, time.Now().Add(time.Hour))))
	must(t, "DeleteUser", s.DeleteUser(ctx, u.ID))
	_, err = s.UserByID(ctx, u.ID)
	wantNotFound(t, "deleted user", err)
	_, err = s.GetAccessTokenSession(ctx, "a-alice", new(openid.DefaultSession))
	wantNotFound(t, "deleted user's token", err)
	wantNotFound(t, "DeleteUser again", s.DeleteUser(ctx, u.ID))
	_, err = s.UserByEmail(ctx, "", "nobody@example.com")
	wantNotFound(t, "UserByEmail unknown", err)
}

func testUserDuplicateEmail(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	_, err := s.CreateUserWith(ctx, models.NewUser{Email: "carol@example.com", Password: "pw"})
	must(t, "CreateUserWith", err)
	if _, err := s.CreateUserWith(ctx, models.NewUser{Email: "CAROL@example.COM", Password: "pw2"}); !errors.Is(err, models.ErrConflict) {
		t.Errorf("duplicate email in other case: %v, want models.ErrConflict", err)
	}
}

func testUserInvalid(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	for _, c := range []struct{ email, password string }{
		{"no-at-sign", "pw"},
		{"two@at@example.com", "pw"},
		{"@example.com", "pw"},
		{"alice@", "pw"},
		{strings.Repeat("a", 250) + "@example.com", "pw"},
		{"ok@example.com", ""},
		{"ok@example.com", strings.Repeat("p", 1025)},
	} {
		if _, err := s.CreateUserWith(ctx, models.NewUser{Email: c.email, Password: c.password}); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("CreateUserWith(%.20q, %d-byte password): %v, want models.ErrInvalid", c.email, len(c.password), err)
		}
	}
}
