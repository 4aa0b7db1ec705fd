package storetest

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/models"
)

// poolCases: pools and users in pools.
func poolCases() []testCase {
	return []testCase{
		{"pools default exists after Migrate; create, get, list, update", testPoolsCRUD},
		{"pools malformed names are ErrInvalid", testPoolInvalidNames},
		{"pools same email in two pools is two users", testUsersSameEmailTwoPools},
		{"pools duplicate email in one pool, any case, is ErrConflict", testUserDuplicateEmailInPool},
		{"pools authenticate finds the user only in the given pool", testAuthenticateInPool},
		{"pools unknown pool for a user or client is ErrInvalid", testUnknownPoolInvalid},
		{"pools list users of one pool or all", testListUsersByPool},
	}
}

// Pools.

func mustPool(t *testing.T, s *models.Store, name string) {
	t.Helper()
	if err := s.CreatePool(ctxT(t), models.Pool{Name: name}); err != nil {
		t.Fatalf("CreatePool(%q): %v", name, err)
	}
}

func testPoolsCRUD(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	def, err := s.GetPool(ctx, models.DefaultPool)
	must(t, "GetPool default after Migrate", err)
	if def.Name != "default" || def.SignupEnabled || def.DefaultRoles == nil || len(def.DefaultRoles) != 0 || def.CreatedAt.IsZero() {
		t.Errorf("default pool = %+v, want signup off, no default roles", def)
	}

	must(t, "CreatePool customers", s.CreatePool(ctx, models.Pool{
		Name: "customers", SignupEnabled: true, DefaultRoles: []string{"customer"},
	}))
	must(t, "CreatePool staff", s.CreatePool(ctx, models.Pool{Name: "staff"}))
	got, err := s.GetPool(ctx, "customers")
	must(t, "GetPool customers", err)
	if !got.SignupEnabled || !reflect.DeepEqual(got.DefaultRoles, []string{"customer"}) || got.CreatedAt.IsZero() {
		t.Errorf("customers = %+v", got)
	}
	if err := s.CreatePool(ctx, models.Pool{Name: "customers"}); !errors.Is(err, models.ErrConflict) {
		t.Errorf("duplicate CreatePool: %v, want models.ErrConflict", err)
	}
	list, err := s.ListPools(ctx)
	must(t, "ListPools", err)
	var names []string
	for _, p := range list {
		names = append(names, p.Name)
	}
	if !reflect.DeepEqual(names, []string{"default", "customers", "staff"}) {
		t.Errorf("ListPools = %v, want [default customers staff] (creation order)", names)
	}

	must(t, "UpdatePool", s.UpdatePool(ctx, models.Pool{Name: "customers", SignupEnabled: false, DefaultRoles: []string{"a", "b"}}))
	got, err = s.GetPool(ctx, "customers")
	must(t, "GetPool after update", err)
	if got.SignupEnabled || !reflect.DeepEqual(got.DefaultRoles, []string{"a", "b"}) {
		t.Errorf("customers after UpdatePool = %+v", got)
	}
	must(t, "UpdatePool default", s.UpdatePool(ctx, models.Pool{Name: models.DefaultPool, SignupEnabled: true}))
	if def, err := s.GetPool(ctx, models.DefaultPool); err != nil || !def.SignupEnabled || len(def.DefaultRoles) != 0 {
		t.Errorf("default after UpdatePool = %+v, %v", def, err)
	}
	wantNotFound(t, "UpdatePool unknown", s.UpdatePool(ctx, models.Pool{Name: "nope"}))
	_, err = s.GetPool(ctx, "nope")
	wantNotFound(t, "GetPool unknown", err)
}

func testPoolInvalidNames(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"0", true},
		{"eu-customers_2", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"Customers", false},
		{"-leading-dash", false},
		{"_leading_underscore", false},
		{"has space", false},
		{"dot.ted", false},
		{"slash/ed", false},
		{"ümlaut", false},
		{"trailing\n", false},
	}
	for _, tc := range tests {
		err := s.CreatePool(ctx, models.Pool{Name: tc.name})
		if tc.ok && err != nil {
			t.Errorf("CreatePool(%q): %v, want success", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, models.ErrInvalid) {
			t.Errorf("CreatePool(%q): %v, want models.ErrInvalid", tc.name, err)
		}
	}
}

// Users in pools.

func testUsersSameEmailTwoPools(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	mustPool(t, s, "customers")
	inDefault, err := s.CreateUserWith(ctx, models.NewUser{Email: "ada@example.com", Password: "pw-default"})
	must(t, "create in default", err)
	inCustomers, err := s.CreateUserWith(ctx, models.NewUser{Pool: "customers", Email: "Ada@Example.com", Password: "pw-customers"})
	must(t, "create in customers", err)
	if inDefault.ID == inCustomers.ID || inDefault.Pool != models.DefaultPool || inCustomers.Pool != "customers" {
		t.Fatalf("users = %+v / %+v, want two users with different ids in default and customers", inDefault, inCustomers)
	}
	for _, tc := range []struct{ pool, wantID string }{
		{"", inDefault.ID}, {"default", inDefault.ID}, {"customers", inCustomers.ID},
	} {
		u, err := s.UserByEmail(ctx, tc.pool, "ADA@example.com")
		if err != nil || u.ID != tc.wantID {
			t.Errorf("UserByEmail(%q) = %+v, %v; want %s", tc.pool, u, err, tc.wantID)
		}
	}
	_, err = s.UserByEmail(ctx, "nope", "ada@example.com")
	wantNotFound(t, "UserByEmail in an unknown pool", err)
	byID, err := s.UserByID(ctx, inCustomers.ID)
	must(t, "UserByID", err)
	if byID.Pool != "customers" {
		t.Errorf("UserByID pool = %q, want customers", byID.Pool)
	}
	// Deleting one leaves the other.
	must(t, "DeleteUser", s.DeleteUser(ctx, inDefault.ID))
	_, err = s.UserByEmail(ctx, "customers", "ada@example.com")
	must(t, "other pool's user after delete", err)
}

func testUserDuplicateEmailInPool(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	mustPool(t, s, "customers")
	for _, pool := range []string{"", "customers"} {
		_, err := s.CreateUserWith(ctx, models.NewUser{Pool: pool, Email: "bo@example.com", Password: "pw"})
		must(t, "create in "+pool, err)
		_, err = s.CreateUserWith(ctx, models.NewUser{Pool: pool, Email: "  BO@example.COM", Password: "pw2"})
		if !errors.Is(err, models.ErrConflict) {
			t.Errorf("duplicate email in pool %q: %v, want models.ErrConflict", pool, err)
		}
	}
	_, err := s.CreateUserWith(ctx, models.NewUser{Pool: "default", Email: "bo@EXAMPLE.com", Password: "pw"})
	if !errors.Is(err, models.ErrConflict) {
		t.Errorf(`duplicate email in pool "default" (named): %v, want models.ErrConflict`, err)
	}
}

func testAuthenticateInPool(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	mustPool(t, s, "customers")
	mustPool(t, s, "empty")
	def, err := s.CreateUserWith(ctx, models.NewUser{Email: "cy@example.com", Password: "pw-default"})
	must(t, "create in default", err)
	cus, err := s.CreateUserWith(ctx, models.NewUser{Pool: "customers", Email: "cy@example.com", Password: "pw-customers"})
	must(t, "create in customers", err)
	tests := []struct {
		name, pool, password string
		wantID               string // "": ErrInvalidCredentials
	}{
		{"default pool by empty name", "", "pw-default", def.ID},
		{"default pool by name", "default", "pw-default", def.ID},
		{"customers pool", "customers", "pw-customers", cus.ID},
		{"other pool's password in default", "", "pw-customers", ""},
		{"other pool's password in customers", "customers", "pw-default", ""},
		{"pool without the user", "empty", "pw-default", ""},
		{"unknown pool", "nope", "pw-default", ""},
		{"malformed pool", "No Such Pool", "pw-default", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := s.Authenticate(ctx, tc.pool, "CY@example.com", tc.password)
			if tc.wantID == "" {
				if !errors.Is(err, models.ErrInvalidCredentials) || u != nil {
					t.Fatalf("Authenticate = (%+v, %v), want models.ErrInvalidCredentials", u, err)
				}
				return
			}
			if err != nil || u.ID != tc.wantID {
				t.Fatalf("Authenticate = (%+v, %v), want user %s", u, err, tc.wantID)
			}
		})
	}
}

func testUnknownPoolInvalid(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	for _, pool := range []string{"nope", "Bad Name", strings.Repeat("x", 65)} {
		_, err := s.CreateUserWith(ctx, models.NewUser{Pool: pool, Email: "dee@example.com", Password: "pw"})
		if !errors.Is(err, models.ErrInvalid) {
			t.Errorf("CreateUserWith in pool %q: %v, want models.ErrInvalid", pool, err)
		}
		err = s.CreateClient(ctx, &models.Client{ID: "app", Pool: pool})
		if !errors.Is(err, models.ErrInvalid) {
			t.Errorf("CreateClient in pool %q: %v, want models.ErrInvalid", pool, err)
		}
	}
	if l, err := s.ListUsers(ctx, ""); err != nil || len(l) != 0 {
		t.Errorf("users after rejected creates = %v, %v; want none", l, err)
	}
	_, err := s.ClientByID(ctx, "app")
	wantNotFound(t, "client after rejected create", err)

	mustClient(t, s, "app")
	c, err := s.ClientByID(ctx, "app")
	must(t, "ClientByID", err)
	c.Pool = "nope"
	if err := s.UpdateClient(ctx, c); !errors.Is(err, models.ErrInvalid) {
		t.Errorf("UpdateClient into an unknown pool: %v, want models.ErrInvalid", err)
	}
	if c, err := s.ClientByID(ctx, "app"); err != nil || c.Pool != models.DefaultPool {
		t.Errorf("client after rejected update = %+v, %v; want still in default", c, err)
	}
}

func testListUsersByPool(t *testing.T, s *models.Store) {
	ctx := ctxT(t)
	mustPool(t, s, "customers")
	mustPool(t, s, "empty")
	var ids = map[string][]string{}
	for _, u := range []struct{ pool, email string }{
		{"", "a@example.com"}, {"customers", "b@example.com"}, {"", "c@example.com"}, {"customers", "a@example.com"},
	} {
		got, err := s.CreateUserWith(ctx, models.NewUser{Pool: u.pool, Email: u.email, Password: "pw"})
		must(t, "CreateUserWith", err)
		ids[u.pool] = append(ids[u.pool], got.ID)
		ids["*"] = append(ids["*"], got.ID)
	}
	userIDs := func(l []models.User) []string {
		out := []string{}
		for _, u := range l {
			out = append(out, u.ID)
		}
		return out
	}
	tests := []struct {
		pool string
		want []string
	}{
		{"", ids["*"]},
		{"default", ids[""]},
		{"customers", ids["customers"]},
		{"empty", []string{}},
	}
	for _, tc := range tests {
		l, err := s.ListUsers(ctx, tc.pool)
		must(t, "ListUsers "+tc.pool, err)
		if got := userIDs(l); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ListUsers(%q) = %v, want %v (creation order)", tc.pool, got, tc.want)
		}
	}
	_, err := s.ListUsers(ctx, "nope")
	wantNotFound(t, "ListUsers of an unknown pool", err)
}
